package local

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// A redirect to another host is never followed: the check stays not ready, says
// where it was sent (without the path and query, which may carry a token), and
// the other server sees no request. Redirects on the URL's own origin are
// followed, but not forever.
func TestHTTPRedirectPolicy(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	mux := http.NewServeMux()
	mux.Handle("/away", http.RedirectHandler(other.URL+"/healthz?token=s3cr3t", http.StatusFound))
	mux.Handle("/hop", http.RedirectHandler("/away", http.StatusFound)) // same host, then away
	mux.Handle("/loop", http.RedirectHandler("/loop", http.StatusTemporaryRedirect))
	server := httptest.NewServer(mux)
	defer server.Close()

	for _, tc := range []struct{ path, want string }{
		{"/away", "redirected to " + other.URL + ", another host; not followed"},
		{"/hop", "redirected to " + other.URL + ", another host; not followed"},
		{"/loop", "more than 5 redirects"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := &statusRecorder{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := startWait(ctx, &HTTP{URL: server.URL + tc.path, Interval: fastPoll}, rec)
			rec.waitForReason(t, tc.want)
			requireCancelReturns(t, cancel, done)
			for _, s := range rec.all() {
				if s.Ready || strings.Contains(s.Reason, "s3cr3t") {
					t.Errorf("reported %+v", s)
				}
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests, want none", n)
	}
}

// The redirect policy applies to an injected client too, and leaves it unchanged.
func TestHTTPRedirectPolicyWithInjectedClient(t *testing.T) {
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	server := httptest.NewTLSServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer server.Close()
	client := server.Client()
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(other.Certificate())
	rec := &statusRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startWait(ctx, &HTTP{URL: server.URL, Client: client, Interval: fastPoll}, rec)
	rec.waitForReason(t, "another host; not followed")
	requireCancelReturns(t, cancel, done)
	if client.CheckRedirect != nil {
		t.Error("the injected client's redirect policy was changed")
	}
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
