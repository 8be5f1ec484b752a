package release

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CycloneDXGomod is the SBOM generator, fetched through the Go module proxy and
// compiled once into the Go build cache (go install pkg@version), never vendored.
const CycloneDXGomod = "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0"

// SBOMOptions are ImageOptions plus the generator.
type SBOMOptions struct {
	ImageOptions
	// Tool is the cyclonedx-gomod binary; empty: CycloneDXGomod, go installed
	// once into the project's cache (installTool).
	Tool string
}

// WriteSBOMs writes a CycloneDX JSON SBOM of each image's binary to
// <Dir>/sbom/<name>.cdx.json and returns the files.
//
// It runs `cyclonedx-gomod bin` on the binary built as WriteImages builds it (the
// same file when both share o.Binaries), for the first of Platforms: the modules are those linked into the binary (its
// build info), the binary's hashes are recorded, and the main module's version
// is Version. (`cyclonedx-gomod app` reads the version from git with go-git,
// which fails in a git worktree and in a source tarball; bin mode takes -version.)
//
// Reproducible: no time stamp (-notimestamp), and the serial number is derived
// from the image's name, the version and the binary (-serial), not random.
// License detection reads the module cache only (GOPROXY=off); the main module,
// not being in the cache, has no detected license (it is Apache-2.0, LICENSE).
func WriteSBOMs(ctx context.Context, o SBOMOptions) ([]string, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Dir, "sbom")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ke-sbom-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tool := o.Tool
	if tool == "" {
		if tool, err = installTool(ctx, o.Repo, tmp); err != nil {
			return nil, err
		}
	}
	bins, done, err := o.binaries()
	if err != nil {
		return nil, err
	}
	defer done()
	platform := o.Platforms[0]
	var files []string
	for _, spec := range Images() {
		bin, err := bins.Build(ctx, o.Repo, spec.Package, platform, o.Version)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		out := filepath.Join(dir, spec.Name+".cdx.json")
		args := []string{"bin", "-json", "-licenses", "-notimestamp",
			"-serial", serial(spec.Name, o.Version, data), "-version", o.Version, "-output", out, bin}
		cmd := exec.CommandContext(ctx, tool, args...)
		cmd.Dir = o.Repo
		cmd.Env = append(os.Environ(), "GOPROXY=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("cyclonedx-gomod bin %s: %w\n%s", spec.Name, err, b)
		}
		o.logf("wrote the SBOM of %s to %s", spec.Name, out)
		files = append(files, out)
	}
	return files, nil
}

// serial is a urn:uuid (version 8, RFC 9562: custom) from a hash of the inputs,
// so that the same binary gives the same SBOM.
func serial(name, version string, binary []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", name, version)
	h.Write(binary)
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x80
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// installTool returns CycloneDXGomod built for the host: from the project's
// cache ($KE_CACHE, else ~/.cache/kubernetes-entrypoint, in bin/cyclonedx-gomod-
// <version>, beside golangci-lint and krew) when it is there, else go installed
// there once (into dir when no cache directory can be had).
func installTool(ctx context.Context, repo, dir string) (string, error) {
	if cache := toolCache(); cache != "" {
		dir = filepath.Join(cache, "bin", "cyclonedx-gomod-"+CycloneDXGomod[strings.LastIndexByte(CycloneDXGomod, '@')+1:])
	}
	bin := filepath.Join(dir, "cyclonedx-gomod")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Installed beside, then renamed into place: two test processes may install
	// at once, and a run killed mid-install leaves no binary behind.
	tmp, err := os.MkdirTemp(dir, ".install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", CycloneDXGomod)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOOS=", "GOARCH=", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", CycloneDXGomod, err, b)
	}
	if err := os.Rename(filepath.Join(tmp, "cyclonedx-gomod"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// toolCache is the project's cache directory, as the Makefile's KE_CACHE; "" when
// there is no home directory.
func toolCache() string {
	if c := os.Getenv("KE_CACHE"); c != "" {
		return c
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "kubernetes-entrypoint")
}
