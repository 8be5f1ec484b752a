package localcluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
)

// BuildAndImport builds an image from Go packages and imports it into the cluster's
// containerd (k8s.io namespace), for pods with imagePullPolicy: Never.
//
// Each PKG is a Go package path (./cmd/webhook) or BINARY=PKG to name the binary; the
// binaries land in /usr/local/bin and the first one is the entrypoint.
func (c *Cluster) BuildAndImport(ctx context.Context, ref string, pkgs []string) error {
	return c.BuildAndImportImage(ctx, imageFromPackages(ref, pkgs))
}

// Image describes an image of static Go binaries in /usr/local/bin, on no base.
type Image struct {
	Ref      string   // e.g. localhost/ke:e2e
	Binaries []Binary // built with CGO_ENABLED=0 -trimpath -ldflags "-s -w"
	// Entrypoint and Cmd of the image config; no Entrypoint: the first binary, unless
	// NoEntrypoint is set.
	Entrypoint, Cmd []string
	NoEntrypoint    bool
	User            string // e.g. 65532; empty: root
	// Files are more regular files (mode 0644) by absolute path, e.g. a CA bundle at
	// /etc/ssl/certs/ca-certificates.crt.
	Files   map[string][]byte
	LDFlags string // appended to -s -w, e.g. -X main.version=e2e
}

// ProjectImages are the references the project's two images are imported as.
type ProjectImages struct {
	Resolver string // the resolver alone, which the webhook injects
	Webhook  string // the webhook and controller
}

// ProjectImageRefs are localhost/kubernetes-entrypoint:TAG and
// localhost/entrypoint-webhook:TAG.
func ProjectImageRefs(tag string) ProjectImages {
	return ProjectImages{
		Resolver: "localhost/" + release.ResolverImage + ":" + tag,
		Webhook:  "localhost/" + release.WebhookImage + ":" + tag,
	}
}

// BuildAndImportProjectImages builds the project's images as the release does
// (internal/release: OCI layouts, here for the host's architecture only), adds
// extra files to each as one more layer (a test registry's CA bundle, say), and
// imports them into the node's containerd as refs.
func (c *Cluster) BuildAndImportProjectImages(ctx context.Context, refs ProjectImages, version string, extra map[string][]byte) error {
	began := time.Now()
	results, err := release.WriteImages(ctx, release.ImageOptions{
		Dir:       c.Path("images", "release"),
		Repo:      c.repo,
		Version:   version,
		Revision:  "local",
		Platforms: []string{"linux/" + runtime.GOARCH},
		// Fixed: the same sources give the same digests, run after run.
		Epoch: time.Unix(0, 0).UTC(),
	})
	if err != nil {
		return fmt.Errorf("the project's images: %w", err)
	}
	c.Logf("built the project's images in %s", time.Since(began).Round(time.Millisecond))
	for _, res := range results {
		ref := refs.Webhook
		if res.Name == release.ResolverImage {
			ref = refs.Resolver
		}
		img, err := layoutImage(res.Layout, runtime.GOARCH)
		if err != nil {
			return fmt.Errorf("%s: %w", res.Layout, err)
		}
		if len(extra) > 0 {
			if img, err = withFiles(img, extra); err != nil {
				return err
			}
		}
		if err := c.ImportV1Image(ref, img); err != nil {
			return err
		}
	}
	return nil
}

// layoutImage is the image for linux/arch of the index in an OCI layout.
func layoutImage(dir, arch string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	tm, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(tm.Manifests) != 1 {
		return nil, fmt.Errorf("index.json lists %d manifests, want one image index", len(tm.Manifests))
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for linux/%s in the index", arch)
}

// withFiles is img with one more layer of regular files (0644, by absolute path).
func withFiles(img v1.Image, files map[string][]byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range slices.Sorted(maps.Keys(files)) {
		name := strings.TrimPrefix(path.Clean("/"+f), "/")
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(files[f])), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[f]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, l)
}

// Binary is one Go main package and its file name in /usr/local/bin.
type Binary struct{ Name, Package string }

func imageFromPackages(ref string, pkgs []string) Image {
	img := Image{Ref: ref}
	for _, p := range pkgs {
		bin, pkg := path.Base(p), p
		if i := strings.IndexByte(p, '='); i > 0 {
			bin, pkg = p[:i], p[i+1:]
		}
		img.Binaries = append(img.Binaries, Binary{Name: bin, Package: pkg})
	}
	return img
}

// BuildAndImportImage builds img and imports it into the cluster's containerd.
func (c *Cluster) BuildAndImportImage(ctx context.Context, img Image) error {
	tarPath := c.Path("images", strings.NewReplacer("/", "_", ":", "_").Replace(img.Ref)+".tar")
	if err := c.BuildImageTar(ctx, img, tarPath); err != nil {
		return err
	}
	return c.ImportImage(tarPath)
}

// buildImage compiles pkgs statically and writes a one-layer image as a docker archive.
func (c *Cluster) buildImage(ctx context.Context, ref string, pkgs []string, tarPath string) error {
	return c.BuildImageTar(ctx, imageFromPackages(ref, pkgs), tarPath)
}

// BuildImageTar compiles img's binaries and writes a one-layer image as a docker
// archive to tarPath.
func (c *Cluster) BuildImageTar(ctx context.Context, spec Image, tarPath string) error {
	img, _, err := c.BuildImage(ctx, spec)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(spec.Ref)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
		return err
	}
	return tarball.WriteToFile(tarPath, tag, img)
}

// BuildImage compiles spec's binaries and returns the one-layer image (for a registry
// push, say) and the size of its layer.
func (c *Cluster) BuildImage(ctx context.Context, spec Image) (v1.Image, int, error) {
	began := time.Now()
	tmp, err := os.MkdirTemp("", "ke-image-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(tmp)

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/", "tmp/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, 0, err
		}
	}
	dirs := map[string]bool{"usr/": true, "usr/local/": true, "usr/local/bin/": true, "tmp/": true}
	files := make([]string, 0, len(spec.Files))
	for f := range spec.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean("/"+f), "/")
		for i := range name {
			if d := name[:i+1]; name[i] == '/' && !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
					return nil, 0, err
				}
			}
		}
		data := spec.Files[f]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, 0, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, 0, err
		}
	}
	var entrypoint string
	for _, b := range spec.Binaries {
		out := filepath.Join(tmp, b.Name)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w "+spec.LDFlags, "-o", out, b.Package)
		cmd.Dir = c.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, 0, fmt.Errorf("go build %s: %w\n%s", b.Package, err, out)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return nil, 0, err
		}
		inImage := "/usr/local/bin/" + b.Name
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(inImage, "/"), Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, 0, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, 0, err
		}
		if entrypoint == "" {
			entrypoint = inImage
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		return nil, 0, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, 0, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, 0, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		User:       spec.User,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		WorkingDir: "/",
	}
	if cf.Config.Entrypoint == nil && !spec.NoEntrypoint && entrypoint != "" {
		cf.Config.Entrypoint = []string{entrypoint}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, 0, err
	}
	c.Logf("built image %s (%d KiB) in %s", spec.Ref, layer.Len()/1024, time.Since(began).Round(time.Millisecond))
	return img, layer.Len(), nil
}

// ImportV1Image writes img, tagged ref, as a docker archive and imports it.
func (c *Cluster) ImportV1Image(ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	tarPath := c.Path("images", strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		return err
	}
	return c.ImportImage(tarPath)
}

// ImportImage loads a docker archive into containerd's k8s.io namespace, where the CRI
// plugin (and so the kubelet) sees it.
func (c *Cluster) ImportImage(tarPath string) error {
	began := time.Now()
	out, err := c.ctr("--namespace", "k8s.io", "images", "import", tarPath)
	if err != nil {
		return err
	}
	// ctr 2.x reports on several lines (a progress table): one line here.
	c.Logf("imported %s in %s: %s", filepath.Base(tarPath), time.Since(began).Round(time.Millisecond), strings.Join(strings.Fields(out), " "))
	return nil
}
