package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
)

// krewVersion is the krew the tests and make release install archives with.
const krewVersion = "v0.4.3"

// krewBinary is krew, and validate-krew-manifest beside it, built once from the Go
// module proxy into the project's cache (where make release's KREW is too).
func krewBinary(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("KE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "kubernetes-entrypoint")
	}
	bin := filepath.Join(cache, "bin", "krew-"+krewVersion)
	krew := filepath.Join(bin, "krew")
	_, err1 := os.Stat(krew)
	_, err2 := os.Stat(filepath.Join(bin, "validate-krew-manifest"))
	if err1 == nil && err2 == nil {
		return krew
	}
	cmd := exec.Command("go", "install", "sigs.k8s.io/krew/cmd/krew@"+krewVersion, "sigs.k8s.io/krew/cmd/validate-krew-manifest@"+krewVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install krew %s: %v\n%s", krewVersion, err, out)
	}
	return krew
}

// hostPlatform is the one plugin platform make test builds, and the images are
// built for the host's architecture only (every platform takes minutes on a cold
// build cache: make release builds them all, docs/release.md).
var hostPlatform = release.OSArch{OS: runtime.GOOS, Arch: runtime.GOARCH}

func releaseArgs(dir string) []string {
	return []string{"--version", "v1.2.3", "--dir", dir, "--plugin-platforms", hostPlatform.String(),
		"--image-platforms", "linux/" + runtime.GOARCH,
		"--epoch", "1767225600", "--revision", "0123456789abcdef0123456789abcdef01234567"}
}

// TestRelease runs the release as make release does, but for the host's
// platform only, with krew installing the plugin's archive; then again without
// the images (internal/release's tests build those twice): the two directories
// have the same sums for every file they share, and the archived binary is the
// release's version. Then changes to the release directory fail its check.
func TestRelease(t *testing.T) {
	krew := krewBinary(t)
	ctx := context.Background()
	var sums [2][]byte
	dirs := [2]string{filepath.Join(t.TempDir(), "dist"), filepath.Join(t.TempDir(), "dist")}
	for i, dir := range dirs {
		args := append(releaseArgs(dir), "--krew", krew)
		if i == 1 {
			args = append(args, "--images=false")
		}
		var log bytes.Buffer
		if err := run(ctx, args, &log); err != nil {
			t.Fatalf("release %d: %v\n%s", i, err, log.String())
		}
		t.Logf("release %d:\n%s", i, log.String())
		b, err := os.ReadFile(filepath.Join(dir, release.ChecksumsFile))
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = b
	}
	var shared []string // the full release's lines of what the second one wrote too
	for _, line := range strings.SplitAfter(string(sums[0]), "\n") {
		if !strings.Contains(line, "  images/") && !strings.Contains(line, "  sbom/") {
			shared = append(shared, line)
		}
	}
	if strings.Join(shared, "") != string(sums[1]) {
		t.Errorf("two releases of one tree differ in the files both wrote:\n%s\n%s", sums[0], sums[1])
	}
	if !strings.Contains(string(sums[0]), "  images/kubernetes-entrypoint/index.json\n") || !strings.Contains(string(sums[0]), "  sbom/") {
		t.Errorf("checksums.txt of the full release lists no image layout or SBOM:\n%s", sums[0])
	}
	for _, want := range []string{
		"plugin/" + release.PluginArchiveName("1.2.3", hostPlatform),
		release.KrewManifestPath,
		release.ChartArchivePath("1.2.3"),
	} {
		if !bytes.Contains(sums[0], []byte("  "+want+"\n")) {
			t.Errorf("checksums.txt lacks %s:\n%s", want, sums[0])
		}
	}

	if hostPlatform.OS != "windows" {
		bin := extractFromTarGz(t, filepath.Join(dirs[0], "plugin", release.PluginArchiveName("1.2.3", hostPlatform)), release.PluginName)
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "1.2.3") {
			t.Errorf("%s --version: %v, %q; want the release's version", release.PluginName, err, out)
		}
	}
	verifyCatches(t, dirs[0])
}

func extractFromTarGz(t *testing.T, archive, name string) string {
	t.Helper()
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no %s", archive, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != name {
			continue
		}
		out := filepath.Join(t.TempDir(), name)
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// verifyCatches: a release directory changed after it was written fails the check,
// whatever the change.
func verifyCatches(t *testing.T, dir string) {
	archive := filepath.Join(dir, "plugin", release.PluginArchiveName("1.2.3", hostPlatform))
	manifest := filepath.Join(dir, filepath.FromSlash(release.KrewManifestPath))
	copyDir := func(t *testing.T) string {
		t.Helper()
		out := t.TempDir()
		if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		return out
	}
	in := func(d, p string) string { rel, _ := filepath.Rel(dir, p); return filepath.Join(d, rel) }
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, d string)
		want   string
	}{
		{"an extra file", func(t *testing.T, d string) {
			if err := os.WriteFile(filepath.Join(d, "extra"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "does not list"},
		{"an archive changed, checksums.txt rewritten", func(t *testing.T, d string) {
			if err := os.WriteFile(in(d, archive), []byte("not an archive"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := release.WriteChecksums(d); err != nil {
				t.Fatal(err)
			}
		}, "sha256"},
		{"the manifest's version", func(t *testing.T, d string) {
			b, err := os.ReadFile(in(d, manifest))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(in(d, manifest), bytes.Replace(b, []byte("version: v1.2.3"), []byte("version: v1.2.4"), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := release.WriteChecksums(d); err != nil {
				t.Fatal(err)
			}
		}, "version v1.2.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t)
			if err := verify(context.Background(), d, "1.2.3", "", true); err != nil {
				t.Fatalf("the unchanged copy: %v", err)
			}
			tc.change(t, d)
			if err := verify(context.Background(), d, "1.2.3", "", true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no version", []string{"--dir", "x"}, "--version"},
		{"two-part version", []string{"--version", "1.2"}, "--version"},
		{"bad platform", []string{"--version", "1.2.3", "--plugin-platforms", "linux"}, "--plugin-platforms"},
		{"bad epoch", []string{"--version", "1.2.3", "--epoch", "yesterday"}, "epoch"},
		{"arguments", []string{"--version", "1.2.3", "extra"}, "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	o, err := parse([]string{"--version", "v1.2.3-rc.1", "--epoch", "0", "--revision", "abc"}, io.Discard)
	if err != nil || o.version != "1.2.3-rc.1" || o.epoch.Unix() != 0 || len(o.pluginPlatforms) != 5 {
		t.Errorf("parse: %+v, %v", o, err)
	}
}

// TestEmptyDirKeepsOthers: the release directory is emptied only when it holds a
// previous release.
func TestEmptyDirKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := emptyDir(dir); err == nil {
		t.Error("a directory with no checksums.txt was emptied")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Errorf("its file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, release.ChecksumsFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := emptyDir(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a previous release left %v", entries)
	}
}

// TestKrewVersionIsMakefiles: the tests install archives with the krew make release
// uses.
func TestKrewVersionIsMakefiles(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\nKREW_VERSION ?= "+krewVersion+"\n")) {
		t.Errorf("the Makefile's KREW_VERSION is not %s", krewVersion)
	}
}
