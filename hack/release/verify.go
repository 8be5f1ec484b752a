package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
)

// verify checks a release directory as someone downloading it would: checksums.txt
// lists every other file with its sum; the krew manifest is valid, and each of its
// platforms names an archive of the directory by its sha256; each archive holds the
// binary (executable), LICENSE and README.md; each image's OCI layout holds an image
// index whose blobs are all there and match their digests, and its SBOM is CycloneDX; the chart has
// the version. With krew
// (a krew binary, with krew's validate-krew-manifest beside it), krew checks the
// manifest and installs every platform's archive with it, as `kubectl krew install
// --manifest --archive` does.
func verify(ctx context.Context, dir, version, krew string, images bool) error {
	f, err := os.Open(filepath.Join(dir, release.ChecksumsFile))
	if err != nil {
		return err
	}
	listed, err := release.ParseChecksums(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", release.ChecksumsFile, err)
	}
	actual, err := release.Checksums(dir)
	if err != nil {
		return err
	}
	if !slices.Equal(listed, actual) {
		return fmt.Errorf("%s does not list the directory's files and sums:\n%s\nthe directory:\n%s",
			release.ChecksumsFile, release.FormatChecksums(listed), release.FormatChecksums(actual))
	}
	sums := map[string]string{}
	for _, s := range listed {
		sums[s.Path] = s.SHA256
	}

	manifest := filepath.Join(dir, filepath.FromSlash(release.KrewManifestPath))
	b, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	plugin, err := release.ParseKrewPlugin(b)
	if err != nil {
		return err
	}
	if errs := release.ValidateKrewPlugin(plugin, "entrypoint"); len(errs) > 0 {
		return fmt.Errorf("%s: %w", manifest, errs.ToAggregate())
	}
	if plugin.Spec.Version != "v"+version {
		return fmt.Errorf("%s: version %s, want v%s", manifest, plugin.Spec.Version, version)
	}
	if krew != "" {
		// krew's own checks of a manifest (its validation is internal to its module):
		// the fields, every platform selector matching a platform krew knows, none two.
		validate := filepath.Join(filepath.Dir(krew), "validate-krew-manifest")
		if out, err := exec.CommandContext(ctx, validate, "-manifest", manifest, "-skip-install").CombinedOutput(); err != nil {
			return fmt.Errorf("krew's validate-krew-manifest: %w\n%s", err, out)
		}
	}
	for _, p := range plugin.Spec.Platforms {
		osArch := release.OSArch{OS: p.Selector.MatchLabels["os"], Arch: p.Selector.MatchLabels["arch"]}
		archive := path.Join("plugin", release.PluginArchiveName(version, osArch))
		if sums[archive] == "" || sums[archive] != p.SHA256 {
			return fmt.Errorf("%s: %s's sha256 %s is not that of %s (%s)", manifest, osArch, p.SHA256, archive, sums[archive])
		}
		if !strings.HasSuffix(p.URI, "/"+path.Base(archive)) {
			return fmt.Errorf("%s: %s's uri %s does not end in its archive's name %s", manifest, osArch, p.URI, path.Base(archive))
		}
		if err := checkArchive(filepath.Join(dir, filepath.FromSlash(archive)), p.Bin); err != nil {
			return err
		}
		if krew != "" {
			if err := krewInstall(ctx, krew, manifest, filepath.Join(dir, filepath.FromSlash(archive)), osArch); err != nil {
				return err
			}
		}
	}

	for _, spec := range release.Images() {
		if !images {
			break
		}
		if err := checkImage(dir, spec.Name); err != nil {
			return err
		}
	}

	ch, err := loader.Load(filepath.Join(dir, filepath.FromSlash(release.ChartArchivePath(version))))
	if err != nil {
		return fmt.Errorf("the packaged chart: %w", err)
	}
	if ch.Metadata.Version != version || ch.Metadata.AppVersion != version {
		return fmt.Errorf("the packaged chart: version %s, appVersion %s; want %s", ch.Metadata.Version, ch.Metadata.AppVersion, version)
	}
	return nil
}

// checkImage: the image's OCI layout holds one image index with an image for each
// platform, and its SBOM is a CycloneDX document.
func checkImage(dir, name string) error {
	at := filepath.Join(dir, "images", name)
	p, err := layout.FromPath(at)
	if err != nil {
		return fmt.Errorf("the image %s: %w", name, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return fmt.Errorf("the image %s: %w", name, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return fmt.Errorf("the image %s: %w", name, err)
	}
	if len(m.Manifests) != 1 {
		return fmt.Errorf("the image %s: index.json lists %d manifests, want one image index", name, len(m.Manifests))
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return fmt.Errorf("the image %s: %w", name, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("the image %s: %w", name, err)
	}
	if len(im.Manifests) == 0 {
		return fmt.Errorf("the image %s: an image index without images", name)
	}
	// Every manifest, config and layer read and checked against its digest and size.
	if err := validate.Index(idx); err != nil {
		return fmt.Errorf("the image %s: %w", name, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sbom", name+".cdx.json"))
	if err != nil {
		return fmt.Errorf("the SBOM of %s: %w", name, err)
	}
	var sbom struct {
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(b, &sbom); err != nil {
		return fmt.Errorf("the SBOM of %s: %w", name, err)
	}
	if sbom.BOMFormat != "CycloneDX" {
		return fmt.Errorf("the SBOM of %s: bomFormat %q, not CycloneDX", name, sbom.BOMFormat)
	}
	return nil
}

// archiveEntry is a file in a plugin archive.
type archiveEntry struct {
	name string
	mode os.FileMode
}

// checkArchive: the archive holds exactly bin (executable), LICENSE and README.md.
func checkArchive(p, bin string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var entries []archiveEntry
	if strings.HasSuffix(p, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, f := range zr.File {
			entries = append(entries, archiveEntry{f.Name, f.Mode().Perm()})
		}
	} else {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			entries = append(entries, archiveEntry{h.Name, os.FileMode(h.Mode).Perm()})
		}
	}
	want := []archiveEntry{{"LICENSE", 0o644}, {"README.md", 0o644}, {bin, 0o755}}
	slices.SortFunc(want, func(a, b archiveEntry) int { return strings.Compare(a.name, b.name) })
	if !slices.Equal(entries, want) {
		return fmt.Errorf("%s holds %v, want %v", p, entries, want)
	}
	return nil
}

// krewInstall has krew install the archive for its platform, in a KREW_ROOT of its
// own, and checks that it put the binary where kubectl finds plugins.
func krewInstall(ctx context.Context, krew, manifest, archive string, p release.OSArch) error {
	root, err := os.MkdirTemp("", "ke-krew-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	cmd := exec.CommandContext(ctx, krew, "install", "--manifest="+manifest, "--archive="+archive)
	cmd.Env = append(os.Environ(), "KREW_ROOT="+root, "KREW_OS="+p.OS, "KREW_ARCH="+p.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("krew install of %s for %s: %w\n%s", filepath.Base(archive), p, err, out)
	}
	// A symlink into krew's store: Stat follows it to the installed binary.
	if _, err := os.Stat(filepath.Join(root, "bin", release.PluginBin(p))); err != nil {
		return fmt.Errorf("krew installed %s for %s, but: %w", filepath.Base(archive), p, err)
	}
	return nil
}
