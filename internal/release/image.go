// Package release builds the project's container images and their SBOMs without a
// Docker engine: go build, then go-containerregistry, into OCI image layouts.
//
// Two images, each an OCI image index for the platforms asked for:
//
//   - kubernetes-entrypoint: the resolver alone, /usr/local/bin/kubernetes-entrypoint
//     (on PATH, as in openstack-helm's image, so `command: [kubernetes-entrypoint]`
//     works). The webhook injects this image: as an init container's, or mounted
//     as an image volume (subPath usr/local/bin, inject.ImageVolumeSubPath).
//   - entrypoint-webhook: the webhook, which is also the controller.
//
// Both run as nonroot (65532:65532) on a base of our own, the equivalent of
// gcr.io/distroless/static: that image cannot be pulled where the project is
// built (no registry is reachable), so the base is made here from pinned inputs
// (see baseFiles): /etc/passwd and /etc/group (root, nobody, nonroot), /root,
// /home/nonroot, /tmp (1777), /etc/nsswitch.conf, an /etc/os-release that names
// this base, the CA bundle at /etc/ssl/certs/ca-certificates.crt from
// golang.org/x/crypto/x509roots/fallback (the version in go.mod) and the time zone
// database from the Go toolchain's zoneinfo.zip. There is no shell, no libc, no
// package database. docs/images.md says how to move the binaries onto the real distroless.
//
// The images are reproducible: every time stamp is ImageOptions.Epoch, entries
// are sorted and owned by root (but /home/nonroot), the binaries are built with
// CGO_ENABLED=0 -trimpath -buildvcs=false and the Makefile's ldflags, so the same
// sources, Go version and options give the same digests.
package release

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The images' names: their directories under <Dir>/images and <Dir>/sbom.
const (
	ResolverImage = "kubernetes-entrypoint"
	WebhookImage  = "entrypoint-webhook"
)

// BinDir is where the images hold their binary, on PATH.
const BinDir = "/usr/local/bin"

// DefaultSource is the project's repository, the images' source label.
const DefaultSource = "https://github.com/kubernetes-entrypoint/kubernetes-entrypoint"

// OCI annotation and label keys (github.com/opencontainers/image-spec annotations.md).
const (
	annotationPrefix = "org.opencontainers.image."
	AnnotationSource = annotationPrefix + "source"
	// AnnotationRefName names the index in the layout's index.json: the version.
	AnnotationRefName = annotationPrefix + "ref.name"
)

// license is the project's, as LICENSE states.
const license = "Apache-2.0"

// ImageSpec is one image: a binary built from a main package.
type ImageSpec struct {
	Name        string // the image's and the binary's name
	Package     string // the main package, relative to the module root
	Description string
}

// Images are the images WriteImages builds, in this order.
func Images() []ImageSpec {
	return []ImageSpec{
		{Name: ResolverImage, Package: "./cmd/entrypoint",
			Description: "Makes a container wait for its Kubernetes dependencies, then execs the application: the resolver, injected by entrypoint-webhook"},
		{Name: WebhookImage, Package: "./cmd/webhook",
			Description: "The mutating webhook and controller of kubernetes-entrypoint: injects the resolver into annotated pods"},
	}
}

// ImageOptions describe one build of the images.
type ImageOptions struct {
	// Dir receives images/<name>/ (OCI layouts) and sbom/<name>.cdx.json.
	Dir string
	// Repo is the module's root; empty: the working directory.
	Repo string
	// Version is stamped into the binaries (-X main.version) and the labels.
	Version string
	// Revision is the commit, for the revision label.
	Revision string
	// Platforms as os/arch, e.g. linux/amd64 and linux/arm64.
	Platforms []string
	// Epoch is every time stamp: the files', the config's created, the labels'.
	// SOURCE_DATE_EPOCH or the commit's time.
	Epoch time.Time
	// Source is the repository's URL; empty: DefaultSource.
	Source string
	// Logf reports progress; nil: silent.
	Logf func(format string, args ...any)
	// Binaries builds the binaries, each once; share one between WriteImages and
	// WriteSBOMs so that the SBOM describes the image's binary. nil: each call
	// builds its own in a temporary directory.
	Binaries *Binaries
}

// binaries is o.Binaries, or a fresh set in a temporary directory that done removes.
func (o *ImageOptions) binaries() (b *Binaries, done func(), err error) {
	if o.Binaries != nil {
		return o.Binaries, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "ke-release-")
	if err != nil {
		return nil, nil, err
	}
	return &Binaries{Dir: tmp}, func() { os.RemoveAll(tmp) }, nil
}

// ImageResult is one written image.
type ImageResult struct {
	Name        string
	Layout      string  // the OCI layout's directory
	IndexDigest v1.Hash // the image index, what `crane push` pushes
	Platforms   []PlatformImage
}

// PlatformImage is one platform's manifest in an image index.
type PlatformImage struct {
	Platform       string // os/arch
	ManifestDigest v1.Hash
	// Size is the layers' uncompressed size, CompressedSize their blobs'.
	Size, CompressedSize int64
}

func (o *ImageOptions) check() error {
	var problems []string
	if o.Dir == "" {
		problems = append(problems, "no output directory")
	}
	if o.Version == "" {
		problems = append(problems, "no version")
	}
	if len(o.Platforms) == 0 {
		problems = append(problems, "no platform")
	}
	if o.Epoch.IsZero() {
		problems = append(problems, "no epoch (SOURCE_DATE_EPOCH or the commit's time)")
	}
	for _, p := range o.Platforms {
		if _, err := v1.ParsePlatform(p); err != nil || !strings.HasPrefix(p, "linux/") {
			problems = append(problems, fmt.Sprintf("platform %q is not linux/<arch>", p))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("image options: %s", strings.Join(problems, "; "))
	}
	return nil
}

func (o *ImageOptions) source() string {
	if o.Source != "" {
		return o.Source
	}
	return DefaultSource
}

func (o *ImageOptions) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// WriteImages builds the binaries for every platform and writes each image of
// Images as an OCI layout holding one image index, at <Dir>/images/<name>/
// (replaced if it exists).
func WriteImages(ctx context.Context, o ImageOptions) ([]ImageResult, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	goroot, err := goEnv(ctx, o.Repo, "GOROOT")
	if err != nil {
		return nil, err
	}
	base, err := baseFiles(o.source(), goroot)
	if err != nil {
		return nil, err
	}
	baseLayer, err := base.layer(o.Epoch)
	if err != nil {
		return nil, err
	}
	bins, done, err := o.binaries()
	if err != nil {
		return nil, err
	}
	defer done()

	var results []ImageResult
	for _, spec := range Images() {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		res := ImageResult{Name: spec.Name, Layout: filepath.Join(o.Dir, "images", spec.Name)}
		for _, platform := range o.Platforms {
			bin, err := bins.Build(ctx, o.Repo, spec.Package, platform, o.Version)
			if err != nil {
				return nil, err
			}
			img, err := platformImage(spec, o, platform, baseLayer, bin)
			if err != nil {
				return nil, fmt.Errorf("image %s for %s: %w", spec.Name, platform, err)
			}
			p, err := v1.ParsePlatform(platform)
			if err != nil {
				return nil, err
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
			pi, err := describe(platform, img)
			if err != nil {
				return nil, fmt.Errorf("image %s for %s: %w", spec.Name, platform, err)
			}
			res.Platforms = append(res.Platforms, pi)
		}
		idx = mutate.Annotations(idx, labels(spec, o)).(v1.ImageIndex)
		if res.IndexDigest, err = idx.Digest(); err != nil {
			return nil, err
		}
		if err := writeLayout(res.Layout, idx, o.Version); err != nil {
			return nil, fmt.Errorf("image %s: %w", spec.Name, err)
		}
		o.logf("wrote %s (%s) to %s", spec.Name, res.IndexDigest, res.Layout)
		results = append(results, res)
	}
	return results, nil
}

// labels are the image's OCI labels, on its config and as annotations of its
// manifests and index.
func labels(spec ImageSpec, o ImageOptions) map[string]string {
	l := map[string]string{
		annotationPrefix + "title":       spec.Name,
		annotationPrefix + "description": spec.Description,
		AnnotationSource:                 o.source(),
		annotationPrefix + "url":         o.source(),
		annotationPrefix + "version":     o.Version,
		annotationPrefix + "licenses":    license,
		annotationPrefix + "created":     o.Epoch.UTC().Format(time.RFC3339),
	}
	if o.Revision != "" {
		l[annotationPrefix+"revision"] = o.Revision
	}
	return l
}

// platformImage is the base layer and a layer with the binary in BinDir, with its
// config: the binary as entrypoint, nonroot, PATH and SSL_CERT_FILE as in distroless.
func platformImage(spec ImageSpec, o ImageOptions, platform string, base v1.Layer, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	app := newTree()
	app.file(BinDir+"/"+spec.Name, 0o755, data)
	appLayer, err := app.layer(o.Epoch)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Epoch.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "internal/release: base (distroless static equivalent)"}},
		mutate.Addendum{Layer: appLayer, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "internal/release: " + BinDir + "/" + spec.Name + " from " + spec.Package}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Config = v1.Config{
		Entrypoint: []string{BinDir + "/" + spec.Name},
		User:       ImageUser,
		WorkingDir: "/home/nonroot",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=" + CABundlePath,
		},
		Labels: labels(spec, o),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels(spec, o)).(v1.Image), nil
}

func describe(platform string, img v1.Image) (PlatformImage, error) {
	pi := PlatformImage{Platform: platform}
	var err error
	if pi.ManifestDigest, err = img.Digest(); err != nil {
		return pi, err
	}
	layers, err := img.Layers()
	if err != nil {
		return pi, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return pi, err
		}
		pi.CompressedSize += n
		u, err := uncompressedSize(l)
		if err != nil {
			return pi, err
		}
		pi.Size += u
	}
	return pi, nil
}

// writeLayout replaces dir with an OCI layout whose index.json points at idx,
// named by version.
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{AnnotationRefName: version}))
}

// goEnv is `go env NAME` of the toolchain that builds the binaries.
func goEnv(ctx context.Context, repo, name string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", name)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
