package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// tarEntries are the names and mtimes of a gzipped tar's entries.
func tarEntries(t *testing.T, b []byte) (names []string, mtimes []time.Time) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, mtimes
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		names = append(names, h.Name)
		mtimes = append(mtimes, h.ModTime.UTC())
	}
}

// TestWriteChart: the packaged chart loads as a chart, has the release's version and
// appVersion, renders every image at the release's tag, holds the chart's files at
// the epoch, and is the same bytes when packaged again (Helm writes the time of
// packaging: retimeTarGz takes it out).
func TestWriteChart(t *testing.T) {
	epoch := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	write := func(version string, epoch time.Time) []byte {
		dir := t.TempDir()
		rel, err := WriteChart(ChartOptions{Repo: "../..", Dir: dir, Version: version, Epoch: epoch})
		if err != nil {
			t.Fatal(err)
		}
		if rel != ChartArchivePath(version) {
			t.Errorf("written to %s, want %s", rel, ChartArchivePath(version))
		}
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := write("1.2.3", epoch)
	if again := write("1.2.3", epoch); !bytes.Equal(first, again) {
		t.Error("packaged twice, the chart's archive differs")
	}
	if other := write("1.2.3", epoch.Add(time.Hour)); bytes.Equal(first, other) {
		t.Error("another epoch made the same bytes: the mtimes are not the epoch")
	}

	names, mtimes := tarEntries(t, first)
	for i, m := range mtimes {
		if !m.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", names[i], m, epoch)
		}
	}
	for _, want := range []string{"Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/_helpers.tpl"} {
		if !slices.Contains(names, ChartName+"/"+want) {
			t.Errorf("the archive lacks %s/%s: %v", ChartName, want, names)
		}
	}

	ch, err := loader.LoadArchive(bytes.NewReader(first))
	if err != nil {
		t.Fatalf("the packaged chart does not load: %v", err)
	}
	if ch.Metadata.Version != "1.2.3" || ch.Metadata.AppVersion != "1.2.3" {
		t.Errorf("version %q, appVersion %q; want 1.2.3", ch.Metadata.Version, ch.Metadata.AppVersion)
	}
	values := map[string]any{"tls": map[string]any{"mode": "self-signed"}}
	top, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "ke", Namespace: "ke", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		t.Fatal(err)
	}
	// Every image the chart runs or injects, as a field or a flag.
	imageRef := regexp.MustCompile(`(?:image:\s*|-image=)"?([^"\s]+)`)
	var images []string
	for _, content := range files {
		for _, m := range imageRef.FindAllStringSubmatch(content, -1) {
			images = append(images, m[1])
		}
	}
	t.Logf("images: %v", images)
	if len(images) == 0 {
		t.Fatal("the rendered chart names no image")
	}
	for _, img := range images {
		if !strings.HasSuffix(img, ":1.2.3") {
			t.Errorf("image %s: want the release's tag 1.2.3", img)
		}
	}
}
