package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
)

// busyboxBinary is Debian's busybox-static: one static binary with every applet.
const busyboxBinary = "/bin/busybox"

// buildImages builds the project's two images (as the release does) and the busybox
// stand-in, and imports them into the node's containerd.
func buildImages(ctx context.Context, c *localcluster.Cluster) error {
	if err := c.BuildAndImportProjectImages(ctx, projectImages(), "demo", nil); err != nil {
		return err
	}
	img, err := busybox(busyboxBinary)
	if err != nil {
		return fmt.Errorf("the busybox stand-in: %w", err)
	}
	c.Logf("built %s from %s (Debian's busybox-static): examples/ runs it, and nothing is pulled here", busyboxImage, busyboxBinary)
	return c.ImportV1Image(busyboxImage, img)
}

// buildPlugin builds the kubectl plugin into dir, where the demo's kubectl finds it,
// with the flags of the image's binaries, so that the compiled packages are reused.
func buildPlugin(ctx context.Context, repo, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=demo",
		"-o", filepath.Join(dir, "kubectl-entrypoint"), "./cmd/kubectl-entrypoint")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the kubectl plugin: %w\n%s", err, out)
	}
	return nil
}

// busybox is an image of the static busybox at bin: /bin/busybox, a symlink in /bin
// for each of its applets, /tmp, and sh as the command, like the upstream image.
func busybox(bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bin, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	epoch := time.Unix(0, 0)
	headers := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755, ModTime: epoch},
		{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch},
		{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755, ModTime: epoch},
		{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(data)), ModTime: epoch},
	}
	for _, h := range headers {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, WorkingDir: "/"}
	return mutate.ConfigFile(img, cf)
}
