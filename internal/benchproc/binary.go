package benchproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Module is the project's module path, the prefix of the packages Binary builds.
const Module = "github.com/kubernetes-entrypoint/kubernetes-entrypoint"

// ReleaseFlags build as the Makefile does (static, reproducible, stripped), so
// that a benchmark measures what ships: with them, environ is CGO_ENABLED=0.
var ReleaseFlags = []string{"-trimpath", "-ldflags", "-s -w"}

// Binary is the executable named by the environment variable env, checked; or,
// when env is unset, the main package Module+pkg built into dir/name with
// environ added to the environment and flags given to go build. Tests pass no
// flags: go build's defaults reuse what `go vet` compiled and take seconds.
func Binary(dir, env, name, pkg string, environ []string, flags ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", env, err)
		}
		return p, nil
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", append(append([]string{"build", "-o", out}, flags...), Module+pkg)...)
	cmd.Env = append(os.Environ(), environ...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s (or set %s): %w\n%s", name, env, err, b)
	}
	return out, nil
}
