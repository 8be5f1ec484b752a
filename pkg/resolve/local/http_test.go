package local

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPString(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://x/healthz", "http https://x/healthz"},
		{"http://admin:secret@x/", "http http://admin:xxxxx@x/"},
	} {
		if got := NewHTTP(tc.url).String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestHTTPReadyAfterServiceUnavailable(t *testing.T) {
	var requests atomic.Int32
	var connections atomic.Int32
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 3 {
			http.Error(w, "starting up", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			connections.Add(1)
		}
	}
	server.Start()
	defer server.Close()

	rec := &statusRecorder{}
	dep := &HTTP{URL: server.URL + "/healthz", Interval: fastPoll}
	if err := waitResult(t, startWait(context.Background(), dep, rec)); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	rec.waitForReason(t, "HTTP 503")
	rec.requireEndsReady(t)
	rec.requireNoRepeats(t)
	// Bodies drained and closed let one connection serve every poll.
	if got := connections.Load(); got != 1 {
		t.Errorf("%d connections for %d requests, want 1: response bodies not drained or closed", got, requests.Load())
	}
}

func TestHTTPSWithServerCertificate(t *testing.T) {
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer server.Close()

	t.Run("trusted", func(t *testing.T) {
		dep := &HTTP{URL: server.URL, Client: server.Client(), Interval: fastPoll}
		if err := waitResult(t, startWait(context.Background(), dep, &statusRecorder{})); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		rec := &statusRecorder{}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := startWait(ctx, &HTTP{URL: server.URL, Interval: fastPoll}, rec)
		rec.waitForReason(t, "certificate")
		requireCancelReturns(t, cancel, done)
	})
}

func TestHTTPFollowsRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler("/healthz", http.StatusFound))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/to-broken", http.RedirectHandler("/broken", http.StatusMovedPermanently))
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	server := httptest.NewServer(mux)
	defer server.Close()

	t.Run("to 200", func(t *testing.T) {
		rec := &statusRecorder{}
		if err := waitResult(t, startWait(context.Background(), &HTTP{URL: server.URL + "/old"}, rec)); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		rec.requireEndsReady(t)
	})
	t.Run("to 500", func(t *testing.T) {
		rec := &statusRecorder{}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := startWait(ctx, &HTTP{URL: server.URL + "/to-broken", Interval: fastPoll}, rec)
		rec.waitForReason(t, "HTTP 500")
		requireCancelReturns(t, cancel, done)
	})
}

func TestHTTPCancelDuringRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers
	}))
	defer server.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startWait(ctx, &HTTP{URL: server.URL, RequestTimeout: time.Hour}, &statusRecorder{})
	select {
	case <-arrived:
	case <-time.After(eventually):
		t.Fatal("request never arrived")
	}
	requireCancelReturns(t, cancel, done)
}

func TestHTTPRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer server.Close()
	defer close(release)

	rec := &statusRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startWait(ctx, &HTTP{URL: server.URL, RequestTimeout: 20 * time.Millisecond, Interval: fastPoll}, rec)
	rec.waitForReason(t, "no answer within 20ms")
	requireCancelReturns(t, cancel, done)
}

func TestHTTPInvalidURLIsTerminal(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"", "scheme"},
		{"ftp://x/", "scheme"},
		{"x/healthz", "scheme"},
		{"http:///healthz", "no host"},
		{"http://x/%zz", "invalid URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			requireTerminal(t, NewHTTP(tc.url).Wait(context.Background(), nil), tc.want)
		})
	}
}
