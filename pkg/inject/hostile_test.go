package inject

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxDenialBytes is the bound every denial must stay under, whatever the pod.
const maxDenialBytes = 16 << 10

// manyContainers is simplePod with n containers app-0 ... app-<n-1>, each with a command.
func manyContainers(annotations map[string]string, n int) *corev1.Pod {
	pod := simplePod(annotations)
	pod.Spec.Containers = nil
	for i := range n {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: "app-" + strconv.Itoa(i), Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"},
		})
	}
	return pod
}

// list is n items made by item, comma-separated.
func list(n int, item func(i int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item(i))
	}
	return b.String()
}

// failingRegistry fails every lookup with a long error, as a registry echoing its
// error page would.
type failingRegistry struct{}

func (failingRegistry) ImageConfig(context.Context, ImageRef) (ImageConfig, error) {
	return ImageConfig{}, errors.New("unexpected status 500: " + strings.Repeat("<html>oops</html>", 1000))
}

// Hostile pods are denied with a short message that still counts every problem,
// shows the first ones in full and cuts long values.
func TestHostileDenialsStayShort(t *testing.T) {
	longName := strings.Repeat("a", 100_000)
	tests := []struct {
		name  string
		pod   func() *corev1.Pod
		cfg   func(Config) Config
		total int
		// shown holds substrings of the message: the first problems, with their values cut.
		shown []string
	}{
		{
			name: "100,000 items naming no container",
			pod: func() *corev1.Pod {
				return simplePod(map[string]string{"entrypoint.io/containers": list(100_000, func(int) string { return "x" })})
			},
			total: 100_000,
			shown: []string{`annotation entrypoint.io/containers: item 1 "x" of "x,x,x`, "... (199999 bytes in all) is not a regular container",
				"item 10 ", "... and 99,990 more problems (100,000 in all)"},
		},
		{
			name: "100,000 items that are no container name",
			pod: func() *corev1.Pod {
				return simplePod(map[string]string{"entrypoint.io/dependency-container": list(100_000, func(int) string { return "X" })})
			},
			total: 100_000,
			shown: []string{`annotation entrypoint.io/dependency-container: item 1 "X" of "X,X,`, "is not a DNS-1123 label", "... and 99,990 more problems (100,000 in all)"},
		},
		{
			// As many as a pod may wait for (spec.MaxItems): more are denied for that alone.
			name: "200 containers, 100 missing ones waited for",
			pod: func() *corev1.Pod {
				return manyContainers(map[string]string{"entrypoint.io/dependency-container": list(100, func(i int) string { return "missing-" + strconv.Itoa(i) })}, 200)
			},
			total: 100,
			shown: []string{`item 1 "missing-0" of`, "expected names of this pod's containers (app-0, app-1, app-2, app-3, app-4, app-5, app-6, app-7, app-8, app-9, ... and 190 more)",
				"... and 90 more problems (100 in all)"},
		},
		{
			name: "a 100 kB unknown key and a 100 kB container name",
			pod: func() *corev1.Pod {
				pod := simplePod(map[string]string{"entrypoint.io/" + longName: "x", "entrypoint.io/containers": longName})
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: longName, Image: "x", Command: []string{"/x"}})
				return pod
			},
			total: 2, // the unknown key, and the container name that is no DNS-1123 label
			shown: []string{"annotation entrypoint.io/aaaa", "... (100000 bytes in all): unknown annotation; expected one of"},
		},
		{
			name: "a 100 kB container name without command",
			pod: func() *corev1.Pod {
				pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "db"})
				pod.Spec.Containers[0].Name, pod.Spec.Containers[0].Command = longName, nil
				return pod
			},
			cfg:   func(c Config) Config { c.ImageConfig = nil; return c },
			total: 1,
			shown: []string{`container "` + longName[:maxQuotedBytes] + `"... (100000 bytes in all) has no command`,
				"add annotation entrypoint.io/command." + longName[:maxQuotedBytes] + "... (100000 bytes in all): '["},
		},
		{
			name: "a 1 MB gate value",
			pod: func() *corev1.Pod {
				return simplePod(map[string]string{"entrypoint.io/gate": "true" + strings.Repeat("x", 1<<20), "entrypoint.io/dependency-service": "db"})
			},
			total: 1,
			shown: []string{`annotation entrypoint.io/gate: "truexxx`, `... (1048580 bytes in all) is neither "true" nor "false"`},
		},
		{
			name: "5,000 unknown keys",
			pod: func() *corev1.Pod {
				annotations := map[string]string{}
				for i := range 5000 {
					annotations[fmt.Sprintf("entrypoint.io/dependency-servic%05d", i)] = "x"
				}
				return simplePod(annotations)
			},
			total: 5000,
			shown: []string{"annotation entrypoint.io/dependency-servic00000: unknown annotation; did you mean entrypoint.io/dependency-service?",
				"... and 4,990 more problems (5,000 in all)"},
		},
		{
			name: "commands for 3,000 missing containers",
			pod: func() *corev1.Pod {
				annotations := map[string]string{}
				for i := range 3000 {
					annotations[fmt.Sprintf("entrypoint.io/command.c%04d", i)] = `["/x"]`
				}
				return manyContainers(annotations, 200)
			},
			total: 3000,
			shown: []string{`annotation entrypoint.io/command.c0000: this pod has no container "c0000"; expected entrypoint.io/command.<container> for one of this pod's containers (app-0, `,
				"... and 2,990 more problems (3,000 in all)"},
		},
		{
			name: "200 containers whose registry lookups fail at length",
			pod: func() *corev1.Pod {
				pod := manyContainers(map[string]string{"entrypoint.io/dependency-service": "db"}, 200)
				for i := range pod.Spec.Containers {
					pod.Spec.Containers[i].Command = nil
					pod.Spec.Containers[i].Image = "registry.example/app-" + strconv.Itoa(i) + ":1.0"
				}
				return pod
			},
			cfg:   func(c Config) Config { c.ImageConfig = failingRegistry{}; return c },
			total: 200,
			shown: []string{`container "app-0" has no command and its image's entrypoint could not be read (image "registry.example/app-0:1.0": unexpected status 500: <html>oops`,
				"... (17023 bytes in all))", "... and 190 more problems (200 in all)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			got, outcome, err := Mutate(context.Background(), tt.pod(), cfg)
			if got != nil || outcome.Result != ResultDenied || err == nil {
				t.Fatalf("outcome %+v, err %v; want denied", outcome, err)
			}
			msg := err.Error()
			if len(msg) >= maxDenialBytes {
				t.Fatalf("denial of %d bytes, want under %d; it starts %.2000s", len(msg), maxDenialBytes, msg)
			}
			for _, want := range tt.shown {
				if !strings.Contains(msg, want) {
					t.Errorf("denial lacks %q:\n%s", want, msg)
				}
			}
			var denied *DeniedError
			if !errors.As(err, &denied) || denied.Total != tt.total {
				t.Errorf("%T counts %d problems, want %d", err, denied.Total, tt.total)
			}
			if want := min(tt.total, MaxShownProblems); len(denied.Problems) != want {
				t.Errorf("%d problems shown, want %d", len(denied.Problems), want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b  string
		limit int
		want  int // the distance, or limit when it is not below
	}{
		{"dependency-service", "dependency-service", 5, 0},
		{"dependency-servic", "dependency-service", 5, 1},
		{"dependecy-job", "dependency-job", 5, 1},
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 3, 3},
		{"abc", "xyz", 2, 2},
		{"short", strings.Repeat("x", 100_000), 5, 5},
		{"", "abc", 5, 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b, tt.limit); got != tt.want {
			t.Errorf("editDistance(%.20q, %.20q, %d) = %d, want %d", tt.a, tt.b, tt.limit, got, tt.want)
		}
	}
}

// A canceled request stops Mutate: no decision, no registry lookup.
func TestMutateHonoursTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reg := &fakeRegistry{}
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "db"})
	pod.Spec.Containers[0].Command = nil
	got, outcome, err := Mutate(ctx, pod, Config{Image: testImage, ImageConfig: reg})
	if got != nil || !errors.Is(err, context.Canceled) || outcome.Result != ResultError || outcome.Reason != ReasonCanceled {
		t.Fatalf("Mutate on a canceled context = %v, %+v, %v; want nil, error canceled, an error wrapping context.Canceled", got != nil, outcome, err)
	}
	if asked := reg.requests(); len(asked) != 0 {
		t.Errorf("the registry was asked %d times after the request was canceled", len(asked))
	}
}

// Checking a list of 100,000 names stops when the context ends, not at its end.
func TestCheckNamesStopsWithTheContext(t *testing.T) {
	ctx := &countdownContext{Context: context.Background(), left: 3}
	pod := simplePod(map[string]string{"entrypoint.io/containers": list(100_000, func(int) string { return "app" }) + ",x"})
	_, outcome, err := Mutate(ctx, pod, testConfig())
	if !errors.Is(err, context.Canceled) || outcome.Result != ResultError {
		t.Fatalf("outcome %+v, err %v; want stopped by the context", outcome, err)
	}
	if ctx.calls > 10 {
		t.Errorf("the context was asked %d times, want the checks to stop soon after it ended", ctx.calls)
	}
}

// countdownContext reports itself canceled after left calls of Err.
type countdownContext struct {
	context.Context
	left, calls int
}

func (c *countdownContext) Err() error {
	c.calls++
	if c.calls > c.left {
		return context.Canceled
	}
	return nil
}

// blockingRegistry holds every lookup until release is closed, and counts those in
// flight. Images named ".../fail-N" fail.
type blockingRegistry struct {
	mu       sync.Mutex
	inFlight int
	peak     int
	asked    []ImageRef
	// started gets one value per lookup as it starts.
	started chan string
	release chan struct{}
}

func newBlockingRegistry() *blockingRegistry {
	return &blockingRegistry{started: make(chan string, 1000), release: make(chan struct{})}
}

func (r *blockingRegistry) ImageConfig(ctx context.Context, ref ImageRef) (ImageConfig, error) {
	r.mu.Lock()
	r.inFlight++
	r.peak = max(r.peak, r.inFlight)
	r.asked = append(r.asked, ref)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	r.started <- ref.Image
	select {
	case <-r.release:
	case <-ctx.Done():
		return ImageConfig{}, ctx.Err()
	}
	if strings.Contains(ref.Image, "/fail-") {
		return ImageConfig{}, errors.New("manifest unknown")
	}
	return ImageConfig{Entrypoint: []string{"/bin/" + path.Base(ref.Image)}}, nil
}

// podWithImages has one container without a command per image.
func podWithImages(images ...string) *corev1.Pod {
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "db"})
	pod.Spec.Containers = nil
	for i, image := range images {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + strconv.Itoa(i), Image: image})
	}
	return pod
}

// The registry lookups of one pod run at the same time, at most maxLookupsInFlight
// of them, each image once; denials list failures in container order whatever the
// order the lookups end in.
func TestImageLookupsRunConcurrently(t *testing.T) {
	images := []string{"r.example/fail-0", "r.example/a", "r.example/fail-2", "r.example/b", "r.example/a", "r.example/c", "r.example/fail-6"}
	distinct := 6
	reg := newBlockingRegistry()
	type result struct {
		pod *corev1.Pod
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, _, err := Mutate(context.Background(), podWithImages(images...), Config{Image: testImage, ImageConfig: reg, LookupBudget: time.Hour})
		done <- result{got, err}
	}()
	// All lookups that may run at once start before any is released: they do
	// not wait for each other.
	for range maxLookupsInFlight {
		select {
		case <-reg.started:
		case <-time.After(time.Minute):
			t.Fatalf("after a minute only some lookups started, though none had ended (at most %d at once)", maxLookupsInFlight)
		}
	}
	close(reg.release)
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Mutate did not return a minute after the lookups were released")
	}
	reg.mu.Lock()
	peak, asked := reg.peak, len(reg.asked)
	reg.mu.Unlock()
	if peak != maxLookupsInFlight {
		t.Errorf("%d lookups ran at once, want %d", peak, maxLookupsInFlight)
	}
	if asked != distinct {
		t.Errorf("%d lookups, want one per distinct image (%d)", asked, distinct)
	}
	var denied *DeniedError
	if !errors.As(r.err, &denied) {
		t.Fatalf("err = %v, want a denial", r.err)
	}
	want := []string{"spec.containers[0].command", "spec.containers[2].command", "spec.containers[6].command"}
	var got []string
	for _, p := range denied.Problems {
		got = append(got, p.Field)
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems at %v, want %v (container order)", got, want)
	}
}

// The lookups of one pod share one budget: those still running when it is spent
// fail, those not started are not made, and the denial says why.
func TestImageLookupBudget(t *testing.T) {
	reg := newBlockingRegistry() // never released
	var images []string
	for i := range 3 * maxLookupsInFlight {
		images = append(images, "r.example/img-"+strconv.Itoa(i))
	}
	_, outcome, err := Mutate(context.Background(), podWithImages(images...), Config{Image: testImage, ImageConfig: reg, LookupBudget: 50 * time.Millisecond})
	var denied *DeniedError
	if !errors.As(err, &denied) || outcome.Reason != ReasonImageLookupFailed {
		t.Fatalf("outcome %+v, err %v; want denied for failed lookups", outcome, err)
	}
	if denied.Total != len(images) {
		t.Errorf("%d problems, want one per container (%d)", denied.Total, len(images))
	}
	if !strings.Contains(err.Error(), "the registry lookups of this pod took longer than 50ms in all") {
		t.Errorf("the denial does not say the budget ran out: %s", err)
	}
	reg.mu.Lock()
	asked := len(reg.asked)
	reg.mu.Unlock()
	if asked != maxLookupsInFlight {
		t.Errorf("%d lookups made, want only the first %d: the budget was spent while they ran", asked, maxLookupsInFlight)
	}
}

// A request canceled while its lookups run ends Mutate without a decision, and no
// further lookup starts.
func TestImageLookupsStopWhenTheRequestEnds(t *testing.T) {
	reg := newBlockingRegistry()
	var images []string
	for i := range 20 {
		images = append(images, "r.example/img-"+strconv.Itoa(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-reg.started
		cancel()
	}()
	_, outcome, err := Mutate(ctx, podWithImages(images...), Config{Image: testImage, ImageConfig: reg, LookupBudget: time.Hour})
	if !errors.Is(err, context.Canceled) || outcome.Result != ResultError {
		t.Fatalf("outcome %+v, err %v; want stopped by the canceled request", outcome, err)
	}
	reg.mu.Lock()
	asked := len(reg.asked)
	reg.mu.Unlock()
	if asked > maxLookupsInFlight {
		t.Errorf("%d lookups made, want at most the %d running when the request ended", asked, maxLookupsInFlight)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s     string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456789... (13 bytes in all)"},
		{"ééééé", 5, "éé... (10 bytes in all)"}, // never half a character
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.limit); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.limit, got, tt.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 99_990: "99,990", 1_234_567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
