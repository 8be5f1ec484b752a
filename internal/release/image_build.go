package release

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LDFlags are the Makefile's (GO_BUILD): stripped, the version stamped into main.
func LDFlags(version string) string { return "-s -w -X main.version=" + version }

// BuildBinary compiles the main package pkg for platform (os/arch) to out, as
// `make build` does: static, -trimpath, -buildvcs=false, LDFlags. The
// architecture levels are pinned to Go's defaults so that the host's GOAMD64 or
// GOARM64 cannot change the bytes.
func BuildBinary(ctx context.Context, repo, pkg, platform, version, out string) error {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok {
		return fmt.Errorf("platform %q is not os/arch", platform)
	}
	if i := strings.IndexByte(goarch, '/'); i >= 0 {
		goarch = goarch[:i] // a variant (arm64/v8) is GOARCH's default level
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", LDFlags(version), "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOAMD64=v1", "GOARM64=v8.0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, platform, err, b)
	}
	return nil
}

func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}
