package install

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// maxREADMELines keeps README.md a front door: what the project is, the two
// commands, a quick start, the install and a table of the manuals in docs/.
const maxREADMELines = 300

// markdownLink matches an inline link or image, [text](target) or
// ![alt](target), with a target free of blanks and parentheses.
var markdownLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^()\s]+)\)`)

// inlineCode matches a code span, whose text is not markdown.
var inlineCode = regexp.MustCompile("`[^`]*`")

// mdLines are the lines of a markdown file outside fenced code blocks.
func mdLines(text string) []string {
	var out []string
	fence := ""
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")) {
			fence = trimmed[:3]
			continue
		}
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		out = append(out, line)
	}
	return out
}

// mdLinks are the targets of the links and images of a markdown file, outside
// code blocks and code spans.
func mdLinks(text string) []string {
	var links []string
	for _, line := range mdLines(text) {
		line = inlineCode.ReplaceAllString(line, "")
		for _, m := range markdownLink.FindAllStringSubmatch(line, -1) {
			links = append(links, m[1])
		}
	}
	return links
}

// headingAnchors are the anchors GitHub gives the headings of a markdown file:
// the heading's text in lower case, spaces turned into '-', every other
// character but letters, digits, '-' and '_' dropped; a repeated anchor gets
// "-1", "-2", ... in order.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range mdLines(text) {
		hashes := len(line) - len(strings.TrimLeft(line, "#"))
		if hashes == 0 || hashes > 6 || !strings.HasPrefix(line[hashes:], " ") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(line[hashes:]), "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			anchors[anchor+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[anchor] = true
		}
		seen[anchor]++
	}
	return anchors
}

// manuals are the project's markdown files that the front door leads to.
func manuals(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("docs/ holds no manual")
	}
	return docs
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// README.md is a front door of at most maxREADMELines lines, and every manual
// in docs/ is linked from it.
func TestREADMEIsAFrontDoor(t *testing.T) {
	readme := readFile(t, filepath.Join(repoRoot, "README.md"))
	if n := strings.Count(strings.TrimRight(readme, "\n"), "\n") + 1; n > maxREADMELines {
		t.Errorf("README.md has %d lines, more than %d: move the detail into a manual in docs/ and link it", n, maxREADMELines)
	}
	var linked []string
	for _, link := range mdLinks(readme) {
		path, _, _ := strings.Cut(link, "#")
		linked = append(linked, filepath.Clean(path))
	}
	for _, doc := range manuals(t) {
		rel, err := filepath.Rel(repoRoot, doc)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(linked, rel) {
			t.Errorf("README.md does not link %s: add it to the table of manuals", rel)
		}
	}
}

// Every relative link of README.md, the manuals and the chart's README leads to
// a file that exists and, with a #fragment, to a heading of that file.
func TestDocLinksResolve(t *testing.T) {
	files := append(manuals(t), filepath.Join(repoRoot, "README.md"), filepath.Join(chartDir, "README.md"))
	anchorsOf := map[string]map[string]bool{}
	anchors := func(path string) map[string]bool {
		if a, ok := anchorsOf[path]; ok {
			return a
		}
		a := headingAnchors(readFile(t, path))
		anchorsOf[path] = a
		return a
	}
	checked := 0
	for _, file := range files {
		rel, _ := filepath.Rel(repoRoot, file)
		for _, link := range mdLinks(readFile(t, file)) {
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			checked++
			path, fragment, hasFragment := strings.Cut(link, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: %v", rel, link, err)
					continue
				}
			}
			if !hasFragment {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s: link %q: a #fragment of a file that is not markdown", rel, link)
				continue
			}
			if !anchors(target)[fragment] {
				targetRel, _ := filepath.Rel(repoRoot, target)
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", rel, link, targetRel, fragment)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found in %d files: is the link parser broken?", checked, len(files))
	}
}

// The anchor rules above, on headings of the kinds the manuals use.
func TestHeadingAnchors(t *testing.T) {
	got := headingAnchors("# Title\n\n## The resolver and the webhook (`make bench`)\n" +
		"## 2. Let the workloads' ServiceAccounts read what they wait for\n" +
		"```\n## not a heading\n```\n## Trust model: the controller judges\n## Title\n#nospace\n")
	want := []string{"title", "the-resolver-and-the-webhook-make-bench",
		"2-let-the-workloads-serviceaccounts-read-what-they-wait-for",
		"trust-model-the-controller-judges", "title-1"}
	for _, a := range want {
		if !got[a] {
			t.Errorf("no anchor %q in %v", a, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("anchors %v, want exactly %v", got, want)
	}
}
