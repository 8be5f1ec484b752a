package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildAndImport builds an image from Go packages and imports it into the cluster's
// containerd (k8s.io namespace), for pods with imagePullPolicy: Never.
//
// Each PKG is a Go package path (./cmd/webhook) or BINARY=PKG to name the binary; the
// binaries land in /usr/local/bin and the first one is the entrypoint.
func (c *cluster) buildAndImport(ctx context.Context, ref string, pkgs []string) error {
	tarPath := c.path("images", strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := c.buildImage(ctx, ref, pkgs, tarPath); err != nil {
		return err
	}
	return c.importImage(tarPath)
}

// buildImage compiles pkgs statically and writes a one-layer image as a docker archive.
func (c *cluster) buildImage(ctx context.Context, ref string, pkgs []string, tarPath string) error {
	began := time.Now()
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ke-image-")
	if err != nil {
		return err
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
			return err
		}
	}
	var entrypoint string
	for _, p := range pkgs {
		bin, pkg := path.Base(p), p
		if i := strings.IndexByte(p, '='); i > 0 {
			bin, pkg = p[:i], p[i+1:]
		}
		out := filepath.Join(tmp, bin)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Dir = c.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		inImage := "/usr/local/bin/" + bin
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(inImage, "/"), Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
		if entrypoint == "" {
			entrypoint = inImage
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint: []string{entrypoint},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		WorkingDir: "/",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		return err
	}
	logf("built image %s (%d KiB) in %s", ref, layer.Len()/1024, time.Since(began).Round(time.Millisecond))
	return nil
}

// importImage loads a docker archive into containerd's k8s.io namespace, where the CRI
// plugin (and so the kubelet) sees it.
func (c *cluster) importImage(tarPath string) error {
	began := time.Now()
	out, err := run("ctr", "--address", c.containerdSocket(), "--namespace", "k8s.io", "images", "import", tarPath)
	if err != nil {
		return err
	}
	logf("imported %s in %s: %s", filepath.Base(tarPath), time.Since(began).Round(time.Millisecond), strings.TrimSpace(out))
	return nil
}
