package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The trust model is one table, stated in the controller's manual and in the
// chart's README: the two copies may not drift apart, each holds it exactly
// once, and no other manual or README holds a copy of its own.
func TestTrustModelTableIsTheSameInBothREADMEs(t *testing.T) {
	const open, end = "<!-- trust-model-table", "<!-- end trust-model-table -->"
	table := func(path string) string {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		if n, m := strings.Count(s, open), strings.Count(s, end); n != 1 || m != 1 {
			t.Fatalf("%s has %d opening and %d closing trust-model-table markers, want one of each", path, n, m)
		}
		start := strings.Index(s, open)
		stop := strings.Index(s, end)
		if start < 0 || stop < start {
			t.Fatalf("%s has no trust-model table between its markers", path)
		}
		lines := strings.Split(s[start:stop], "\n")[1:] // after the opening marker's line
		body := strings.TrimSpace(strings.Join(lines, "\n"))
		if strings.Count(body, "\n| ") < 4 {
			t.Fatalf("%s: the trust-model table has fewer than 4 rows:\n%s", path, body)
		}
		return body
	}
	manual := filepath.Join(repoRoot, "docs", "controller.md")
	chartREADME := filepath.Join(chartDir, "README.md")
	project := table(manual)
	chart := table(chartREADME)
	if project != chart {
		t.Fatalf("the trust-model tables differ:\ndocs/controller.md:\n%s\n\ncharts/kubernetes-entrypoint/README.md:\n%s", project, chart)
	}

	// Elsewhere the table is linked, not copied.
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append(docs, filepath.Join(repoRoot, "README.md")) {
		if path == manual {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		if strings.Contains(s, open) || strings.Contains(s, "| what a pod names | judged when |") {
			t.Errorf("%s holds a copy of the trust-model table: link to docs/controller.md instead", path)
		}
	}
}
