package kube_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// tcpProxy forwards TCP connections to the API server, TLS untouched, and can go
// down as a stopped API server does: open connections reset, new ones refused.
type tcpProxy struct {
	t            *testing.T
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]struct{}
	accepted     int
}

func newTCPProxy(t *testing.T) (*tcpProxy, *rest.Config) {
	t.Helper()
	target, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target.Host, conns: map[net.Conn]struct{}{}}
	p.up()
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.down)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + p.addr // the serving certificate is for 127.0.0.1, any port
	return p, cfg
}

func (p *tcpProxy) up() {
	p.t.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listening on %s again: %v", addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.serve(c)
		}
	}()
}

func (p *tcpProxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.accepted++
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	go func() { _, _ = io.Copy(c, up); c.Close() }()
}

// down refuses new connections and resets the open ones.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as from a process that is gone
		}
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// After an API server outage of many seconds the resolver is back within the
// capped retry delay (4 s, jittered), not after a backoff that grew through the
// outage (30 s at most before: after 14 s down, the next try came 11 s after the
// API server was back). The dependency became ready during the outage; the
// resolver must neither miss that nor resolve before it can see it.
func TestBackSoonAfterAnOutage(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "mariadb", nil)
	proxy, cfg := newTCPProxy(t)
	c, err := kube.NewClient(cfg, kube.Options{PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "mariadb"}})
	w.blocked(t, "no endpoints")
	proxy.down()
	const outage = 14 * time.Second
	downAt := time.Now()
	createSlice(t, ns, "mariadb", "mariadb-a", endpoint{ip: "10.0.0.1", ready: ptr.To(true)})
	for time.Since(downAt) < outage {
		w.stillBlocked(t) // nothing reaches the API server: no early resolve
	}
	before := proxy.connections()
	proxy.up()
	restored := time.Now()
	// Generous: the cap is 4 s; a backoff grown through the outage takes 11 s or more.
	const bound = 8 * time.Second
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("returned %v, want ready", err)
		}
		t.Logf("ready %s after the API server was back", time.Since(restored).Round(time.Millisecond))
	case <-time.After(bound):
		t.Fatalf("still waiting %s after the API server was back (%d connections since; last status %+v)",
			bound, proxy.connections()-before, w.last())
	}
}
