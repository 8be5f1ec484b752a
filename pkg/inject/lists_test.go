package inject

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// items makes n list items with item, except those at the 1-based positions in bad,
// which are badItem.
func items(n int, item func(i int) string, badItem string, bad ...int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = item(i)
		if slices.Contains(bad, i+1) {
			out[i] = badItem
		}
	}
	return out
}

// wholeProblems is what a parse of the whole value reports, as a denial shows it.
func wholeProblems(key string, err error) []string {
	var out []string
	for _, ve := range spec.ValueErrors(err) {
		named := *ve
		named.Name = annotationName(key)
		out = append(out, named.Error())
	}
	return out
}

// countingParse wraps parse and records the most items (commas + 1) it was given
// at once, and how often it ran.
func countingParse[T any](parse func(string) ([]T, error), most, calls *int) func(string) ([]T, error) {
	return func(v string) ([]T, error) {
		*calls++
		*most = max(*most, strings.Count(v, ",")+1)
		return parse(v)
	}
}

// A long list is parsed a chunk at a time, and reads exactly as parsed whole: the
// same items, the same problems with the same item numbers, whatever chunk a bad
// item falls in.
func TestParseChunkedIsTheWholeParse(t *testing.T) {
	name := func(i int) string { return "c" + strconv.Itoa(i%700) } // duplicates across chunks
	boundaries := []int{1, listChunk, listChunk + 1, 2 * listChunk, 2*listChunk + 1, 1500}
	tests := []struct {
		name  string
		value string
	}{
		{"short list", strings.Join(items(5, name, "X", 3), ",")},
		{"valid long list", strings.Join(items(1500, name, ""), ",")},
		{"bad items at chunk boundaries", strings.Join(items(1500, name, "X", boundaries...), ",")},
		{"empty items and blanks", " " + strings.Join(items(1500, name, " ", listChunk, listChunk+1), " , ") + " "},
		{"trailing comma", strings.Join(items(listChunk, name, ""), ",") + ",  "},
		{"a last chunk of one bad item", strings.Join(items(listChunk+1, name, "Y_", listChunk+1), ",")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := strings.TrimSpace(tt.value) // as ourAnnotations trims
			wantItems, wantErr := spec.ParseNames(value)
			pl := &planner{ctx: context.Background(), ours: map[string]string{keyContainers: value}}
			var most, calls int
			got, ok := parseChunked(pl, keyContainers, countingParse(spec.ParseNames, &most, &calls))
			if ok != (wantErr == nil) {
				t.Fatalf("ok %v, whole parse error %v", ok, wantErr)
			}
			if ok && !reflect.DeepEqual(got, wantItems) {
				t.Errorf("items differ from the whole parse: %d vs %d", len(got), len(wantItems))
			}
			if shown := details(pl.problems.shown); !slices.Equal(shown, wholeProblems(keyContainers, wantErr)) {
				t.Errorf("problems\n%s\nwant those of the whole parse\n%s", strings.Join(shown, "\n"), strings.Join(wholeProblems(keyContainers, wantErr), "\n"))
			}
			if items := strings.Count(value, ",") + 1; items > listChunk+1 && (most > listChunk+1 || calls < 2) {
				t.Errorf("a list of %d items was parsed in %d calls of up to %d items; want chunks of %d", items, calls, most, listChunk)
			}
		})
	}
}

func TestParseJSONChunkedIsTheWholeParse(t *testing.T) {
	pod := func(i int) string { return `{"labels":{"app":"a` + strconv.Itoa(i) + `"}}` }
	array := func(items []string) string { return "[" + strings.Join(items, ",") + "]" }
	tests := []struct {
		name  string
		value string
	}{
		{"short array", array(items(3, pod, "{}", 2))},
		{"valid long array", array(items(1500, pod, ""))},
		{"bad items at chunk boundaries", array(items(1500, pod, `{"labels":{}}`, 1, listChunk, listChunk+1, 1500))},
		{"a last chunk of one bad item", array(items(listChunk+1, pod, `{"label":1}`, listChunk+1))},
		{"long but not JSON", array(items(1500, pod, "")) + "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := func(v string) ([]spec.PodRef, error) { return spec.ParsePodsJSON(v, "shop") }
			wantItems, wantErr := parse(tt.value)
			pl := &planner{ctx: context.Background(), ours: map[string]string{annotationOf(spec.EnvPodsJSON): tt.value}}
			var most, calls int
			got, ok := parseJSONChunked(pl, annotationOf(spec.EnvPodsJSON), countingParse(parse, &most, &calls))
			if ok != (wantErr == nil) {
				t.Fatalf("ok %v, whole parse error %v", ok, wantErr)
			}
			if ok && !reflect.DeepEqual(got, wantItems) {
				t.Errorf("items differ from the whole parse: %d vs %d", len(got), len(wantItems))
			}
			if shown := details(pl.problems.shown); !slices.Equal(shown, wholeProblems(annotationOf(spec.EnvPodsJSON), wantErr)) {
				t.Errorf("problems\n%s\nwant those of the whole parse\n%s", strings.Join(shown, "\n"), strings.Join(wholeProblems(annotationOf(spec.EnvPodsJSON), wantErr), "\n"))
			}
			var all []json.RawMessage
			if json.Unmarshal([]byte(tt.value), &all) == nil && len(all) > listChunk && (most > listChunk || calls < 2) {
				t.Errorf("an array of %d items was parsed in %d calls of up to %d items; want chunks of %d", len(all), calls, most, listChunk)
			}
		})
	}
}

// A parse that stop ends reads no chunk after, reports the problems of those it
// read, and tells how many items the whole value holds as written.
func TestParseChunkedUntilStops(t *testing.T) {
	name := func(i int) string { return "c" + strconv.Itoa(i) }
	pod := func(i int) string { return `{"labels":{"app":"a` + strconv.Itoa(i) + `"}}` }
	for _, tt := range []struct {
		name  string
		json  bool
		value string
	}{
		{"list", false, strings.Join(items(1500, name, "X", 2), ",")},
		{"JSON array", true, "[" + strings.Join(items(1500, pod, "{}", 2), ",") + "]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pl := &planner{ctx: context.Background(), ours: map[string]string{keyContainers: tt.value}}
			var (
				most, calls, written int
				ok                   bool
			)
			stop := func() bool { return calls == 1 }
			if tt.json {
				parse := func(v string) ([]spec.PodRef, error) { return spec.ParsePodsJSON(v, "shop") }
				_, ok, written = parseJSONChunkedUntil(pl, keyContainers, countingParse(parse, &most, &calls), stop)
			} else {
				_, ok, written = parseChunkedUntil(pl, keyContainers, countingParse(spec.ParseNames, &most, &calls), stop)
			}
			if ok || written != 1500 || calls != 1 || pl.problems.total != 1 {
				t.Errorf("ok %v, %d items written, %d parses, %d problems; want false, 1500, 1 and the bad item 2", ok, written, calls, pl.problems.total)
			}
		})
	}
}
