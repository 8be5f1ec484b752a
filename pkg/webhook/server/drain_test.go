package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// testCert is a throwaway certificate for 127.0.0.1.
func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Shutdown of the webhook server: readiness fails at once, a request in flight
// finishes with its context intact (controller-runtime's server alone cancels it),
// a request arriving meanwhile is served and told to close its connection, and the
// server stops once no request has been in flight for a while.
func TestDrain(t *testing.T) {
	cert := testCert(t)
	port := testenv.FreePort(t)
	d := newDrainer(webhook.NewServer(webhook.Options{
		Host: "127.0.0.1", Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
		}},
	}), 30*time.Second, logr.Discard())
	entered := make(chan struct{}, 10)
	d.Register("/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-time.After(time.Second):
			_, _ = io.WriteString(w, "finished")
		case <-r.Context().Done():
			http.Error(w, "cancelled: "+r.Context().Err().Error(), http.StatusServiceUnavailable)
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- d.Start(ctx) }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a test server
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/slow"
	testenv.Eventually(t, 20*time.Second, "the server to listen", func() bool {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test server
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	if err := d.Ready(nil); err != nil {
		t.Fatalf("not ready before shutdown: %v", err)
	}

	type result struct {
		body  string
		code  int
		close bool
		err   error
	}
	get := func() <-chan result {
		out := make(chan result, 1)
		go func() {
			resp, err := client.Get(url) //nolint:noctx // the test bounds it
			if err != nil {
				out <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- result{body: string(b), code: resp.StatusCode, close: resp.Close}
		}()
		return out
	}
	inFlight := get()
	<-entered
	cancel() // shutdown begins while the request is in flight
	testenv.Eventually(t, 5*time.Second, "readiness to fail", func() bool { return d.Ready(nil) != nil })
	late := get() // a request that still arrives, as the API server's may until its endpoint is gone
	for name, ch := range map[string]<-chan result{"the request in flight": inFlight, "a request during the drain": late} {
		select {
		case r := <-ch:
			if r.err != nil || r.code != http.StatusOK || r.body != "finished" {
				t.Errorf("%s: %d %q %v, want 200 finished", name, r.code, r.body, r.err)
			}
			if name == "a request during the drain" && !r.close {
				t.Errorf("%s was not told to close its connection", name)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not finish", name)
		}
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("the server stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop after the drain")
	}
	if _, err := client.Get(url); err == nil { //nolint:noctx // the test bounds it
		t.Error("the server still answers after it stopped")
	}
}
