package local

import (
	"context"
	"net"
	"testing"
)

func TestTCPString(t *testing.T) {
	if got, want := NewTCP("db:5432").String(), "tcp db:5432"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// freeAddress returns a loopback address nothing listens on, for now.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTCPReadyWhenListenerStarts(t *testing.T) {
	addr := freeAddress(t)
	rec := &statusRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startWait(ctx, &TCP{Address: addr, Interval: fastPoll}, rec)

	rec.waitForReason(t, "connection refused")
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	defer listener.Close()

	if err := waitResult(t, done); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	rec.requireEndsReady(t)
	rec.requireNoRepeats(t)
	if got := rec.all()[0].Reason; got != "connection refused" {
		t.Errorf("reason %q, want the short form %q", got, "connection refused")
	}
}

func TestTCPRefusedHonoursCancel(t *testing.T) {
	rec := &statusRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startWait(ctx, NewTCP(freeAddress(t)), rec)
	rec.waitForReason(t, "connection refused")
	requireCancelReturns(t, cancel, done)
}

func TestTCPMalformedAddressIsTerminal(t *testing.T) {
	for _, addr := range []string{"", "db", "db:", ":5432", "db:5432:1"} {
		t.Run(addr, func(t *testing.T) {
			err := NewTCP(addr).Wait(context.Background(), nil)
			requireTerminal(t, err, "tcp "+addr, "host:port")
		})
	}
}
