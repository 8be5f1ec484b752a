package release

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	testEpoch     = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	testPlatforms = []string{"linux/amd64", "linux/arm64"}
)

func testOptions(dir string) ImageOptions {
	return ImageOptions{
		Dir: dir, Repo: filepath.Join("..", ".."), Version: "v0.0.0-release-test", Revision: "0123456789abcdef",
		Platforms: testPlatforms, Epoch: testEpoch,
	}
}

// built is one WriteImages run shared by the package's tests: linking dominates,
// so the binaries are linked once (built.bins) and every test that needs no fresh
// build takes them from there. TestImagesAreReproducible alone builds again.
var built = sync.OnceValues(func() (builtImages, error) {
	dir, err := os.MkdirTemp("", "ke-release-test-")
	if err != nil {
		return builtImages{}, err
	}
	bins := &Binaries{Dir: filepath.Join(dir, "bin")}
	o := testOptions(filepath.Join(dir, "out"))
	o.Binaries = bins
	res, err := WriteImages(context.Background(), o)
	return builtImages{dir: dir, bins: bins, results: res}, err
})

type builtImages struct {
	dir     string
	bins    *Binaries
	results []ImageResult
}

func TestMain(m *testing.M) {
	code := m.Run()
	if b, err := built(); err == nil {
		os.RemoveAll(b.dir)
	}
	os.Exit(code)
}

func mustBuild(t *testing.T) builtImages {
	t.Helper()
	b, err := built()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layoutIndex is the image index that the layout's index.json points at.
func layoutIndex(t *testing.T, dir string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 || topManifest.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("%s/index.json: want one image index, got %+v", dir, topManifest.Manifests)
	}
	idx, err := top.ImageIndex(topManifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return idx, m
}

// file is one entry of an image's flattened file system.
type file struct {
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
}

func files(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeReg {
			t.Errorf("%s: type %c, want only directories and regular files", h.Name, h.Typeflag)
		}
		if !h.ModTime.Equal(testEpoch) {
			t.Errorf("%s: mtime %s, want the epoch %s", h.Name, h.ModTime, testEpoch)
		}
		out[strings.TrimSuffix(h.Name, "/")] = file{mode: h.Mode, uid: h.Uid, gid: h.Gid, dir: h.Typeflag == tar.TypeDir, data: data}
	}
}

// The base's files, every one; the time zones are checked apart.
var baseEntries = []string{
	"etc", "etc/group", "etc/nsswitch.conf", "etc/os-release", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
	"home", "home/nonroot", "root", "tmp", "usr", "usr/local", "usr/local/bin", "usr/share", "usr/share/zoneinfo",
}

func TestImages(t *testing.T) {
	b := mustBuild(t)
	if got := len(b.results); got != 2 {
		t.Fatalf("%d images, want 2", got)
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var sharedBase v1.Hash // the base layer, the same blob in every image
	for i, spec := range Images() {
		res := b.results[i]
		t.Run(spec.Name, func(t *testing.T) {
			if res.Name != spec.Name || res.Layout != filepath.Join(b.dir, "out", "images", spec.Name) {
				t.Errorf("result %s at %s, want %s at images/%s", res.Name, res.Layout, spec.Name, spec.Name)
			}
			idx, m := layoutIndex(t, res.Layout)
			if d, _ := idx.Digest(); d != res.IndexDigest {
				t.Errorf("the layout holds index %s, the result says %s", d, res.IndexDigest)
			}
			var platforms []string
			for _, d := range m.Manifests {
				platforms = append(platforms, d.Platform.String())
			}
			if !slices.Equal(platforms, testPlatforms) {
				t.Fatalf("the index has %v, want exactly %v", platforms, testPlatforms)
			}
			checkLabels(t, "index annotations", m.Annotations, spec)
			for j, d := range m.Manifests {
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Platforms[j]; got.ManifestDigest != d.Digest || got.Platform != platforms[j] || got.Size <= got.CompressedSize {
					t.Errorf("result %+v, index has %s for %s", got, d.Digest, platforms[j])
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != d.Platform.Architecture || cf.OS != "linux" {
					t.Errorf("%s: config says %s/%s", platforms[j], cf.OS, cf.Architecture)
				}
				bin := "usr/local/bin/" + spec.Name
				if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{"/" + bin}) || !cf.Created.Equal(testEpoch) {
					t.Errorf("%s: user %q entrypoint %q created %s", platforms[j], cf.Config.User, cf.Config.Entrypoint, cf.Created)
				}
				if !slices.Contains(cf.Config.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
					t.Errorf("%s: %s is not on PATH: %q", platforms[j], BinDir, cf.Config.Env)
				}
				checkLabels(t, platforms[j]+" config labels", cf.Config.Labels, spec)

				fs := files(t, img)
				var executables, rest []string
				zones := 0
				for name, f := range fs {
					switch {
					case strings.HasPrefix(name, "usr/share/zoneinfo/"):
						zones++
					case !f.dir && f.mode&0o111 != 0:
						executables = append(executables, name)
					case name != bin:
						rest = append(rest, name)
					}
				}
				slices.Sort(rest)
				if !slices.Equal(executables, []string{bin}) {
					t.Errorf("%s: executables %v, want exactly %s", platforms[j], executables, bin)
				}
				if !slices.Equal(rest, baseEntries) {
					t.Errorf("%s: files %v,\nwant %v", platforms[j], rest, baseEntries)
				}
				if zones < 300 {
					t.Errorf("%s: %d time zones in usr/share/zoneinfo, want Go's database", platforms[j], zones)
				}
				f, err := elf.NewFile(bytes.NewReader(fs[bin].data))
				if err != nil {
					t.Fatalf("%s: %s: %v", platforms[j], bin, err)
				}
				if f.Machine != machine[d.Platform.Architecture] {
					t.Errorf("%s: %s is for %s", platforms[j], bin, f.Machine)
				}
				if spec.Name == ResolverImage && res.Platforms[j].Size >= 30<<20 {
					t.Errorf("%s: the resolver image is %d bytes uncompressed, want < 30 MiB", platforms[j], res.Platforms[j].Size)
				}
				layers, err := img.Layers()
				if err != nil || len(layers) != 2 {
					t.Fatalf("%s: %d layers (%v), want the base and the binary", platforms[j], len(layers), err)
				}
				baseSize, _ := layers[0].Size()
				baseDigest, _ := layers[0].Digest()
				if sharedBase != (v1.Hash{}) && sharedBase != baseDigest {
					t.Errorf("%s %s: base layer %s, another image's is %s: want one blob for all", spec.Name, platforms[j], baseDigest, sharedBase)
				}
				sharedBase = baseDigest
				t.Logf("%s %s: %d bytes uncompressed, %d compressed (the base layer %d)", spec.Name, platforms[j], res.Platforms[j].Size, res.Platforms[j].CompressedSize, baseSize)
			}
		})
	}
}

func checkLabels(t *testing.T, where string, got map[string]string, spec ImageSpec) {
	t.Helper()
	want := map[string]string{
		"org.opencontainers.image.title":       spec.Name,
		"org.opencontainers.image.description": spec.Description,
		"org.opencontainers.image.source":      DefaultSource,
		"org.opencontainers.image.url":         DefaultSource,
		"org.opencontainers.image.version":     "v0.0.0-release-test",
		"org.opencontainers.image.revision":    "0123456789abcdef",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     "2026-11-30T12:00:00Z",
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: %v,\nwant %v", where, got, want)
	}
}

// The base: the users, their homes, /tmp, and a CA bundle of certificates.
func TestBase(t *testing.T) {
	b := mustBuild(t)
	idx, m := layoutIndex(t, b.results[0].Layout)
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	fs := files(t, img)
	for _, tc := range []struct {
		name     string
		mode     int64
		uid      int
		contains string
	}{
		{"etc/passwd", 0o644, 0, "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{"etc/passwd", 0o644, 0, "root:x:0:0:"},
		{"etc/passwd", 0o644, 0, "nobody:x:65534:65534:"},
		{"etc/group", 0o644, 0, "nonroot:x:65532:\n"},
		{"etc/nsswitch.conf", 0o644, 0, "hosts: files dns"},
		{"etc/os-release", 0o644, 0, "ID=kubernetes-entrypoint-static\n"},
		{"home/nonroot", 0o700, 65532, ""},
		{"root", 0o700, 0, ""},
		{"tmp", 0o1777, 0, ""},
		{"usr/share/zoneinfo/Europe/Berlin", 0o644, 0, "TZif"},
	} {
		f, ok := fs[tc.name]
		if !ok {
			t.Errorf("no %s", tc.name)
			continue
		}
		if f.mode != tc.mode || f.uid != tc.uid || f.gid != tc.uid || !strings.Contains(string(f.data), tc.contains) {
			t.Errorf("%s: mode %o uid %d gid %d, content %.80q; want mode %o, owner %d, containing %q", tc.name, f.mode, f.uid, f.gid, f.data, tc.mode, tc.uid, tc.contains)
		}
	}
	rest := fs["etc/ssl/certs/ca-certificates.crt"].data
	var n int
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			t.Errorf("certificate %d of the CA bundle: %v", n, err)
		}
		n++
	}
	if n < 100 || len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("the CA bundle holds %d certificates and %d bytes of something else", n, len(rest))
	}
}

// A second build into another directory, binaries linked afresh, gives the same
// digests, layer for layer.
func TestImagesAreReproducible(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("builds on linux only")
	}
	b := mustBuild(t)
	again, err := WriteImages(context.Background(), testOptions(t.TempDir())) // no Binaries: its own
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		first, second := b.results[i], again[i]
		if first.IndexDigest != second.IndexDigest || !slices.Equal(first.Platforms, second.Platforms) {
			t.Errorf("%s: two builds differ:\n%+v\n%+v", first.Name, first, second)
		}
	}
	// A different epoch is a different image: the time stamps are in it.
	o := testOptions(t.TempDir())
	o.Platforms = testPlatforms[:1]
	o.Epoch = testEpoch.Add(time.Second)
	o.Binaries = b.bins // the epoch is not in the binaries
	other, err := WriteImages(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Platforms[0].ManifestDigest == b.results[0].Platforms[0].ManifestDigest {
		t.Errorf("another epoch gave the same manifest %s", other[0].Platforms[0].ManifestDigest)
	}
}

func TestImageOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ImageOptions)
		want string // in the error; empty: valid
	}{
		{"valid", func(*ImageOptions) {}, ""},
		{"no dir", func(o *ImageOptions) { o.Dir = "" }, "no output directory"},
		{"no version", func(o *ImageOptions) { o.Version = "" }, "no version"},
		{"no platform", func(o *ImageOptions) { o.Platforms = nil }, "no platform"},
		{"no epoch", func(o *ImageOptions) { o.Epoch = time.Time{} }, "no epoch"},
		{"not linux", func(o *ImageOptions) { o.Platforms = []string{"windows/amd64"} }, `platform "windows/amd64" is not linux/<arch>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions("out")
			tc.edit(&o)
			err := o.check()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("check() = %v, want %q", err, tc.want)
			}
		})
	}
}

// Binaries links each (package, platform, version) once, however many ask at once,
// and a package that does not build is an error, not a file.
func TestBinariesBuildOnce(t *testing.T) {
	b := mustBuild(t)
	first, err := b.bins.Build(context.Background(), testOptions("").Repo, "./cmd/entrypoint", testPlatforms[0], testOptions("").Version)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	paths := make([]string, 4)
	for i := range paths {
		wg.Go(func() {
			p, err := b.bins.Build(context.Background(), testOptions("").Repo, "./cmd/entrypoint", testPlatforms[0], testOptions("").Version)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		})
	}
	wg.Wait()
	for _, p := range paths {
		if p != first {
			t.Errorf("a second request got %s, want the first build %s", p, first)
		}
	}
	if again, err := os.Stat(first); err != nil || !again.ModTime().Equal(st.ModTime()) {
		t.Errorf("the binary was written again (%v)", err)
	}
	other := &Binaries{Dir: t.TempDir()}
	if _, err := other.Build(context.Background(), testOptions("").Repo, "./cmd/nonexistent", testPlatforms[0], "v1"); err == nil {
		t.Error("a package that does not exist built")
	}
}
