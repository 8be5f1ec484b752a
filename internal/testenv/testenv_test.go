package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// recorder is a testing.TB that records how a helper ended the test instead of
// ending this one.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Cleanup(func())                 {}
func (r *recorder) Logf(string, ...any)            {}
func (r *recorder) Skip(args ...any)               { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)              { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, a ...any) { r.Fatal(fmt.Sprintf(format, a...)) }

// run calls f with r as a test would: Skip and Fatal end only f's goroutine.
func (r *recorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

// Without assets a test skips and says how to get them; with assets that are set
// but do not work it fails: `make test` sets them, and there nothing may skip.
func TestStartT(t *testing.T) {
	tests := []struct {
		name                string
		assets              string
		wantSkip, wantFatal string
	}{
		{name: "unset", assets: "", wantSkip: "make test"},
		{name: "empty directory", assets: t.TempDir(), wantFatal: "starting envtest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(AssetsVar, tt.assets)
			r := &recorder{}
			started := false
			r.run(func(tb testing.TB) {
				StartT(tb, envtest.Environment{})
				started = true
			})
			if started {
				t.Fatal("a control plane started")
			}
			if (tt.wantSkip == "") != (r.skipped == "") || !strings.Contains(r.skipped, tt.wantSkip) {
				t.Errorf("skipped %q, want a skip mentioning %q", r.skipped, tt.wantSkip)
			}
			if (tt.wantFatal == "") != (r.fatal == "") || !strings.Contains(r.fatal, tt.wantFatal) {
				t.Errorf("failed %q, want a failure mentioning %q", r.fatal, tt.wantFatal)
			}
		})
	}
}
