package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// ChartName is the chart, under charts/ in the repository.
const ChartName = "kubernetes-entrypoint"

// ChartOptions describe the packaged chart of a release.
type ChartOptions struct {
	Repo    string // the module's root, holding charts/ChartName
	Dir     string // the release directory; the chart goes to Dir/charts
	Version string // the chart's version and appVersion
	// Epoch is every entry's mtime; Helm's packager writes the time of packaging.
	Epoch time.Time
}

// ChartArchivePath is the packaged chart in a release directory, as helm package
// names it.
func ChartArchivePath(version string) string {
	return path.Join("charts", fmt.Sprintf("%s-%s.tgz", ChartName, version))
}

// WriteChart packages the chart as helm package does (Helm's own packager, so the
// archive is what helm package --version V --app-version V makes), with version
// and appVersion set to the release's: the images' tags, empty in values.yaml,
// default to the appVersion. Then it rewrites the archive's entries with Epoch as
// their mtime, so that the same chart makes the same bytes.
func WriteChart(o ChartOptions) (string, error) {
	if o.Repo == "" || o.Dir == "" || o.Version == "" {
		return "", fmt.Errorf("chart: Repo, Dir and Version are required")
	}
	ch, err := loader.Load(filepath.Join(o.Repo, "charts", ChartName))
	if err != nil {
		return "", fmt.Errorf("loading the chart: %w", err)
	}
	ch.Metadata.Version = o.Version
	ch.Metadata.AppVersion = o.Version
	work, err := os.MkdirTemp("", "ke-chart-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	packaged, err := chartutil.Save(ch, work)
	if err != nil {
		return "", fmt.Errorf("packaging the chart: %w", err)
	}
	in, err := os.ReadFile(packaged)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := retimeTarGz(&out, bytes.NewReader(in), o.Epoch); err != nil {
		return "", fmt.Errorf("the packaged chart %s: %w", filepath.Base(packaged), err)
	}
	rel := ChartArchivePath(o.Version)
	dest := filepath.Join(o.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	return rel, os.WriteFile(dest, out.Bytes(), 0o644)
}

// retimeTarGz copies a gzipped tar, its entries in their order, with every mtime
// set to mtime and no owner; the gzip header keeps its comment and extra field
// (Helm marks its archives there) but no time or name.
func retimeTarGz(w io.Writer, r io.Reader, mtime time.Time) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	zw.Comment = zr.Comment
	zw.Extra = zr.Extra
	tr := tar.NewReader(zr)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: entry of type %q; the chart's archive holds files only", hdr.Name, hdr.Typeflag)
		}
		out := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     hdr.Name,
			Mode:     hdr.Mode,
			Size:     hdr.Size,
			ModTime:  mtime.UTC().Truncate(time.Second),
		}
		if err := tw.WriteHeader(out); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
