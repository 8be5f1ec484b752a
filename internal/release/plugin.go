package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// PluginName is the kubectl plugin's binary: kubectl finds it on PATH by this name.
const PluginName = "kubectl-entrypoint"

// OSArch is a Go target, GOOS/GOARCH.
type OSArch struct{ OS, Arch string }

func (p OSArch) String() string { return p.OS + "/" + p.Arch }

// ParseOSArch reads "os/arch".
func ParseOSArch(s string) (OSArch, error) {
	goos, arch, ok := strings.Cut(s, "/")
	if !ok || goos == "" || arch == "" || strings.Contains(arch, "/") {
		return OSArch{}, fmt.Errorf("platform %q: want os/arch, e.g. linux/amd64", s)
	}
	return OSArch{OS: goos, Arch: arch}, nil
}

// PluginPlatforms are the platforms a release ships the kubectl plugin for: those
// where people run kubectl.
func PluginPlatforms() []OSArch {
	return []OSArch{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
		{"windows", "amd64"},
	}
}

// PluginOptions describe the plugin's archives of one release.
type PluginOptions struct {
	Repo    string // the module's root: cmd/kubectl-entrypoint, LICENSE
	Dir     string // the release directory; archives go to Dir/plugin
	Version string // x.y.z, stamped into the binary
	// Epoch is every archive entry's mtime (SOURCE_DATE_EPOCH or the commit's time).
	Epoch     time.Time
	Platforms []OSArch
	// Parallel is how many platforms build at once (1 when zero): go build already
	// uses every core to compile, but links on one.
	Parallel int
}

// PluginArchive is one platform's archive in a release directory.
type PluginArchive struct {
	Platform OSArch
	Path     string // relative to the release directory, slash-separated
	SHA256   string // hex, of the archive's bytes
	Bin      string // the binary's name inside the archive
}

// PluginArchiveName is the archive's file name for a version and platform: zip on
// Windows, where it is what people open, tar.gz elsewhere (krew takes both).
func PluginArchiveName(version string, p OSArch) string {
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("%s_%s_%s_%s%s", PluginName, version, p.OS, p.Arch, ext)
}

// PluginBin is the binary's name on a platform.
func PluginBin(p OSArch) string {
	if p.OS == "windows" {
		return PluginName + ".exe"
	}
	return PluginName
}

// pluginReadme is the README in every archive: what the binary is and how kubectl
// finds it.
func pluginReadme(version string, p OSArch) string {
	return fmt.Sprintf(`kubectl-entrypoint %s (%s)

The kubectl plugin of kubernetes-entrypoint: kubectl entrypoint lint|inject|why|status|graph.
Put %s on your PATH and run "kubectl entrypoint --help", or install this
archive with krew: kubectl krew install --manifest=entrypoint.yaml --archive=<this archive>.

https://github.com/kubernetes-entrypoint/kubernetes-entrypoint
Licensed under the Apache License 2.0 (LICENSE).
`, version, p, PluginBin(p))
}

// WritePlugins cross-builds the plugin for every platform (static, -trimpath, the
// version stamped, as make build) and writes one archive each to Dir/plugin, with
// the binary, LICENSE and a README.
func WritePlugins(ctx context.Context, o PluginOptions) ([]PluginArchive, error) {
	if o.Version == "" || o.Repo == "" || o.Dir == "" || len(o.Platforms) == 0 {
		return nil, fmt.Errorf("plugin archives: Repo, Dir, Version and Platforms are required")
	}
	license, err := os.ReadFile(filepath.Join(o.Repo, "LICENSE"))
	if err != nil {
		return nil, fmt.Errorf("plugin archives: the license they carry: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "plugin"), 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "ke-plugin-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	out := make([]PluginArchive, len(o.Platforms))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Parallel, 1))
	for i, p := range o.Platforms {
		g.Go(func() error {
			bin := filepath.Join(work, p.OS+"-"+p.Arch, PluginBin(p))
			if err := BuildBinary(gctx, o.Repo, "./cmd/kubectl-entrypoint", p.String(), o.Version, bin); err != nil {
				return err
			}
			data, err := os.ReadFile(bin)
			if err != nil {
				return err
			}
			files := []pluginFile{
				{Name: PluginBin(p), Mode: 0o755, Data: data},
				{Name: "LICENSE", Mode: 0o644, Data: license},
				{Name: "README.md", Mode: 0o644, Data: []byte(pluginReadme(o.Version, p))},
			}
			var buf bytes.Buffer
			if p.OS == "windows" {
				err = writePluginZip(&buf, files, o.Epoch)
			} else {
				err = writePluginTarGz(&buf, files, o.Epoch)
			}
			if err != nil {
				return fmt.Errorf("archive of %s: %w", p, err)
			}
			rel := path.Join("plugin", PluginArchiveName(o.Version, p))
			if err := os.WriteFile(filepath.Join(o.Dir, filepath.FromSlash(rel)), buf.Bytes(), 0o644); err != nil {
				return err
			}
			sum := sha256.Sum256(buf.Bytes())
			out[i] = PluginArchive{Platform: p, Path: rel, SHA256: hex.EncodeToString(sum[:]), Bin: PluginBin(p)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
