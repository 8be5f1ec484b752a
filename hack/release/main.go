// Command release writes a release's files to a directory (make release):
//
//	go run ./hack/release --version 1.2.3 --dir dist
//
// dist/plugin   the kubectl plugin, one archive per platform (tar.gz; zip on Windows)
// dist/krew     entrypoint.yaml, the krew manifest of those archives
// dist/charts   the Helm chart, packaged, version and appVersion 1.2.3
// dist/images   the images as OCI layouts (internal/release WriteImages)
// dist/sbom     their CycloneDX SBOMs (internal/release WriteSBOMs)
// dist/checksums.txt  sha256sum of every other file
//
// Then it checks the directory (verify.go); with --krew, krew installs each archive.
//
// The same tree, toolchain and epoch write the same bytes: every archive entry's
// mtime is the epoch (SOURCE_DATE_EPOCH, else the commit's time), entries are
// sorted and owned by 0:0, and no docker engine is involved (docs/release.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// options are the command's flags, resolved.
type options struct {
	repo, dir, version, revision, urlTemplate string
	krew                                      string
	epoch                                     time.Time
	pluginPlatforms                           []release.OSArch
	imagePlatforms                            []release.OSArch
	parallel                                  int
	// images: write the images and their SBOMs (false: the plugin, the krew
	// manifest and the chart only).
	images bool
}

var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

func parse(args []string, log io.Writer) (options, error) {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(log)
	version := fs.String("version", "", "the release's version, x.y.z (a leading v is dropped)")
	dir := fs.String("dir", "dist", "the release directory; emptied first (it must be empty or hold a previous release)")
	urlTemplate := fs.String("url-template", release.DefaultReleaseURL, "where the plugin archives are downloaded from, for the krew manifest: {version} and {archive} are replaced")
	pluginPlatforms := fs.String("plugin-platforms", joinOSArch(release.PluginPlatforms()), "the kubectl plugin's platforms, comma-separated os/arch")
	imagePlatforms := fs.String("image-platforms", "linux/amd64,linux/arm64", "the images' platforms, comma-separated os/arch")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "seconds since 1970 written as every file's mtime (default: $SOURCE_DATE_EPOCH, else the HEAD commit's time)")
	revision := fs.String("revision", "", "the commit the release is built from (default: git rev-parse HEAD)")
	parallel := fs.Int("parallel", 2, "plugin platforms built at once")
	images := fs.Bool("images", true, "write the images and their SBOMs; false: the plugin archives, the krew manifest and the chart only")
	krew := fs.String("krew", "", "a krew binary: after writing, krew installs each plugin archive with the manifest (make release passes one)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := options{dir: *dir, version: strings.TrimPrefix(*version, "v"), urlTemplate: *urlTemplate, revision: *revision, parallel: *parallel, krew: *krew, images: *images}
	if !semver.MatchString(o.version) {
		return options{}, fmt.Errorf("--version %q: want a semantic version, x.y.z", *version)
	}
	var err error
	if o.pluginPlatforms, err = parseOSArchList(*pluginPlatforms); err != nil {
		return options{}, fmt.Errorf("--plugin-platforms: %w", err)
	}
	if o.imagePlatforms, err = parseOSArchList(*imagePlatforms); err != nil {
		return options{}, fmt.Errorf("--image-platforms: %w", err)
	}
	if o.repo, err = moduleRoot(); err != nil {
		return options{}, err
	}
	if o.revision == "" {
		if o.revision, err = git(o.repo, "rev-parse", "HEAD"); err != nil {
			return options{}, fmt.Errorf("the revision (or pass --revision): %w", err)
		}
	}
	e := *epoch
	if e == "" {
		if e, err = git(o.repo, "log", "-1", "--format=%ct"); err != nil {
			return options{}, fmt.Errorf("the epoch (or set SOURCE_DATE_EPOCH): %w", err)
		}
	}
	secs, err := strconv.ParseInt(e, 10, 64)
	if err != nil || secs < 0 {
		return options{}, fmt.Errorf("epoch %q: want seconds since 1970", e)
	}
	o.epoch = time.Unix(secs, 0).UTC()
	return o, nil
}

func run(ctx context.Context, args []string, log io.Writer) error {
	o, err := parse(args, log)
	if err != nil {
		return err
	}
	began := time.Now()
	step := func(what string, since time.Time) {
		fmt.Fprintf(log, "release: %s (%s)\n", what, time.Since(since).Round(time.Millisecond))
	}
	if err := emptyDir(o.dir); err != nil {
		return err
	}

	t := time.Now()
	archives, err := release.WritePlugins(ctx, release.PluginOptions{
		Repo: o.repo, Dir: o.dir, Version: o.version, Epoch: o.epoch,
		Platforms: o.pluginPlatforms, Parallel: o.parallel,
	})
	if err != nil {
		return err
	}
	step(fmt.Sprintf("%d plugin archives in %s", len(archives), filepath.Join(o.dir, "plugin")), t)

	template, err := os.ReadFile(filepath.Join(o.repo, "plugins", "entrypoint.yaml"))
	if err != nil {
		return err
	}
	if err := release.WriteKrewManifest(o.dir, release.KrewOptions{
		Template: template, Version: o.version, URLTemplate: o.urlTemplate, Archives: archives,
	}); err != nil {
		return err
	}
	step("the krew manifest "+filepath.Join(o.dir, filepath.FromSlash(release.KrewManifestPath)), t)

	t = time.Now()
	chart, err := release.WriteChart(release.ChartOptions{Repo: o.repo, Dir: o.dir, Version: o.version, Epoch: o.epoch})
	if err != nil {
		return err
	}
	step("the chart "+filepath.Join(o.dir, filepath.FromSlash(chart)), t)

	if o.images {
		t = time.Now()
		if err := writeImages(ctx, o, log); err != nil {
			return err
		}
		step("the images and their SBOMs", t)
	}

	if err := release.WriteChecksums(o.dir); err != nil {
		return err
	}
	step(fmt.Sprintf("%s; version %s, revision %s, epoch %s", filepath.Join(o.dir, release.ChecksumsFile),
		o.version, o.revision, o.epoch.Format(time.RFC3339)), began)

	t = time.Now()
	if err := verify(ctx, o.dir, o.version, o.krew, o.images); err != nil {
		return fmt.Errorf("the release in %s: %w", o.dir, err)
	}
	checked := "checked"
	if o.krew != "" {
		checked += ", each archive installed by krew"
	}
	step(checked, t)
	return nil
}

// writeImages writes the images' OCI layouts (dir/images/<name>) and their SBOMs
// (dir/sbom/<name>.cdx.json), and logs each image's index digest and size.
func writeImages(ctx context.Context, o options, log io.Writer) error {
	platforms := make([]string, len(o.imagePlatforms))
	for i, p := range o.imagePlatforms {
		platforms[i] = p.String()
	}
	bins, err := os.MkdirTemp("", "ke-release-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bins)
	// One set of binaries: the SBOMs describe the images' own binaries.
	opts := release.ImageOptions{
		Dir: o.dir, Repo: o.repo, Version: o.version, Revision: o.revision,
		Platforms: platforms, Epoch: o.epoch, Binaries: &release.Binaries{Dir: bins},
	}
	images, err := release.WriteImages(ctx, opts)
	if err != nil {
		return err
	}
	for _, img := range images {
		for _, p := range img.Platforms {
			fmt.Fprintf(log, "release: image %s %s: %.1f MB, %.1f MB compressed\n",
				img.Name, p.Platform, float64(p.Size)/1e6, float64(p.CompressedSize)/1e6)
		}
		fmt.Fprintf(log, "release: image %s: index %s\n", img.Name, img.IndexDigest)
	}
	if _, err := release.WriteSBOMs(ctx, release.SBOMOptions{ImageOptions: opts}); err != nil {
		return err
	}
	return nil
}

// emptyDir makes dir an empty directory: it must not exist, be empty, or hold a
// previous release (a checksums file), so that a mistyped --dir removes nothing else.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, release.ChecksumsFile)); err != nil {
		return fmt.Errorf("%s is not empty and holds no %s of a previous release: not removing it", dir, release.ChecksumsFile)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

func parseOSArchList(s string) ([]release.OSArch, error) {
	var out []release.OSArch
	for _, f := range strings.Split(s, ",") {
		p, err := release.ParseOSArch(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func joinOSArch(ps []release.OSArch) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// moduleRoot is the directory of go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}
