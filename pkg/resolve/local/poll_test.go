package local

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

func TestPollReportsOnlyChanges(t *testing.T) {
	sequence := []resolve.Status{
		{Reason: "a"}, {Reason: "a"}, {Reason: "b"}, {Reason: "b"}, {Reason: "a"}, {Ready: true},
	}
	calls := 0
	rec := &statusRecorder{}
	err := pollUntilReady(context.Background(), time.Millisecond, rec.report,
		func(context.Context) (resolve.Status, error) {
			s := sequence[calls]
			calls++
			return s, nil
		})
	if err != nil {
		t.Fatalf("pollUntilReady: %v", err)
	}
	want := []resolve.Status{{Reason: "a"}, {Reason: "b"}, {Reason: "a"}, {Ready: true}}
	got := rec.all()
	if len(got) != len(want) {
		t.Fatalf("reported %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reported %+v, want %+v", got, want)
		}
	}
	if calls != len(sequence) {
		t.Errorf("checked %d times, want %d", calls, len(sequence))
	}
}

func TestPollReturnsTerminalError(t *testing.T) {
	broken := resolve.Terminal("broken for good")
	err := pollUntilReady(context.Background(), time.Millisecond, nil,
		func(context.Context) (resolve.Status, error) { return resolve.Status{}, broken })
	if !errors.Is(err, broken) {
		t.Fatalf("got %v, want %v", err, broken)
	}
}

func TestPollChecksAtOnceAndHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	checked := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		// An hour-long interval: the first check must not wait for it, and
		// cancellation must not either.
		done <- pollUntilReady(ctx, time.Hour, nil, func(context.Context) (resolve.Status, error) {
			select {
			case checked <- struct{}{}:
			default:
			}
			return resolve.Status{Reason: "not yet"}, nil
		})
	}()
	select {
	case <-checked:
	case <-time.After(eventually):
		t.Fatal("no check at start")
	}
	requireCancelReturns(t, cancel, done)
}

func TestPollAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := pollUntilReady(ctx, time.Millisecond, nil, func(context.Context) (resolve.Status, error) {
		t.Error("checked after the context ended")
		return resolve.Status{Ready: true}, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
