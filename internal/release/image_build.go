package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Binaries builds each (package, platform, version) once, into Dir, and hands out
// the same file afterwards: a release's images and their SBOMs then describe the
// very same bytes, and each binary is linked once rather than once per use.
// Safe for concurrent use; the zero value needs Dir only.
type Binaries struct {
	Dir string

	mu    sync.Mutex
	built map[string]*builtBinary
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// Build returns the binary of the main package pkg for platform, as BuildBinary
// builds it, building it on the first call only.
func (b *Binaries) Build(ctx context.Context, repo, pkg, platform, version string) (string, error) {
	key := strings.Join([]string{repo, pkg, platform, version}, "\x00")
	b.mu.Lock()
	if b.built == nil {
		b.built = map[string]*builtBinary{}
	}
	e, ok := b.built[key]
	if !ok {
		e = &builtBinary{}
		b.built[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() {
		sum := sha256.Sum256([]byte(key))
		e.path = filepath.Join(b.Dir, hex.EncodeToString(sum[:8]), path.Base(pkg))
		e.err = BuildBinary(ctx, repo, pkg, platform, version, e.path)
	})
	return e.path, e.err
}

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
