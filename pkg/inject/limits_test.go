package inject

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// maxCapDenialBytes bounds the denial of a pod past the caps alone: one problem,
// whatever the number of items.
const maxCapDenialBytes = 512

func services(n int) string { return list(n, func(i int) string { return "svc-" + strconv.Itoa(i) }) }

func jobs(n int) string { return list(n, func(i int) string { return "job-" + strconv.Itoa(i) }) }

// podSelectors is a dependency-pod value of n items, each selecting other labels.
func podSelectors(n int) string {
	return "[" + list(n, func(i int) string { return `{"labels":{"app":"a` + strconv.Itoa(i) + `"}}` }) + "]"
}

// TestDependencyCaps: all annotations together may hold spec.MaxItems items, of
// which spec.MaxSelectorItems select by labels; past either the pod is denied
// with one short problem at the annotation holding the most, whatever the count.
func TestDependencyCaps(t *testing.T) {
	const (
		svc     = "entrypoint.io/dependency-service"
		job     = "entrypoint.io/dependency-job"
		jobJSON = "entrypoint.io/dependency-job-json"
		pod     = "entrypoint.io/dependency-pod"
		cel     = "entrypoint.io/dependency-cel"
		remedy  = "; wait for fewer, broader things: one dependency-pod or dependency-job-json item selects any number " +
			"by labels, one dependency-rollout item stands for a whole workload"
	)
	manyCEL := "[" + list(spec.MaxCELItems+1, func(int) string { return celItem("true") }) + "]"
	tests := []struct {
		name        string
		annotations map[string]string
		// problems are the problems expected in order, each a substring of its
		// message; none means admitted. Annotations are listed in the order of the
		// environment contract.
		problems []string
		// path is where the last problem is, when set.
		path string
		// total is how many problems are counted; len(problems) when 0.
		total int
	}{
		{name: "at the cap", annotations: map[string]string{svc: services(spec.MaxItems)}},
		{
			name:        "at the cap, across kinds",
			annotations: map[string]string{svc: services(50), job: jobs(30), pod: podSelectors(20)},
		},
		{
			name:        "duplicates count once",
			annotations: map[string]string{svc: list(100_000, func(i int) string { return "svc-" + strconv.Itoa(i%spec.MaxItems) })},
		},
		{
			name:        "one past the cap",
			annotations: map[string]string{svc: services(spec.MaxItems), "entrypoint.io/dependency-tcp": "db:3306"},
			problems: []string{"101 dependency items (100 in " + svc + ", 1 in entrypoint.io/dependency-tcp), " +
				"more than the 100 a pod may have" + remedy},
			path: "metadata.annotations[" + svc + "]",
		},
		{
			name:        "5,000 services and 47 jobs",
			annotations: map[string]string{svc: services(5000), job: jobs(47)},
			problems: []string{"5,047 dependency items (5,000 in " + svc + ", 47 in " + job + "), " +
				"more than the 100 a pod may have" + remedy},
			path: "metadata.annotations[" + svc + "]",
		},
		{
			name:        "the most are in a later annotation",
			annotations: map[string]string{svc: services(60), job: jobs(100_000)},
			problems:    []string{"100,060 dependency items (60 in " + svc + ", 100,000 in " + job + ")"},
			path:        "metadata.annotations[" + job + "]",
		},
		{
			name:        "100,000 services",
			annotations: map[string]string{svc: services(100_000)},
			problems:    []string{"100,000 dependency items (100,000 in " + svc + "), more than the 100"},
			path:        "metadata.annotations[" + svc + "]",
		},
		{
			name:        "100,000 pods by labels",
			annotations: map[string]string{pod: podSelectors(100_000)},
			problems:    []string{"100,000 dependency items (100,000 in " + pod + "), more than the 100"},
			path:        "metadata.annotations[" + pod + "]",
		},
		{
			name:        "past the cap with a bad item: both are reported",
			annotations: map[string]string{svc: "Bad_Name," + services(100_000)},
			problems:    []string{`item 1 "Bad_Name"`, "100,001 dependency items (100,001 in " + svc + ")"},
			path:        "metadata.annotations[" + svc + "]",
		},
		{
			name:        "a bad annotation's items are not counted",
			annotations: map[string]string{svc: services(spec.MaxItems), job: "Bad_Name,a"},
			problems:    []string{`annotation entrypoint.io/dependency-job: item 1 "Bad_Name"`},
		},
		{name: "at the selector cap", annotations: map[string]string{pod: podSelectors(spec.MaxSelectorItems)}},
		{
			name:        "Jobs by name select nothing",
			annotations: map[string]string{pod: podSelectors(spec.MaxSelectorItems), jobJSON: `[{"name":"a"},{"name":"b"}]`},
		},
		{
			name:        "past the selector cap, Jobs by labels count",
			annotations: map[string]string{pod: podSelectors(spec.MaxSelectorItems), jobJSON: `[{"name":"a"},{"labels":{"app":"db"}}]`},
			problems: []string{"21 dependency items select by labels (1 in " + jobJSON + ", 20 in " + pod + "), more than the 20 a pod may have; " +
				"each is matched against every pod or Job of its namespace on every change: select with fewer, broader labels, or name the Jobs"},
			path: "metadata.annotations[" + pod + "]",
		},
		{
			name:        "past both caps: the items only",
			annotations: map[string]string{pod: podSelectors(spec.MaxItems + 1)},
			problems:    []string{"101 dependency items (101 in " + pod + "), more than the 100"},
		},
		{
			name:        "the CEL cap stays, and a refused CEL annotation does not count",
			annotations: map[string]string{svc: services(spec.MaxItems), cel: manyCEL},
			problems:    []string{"has 17 items, more than 16"},
			path:        "metadata.annotations[" + cel + "]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, outcome, err := Mutate(context.Background(), simplePod(tt.annotations), testConfig())
			if len(tt.problems) == 0 {
				if err != nil || outcome.Result != ResultInjected {
					t.Fatalf("outcome %+v, err %v; want injected", outcome, err)
				}
				if s, err := spec.FromEnv(envOf(got, &got.Spec.Containers[0])); err != nil || spec.CheckLimits(s) != nil {
					t.Errorf("the resolver reads %v, limits %v", err, spec.CheckLimits(s))
				}
				return
			}
			var denied *DeniedError
			if !errors.As(err, &denied) || outcome.Result != ResultDenied || outcome.Reason != ReasonInvalidAnnotation {
				t.Fatalf("outcome %+v, err %v; want denied for its annotations", outcome, err)
			}
			total := tt.total
			if total == 0 {
				total = len(tt.problems)
			}
			if denied.Total != total || len(denied.Problems) != len(tt.problems) {
				t.Fatalf("%d problems (%d shown), want %d:\n%s", denied.Total, len(denied.Problems), total, err)
			}
			for i, want := range tt.problems {
				if !strings.Contains(denied.Problems[i].Detail, want) {
					t.Errorf("problem %d = %q, want it to hold %q", i+1, denied.Problems[i].Detail, want)
				}
			}
			if last := denied.Problems[len(denied.Problems)-1]; tt.path != "" && last.Field != tt.path {
				t.Errorf("last problem at %s, want %s", last.Field, tt.path)
			}
			if len(tt.problems) == 1 && len(err.Error()) > maxCapDenialBytes {
				t.Errorf("denial of %d bytes, want at most %d: %s", len(err.Error()), maxCapDenialBytes, err)
			}
		})
	}
}

// Denying 100,000 items reads no more of the value than it must: it takes about
// the memory of denying 1,000, where parsing it all took some 60 MB. (Compared
// with 1,000 rather than bounded in bytes: the race detector makes the parsers'
// pooled buffers allocate anew.)
func TestDenyingManyItemsIsCheap(t *testing.T) {
	allocated := func(annotations map[string]string) uint64 {
		pod := simplePod(annotations)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, outcome, err := Mutate(context.Background(), pod, testConfig())
		runtime.ReadMemStats(&after)
		if outcome.Result != ResultDenied {
			t.Fatalf("outcome %+v, err %v; want denied", outcome, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, tt := range []struct {
		name        string
		annotations func(n int) map[string]string
	}{
		{"a list", func(n int) map[string]string {
			return map[string]string{"entrypoint.io/dependency-service": services(n)}
		}},
		{"two lists", func(n int) map[string]string {
			return map[string]string{"entrypoint.io/dependency-service": services(n), "entrypoint.io/dependency-job": jobs(n)}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			few, many := allocated(tt.annotations(1000)), allocated(tt.annotations(100_000))
			if many > 3*few+256<<10 {
				t.Errorf("denying 100,000 items took %d bytes of memory, 1,000 items %d; want about as much", many, few)
			}
		})
	}
}

// BenchmarkDenyManyItems: a pod with 100,000 services is denied for them.
func BenchmarkDenyManyItems(b *testing.B) {
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": services(100_000)})
	cfg := testConfig()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, outcome, _ := Mutate(ctx, pod, cfg); outcome.Result != ResultDenied {
			b.Fatalf("%+v", outcome)
		}
	}
}

// countItems counts every kind's items as spec.Count does.
func TestCountItemsIsSpecCount(t *testing.T) {
	selectors := 0
	for _, k := range spec.Kinds() {
		for _, value := range []string{k.Example, `[{"labels":{"app":"a"}},{"labels":{"app":"b"}},{"name":"c"}]`} {
			parsed := &spec.Spec{Namespace: "shop"}
			if k.Parse(parsed, value) != nil {
				continue // the second value is for the kinds that select by labels
			}
			got, want := countItems(parsed, k), spec.Count(parsed)
			if got != want {
				t.Errorf("%s %s: countItems = %+v, spec.Count = %+v", k.Annotation, value, got, want)
			}
			selectors += want.Selectors
		}
	}
	if selectors < 3 {
		t.Errorf("the values hold %d items that select by labels, want some of pods and of Jobs", selectors)
	}
}
