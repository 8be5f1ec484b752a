package resolve_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// fakeDep reports reason, then waits for release (nil: ready) or ctx.
type fakeDep struct {
	name    string
	reason  string
	release chan error
	stopped chan struct{}
}

func newFake(name, reason string) *fakeDep {
	return &fakeDep{name: name, reason: reason, release: make(chan error, 1), stopped: make(chan struct{})}
}

func (f *fakeDep) String() string { return f.name }

func (f *fakeDep) Wait(ctx context.Context, report func(resolve.Status)) error {
	defer close(f.stopped)
	report(resolve.Status{Reason: f.reason})
	select {
	case err := <-f.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string)        { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recorder) Waiting(b []string)  { r.add("waiting: " + strings.Join(b, "; ")) }
func (r *recorder) Ready(time.Duration) { r.add("ready") }
func (r *recorder) Failed(err error)    { r.add("failed: " + err.Error()) }
func (r *recorder) StartedWithout(b []string, after time.Duration) {
	r.add("started without after " + after.String() + ": " + strings.Join(b, "; "))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(_, args string) { l.mu.Lock(); l.lines = append(l.lines, args); l.mu.Unlock() }
func (l *logLines) joined() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestWaitAllReadyInParallel(t *testing.T) {
	a, b := newFake("service ns/a", "no endpoints"), newFake("job ns/b", "not found")
	rec := &recorder{}
	logs := &logLines{}
	done := make(chan error, 1)
	go func() {
		done <- resolve.Wait(context.Background(), []resolve.Dependency{a, b}, resolve.Options{
			Log: funcr.New(logs.add, funcr.Options{}), ReportInterval: 20 * time.Millisecond, Recorder: rec,
		})
	}()
	// The periodic report names both blockers with their reasons.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.joined(), "job ns/b: not found") || !strings.Contains(logs.joined(), "service ns/a: no endpoints") {
		if time.Now().After(deadline) {
			t.Fatalf("no report of blockers:\n%s", logs.joined())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// b resolving first shows they are awaited in parallel, not in order.
	b.release <- nil
	<-b.stopped
	select {
	case err := <-done:
		t.Fatalf("returned %v with service ns/a still blocked", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.release <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := rec.get()
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "waiting: ") || calls[1] != "ready" {
		t.Errorf("recorder calls %q, want one waiting then ready", calls)
	}
	if !strings.Contains(logs.joined(), `"dependency"="job ns/b"`) || !strings.Contains(logs.joined(), "all dependencies ready") {
		t.Errorf("log lacks the ready lines:\n%s", logs.joined())
	}
}

func TestWaitErrors(t *testing.T) {
	cases := []struct {
		name       string
		release    error // what dependency "a" returns
		timeout    time.Duration
		wantIs     error
		wantText   []string
		wantBlocks bool
	}{
		{name: "terminal failure stops the others", release: resolve.Terminal("job ns/a failed: BackoffLimitExceeded"), wantIs: resolve.ErrTerminal,
			wantText: []string{"a: dependency failed: job ns/a failed: BackoffLimitExceeded"}},
		{name: "an unexpected error is final too, never ignored", release: errors.New("boom"), wantIs: resolve.ErrTerminal, wantText: []string{"a: boom"}},
		{name: "timeout names every blocker", timeout: 50 * time.Millisecond, wantIs: context.DeadlineExceeded, wantBlocks: true,
			wantText: []string{"timed out waiting for 2 dependencies", "a: reason a", "b: reason b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFake("a", "reason a"), newFake("b", "reason b")
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			} else {
				go func() { time.Sleep(20 * time.Millisecond); a.release <- tc.release }()
			}
			rec := &recorder{}
			err := resolve.Wait(ctx, []resolve.Dependency{a, b}, resolve.Options{Recorder: rec})
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %v, want errors.Is %v", err, tc.wantIs)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var blocked *resolve.BlockedError
			if errors.As(err, &blocked) != tc.wantBlocks {
				t.Errorf("BlockedError: %v, want %v", errors.As(err, &blocked), tc.wantBlocks)
			}
			select {
			case <-b.stopped:
			case <-time.After(5 * time.Second):
				t.Fatal("the other dependency was not stopped")
			}
			if calls := rec.get(); len(calls) != 1 || !strings.HasPrefix(calls[0], "failed: ") {
				t.Errorf("recorder calls %q, want one failed", calls)
			}
		})
	}
}

func TestWaitNothingIsImmediate(t *testing.T) {
	if err := resolve.Wait(context.Background(), nil, resolve.Options{}); err != nil {
		t.Fatal(err)
	}
}

// With OptionalAfter the wait ends with nil at that time, naming what still
// blocks in the log and to the Recorder; what resolves or fails before is as
// without it.
func TestWaitOptionalAfter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release map[string]error // dependency name → released with
		wantErr string
		want    []string // recorder calls
	}{
		{name: "one still blocking", release: map[string]error{"service ns/a": nil}, want: []string{"started without after 200ms: job ns/b: not found"}},
		{name: "none resolved", release: map[string]error{},
			want: []string{"started without after 200ms: job ns/b: not found; service ns/a: no endpoints"}},
		{name: "all resolved first", release: map[string]error{"service ns/a": nil, "job ns/b": nil}},
		{name: "terminal failure first", release: map[string]error{"job ns/b": resolve.Terminal("job ns/b failed: BackoffLimitExceeded")},
			wantErr: "job ns/b failed", want: []string{"failed: job ns/b: dependency failed: job ns/b failed: BackoffLimitExceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deps := []*fakeDep{newFake("service ns/a", "no endpoints"), newFake("job ns/b", "not found")}
			for _, d := range deps {
				if err, ok := tc.release[d.name]; ok {
					d.release <- err
				}
			}
			rec := &recorder{}
			logs := &logLines{}
			err := resolve.Wait(context.Background(), []resolve.Dependency{deps[0], deps[1]}, resolve.Options{
				Log: funcr.New(logs.add, funcr.Options{}), ReportInterval: time.Hour, Recorder: rec, OptionalAfter: 200 * time.Millisecond,
			})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Wait = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Wait = %v, want an error with %q", err, tc.wantErr)
			}
			if got := rec.get(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("recorder calls %q, want %q", got, tc.want)
			}
			started := strings.Contains(logs.joined(), "starting without the dependencies still blocking")
			if started != (len(tc.want) > 0 && tc.wantErr == "") {
				t.Errorf("log line about starting without dependencies: %v; logs:\n%s", started, logs.joined())
			}
			for _, d := range deps {
				select {
				case <-d.stopped:
				case <-time.After(5 * time.Second):
					t.Fatalf("%s still waiting after Wait returned", d.name)
				}
			}
		})
	}
}
