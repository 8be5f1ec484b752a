package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The trust model is one table, stated in the project's README and in the
// chart's: the two copies may not drift apart.
func TestTrustModelTableIsTheSameInBothREADMEs(t *testing.T) {
	table := func(path string) string {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		start := strings.Index(s, "<!-- trust-model-table")
		end := strings.Index(s, "<!-- end trust-model-table -->")
		if start < 0 || end < start {
			t.Fatalf("%s has no trust-model table between its markers", path)
		}
		lines := strings.Split(s[start:end], "\n")[1:] // after the opening marker's line
		body := strings.TrimSpace(strings.Join(lines, "\n"))
		if strings.Count(body, "\n| ") < 4 {
			t.Fatalf("%s: the trust-model table has fewer than 4 rows:\n%s", path, body)
		}
		return body
	}
	project := table(filepath.Join(repoRoot, "README.md"))
	chart := table(filepath.Join(chartDir, "README.md"))
	if project != chart {
		t.Fatalf("the trust-model tables differ:\nREADME.md:\n%s\n\ncharts/kubernetes-entrypoint/README.md:\n%s", project, chart)
	}
}
