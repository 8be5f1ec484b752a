package imageconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

// Response bodies that are neither manifests nor blobs (the /v2/ ping, token
// answers) are small; go-containerregistry reads tokens up to 64 KiB, so the
// same bound holds here.
const otherBodyLimit = 64 << 10

// errorBodyLimit bounds the body of a non-2xx answer handed to
// go-containerregistry, which parses it into a transport.Error. Longer bodies
// are cut (not rejected) so that the status code still reaches the error.
const errorBodyLimit = 32 << 10

// guard is the innermost RoundTripper of every registry request, including
// token requests and redirects: it refuses plain HTTP to registries not listed
// as insecure, refuses literal link-local and cloud metadata addresses (the
// dialer of New's transport also refuses them after DNS resolution), and caps
// what may be read of each response body.
type guard struct {
	next     http.RoundTripper
	insecure map[string]bool
	manifest int64 // bytes of a manifest or index
	config   int64 // bytes of a blob (only config blobs are fetched)
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	refuse := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if req.URL.Scheme == "http" && !g.insecure[req.URL.Host] {
		return refuse(fmt.Errorf("refusing plain HTTP to %s (not an insecure registry of the webhook, see --registry-insecure)", safetext.Truncate(req.URL.Host, 100)))
	}
	// Through a proxy the dialer only sees the proxy's address, so literal
	// addresses are checked here as well.
	if a, err := netip.ParseAddr(strings.Trim(req.URL.Hostname(), "[]")); err == nil && forbiddenAddr(a) {
		return refuse(&forbiddenAddrError{addr: a.Unmap().String()})
	}

	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if req.Method == http.MethodHead || resp.Body == nil || resp.Body == http.NoBody {
		return resp, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body = &cutBody{rc: resp.Body, left: errorBodyLimit}
		resp.ContentLength = -1
		return resp, nil
	}
	what, limit := g.limitFor(req)
	if resp.ContentLength > limit {
		_ = resp.Body.Close()
		return nil, &tooLargeError{what: what, limit: limit, size: resp.ContentLength}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, what: what, limit: limit}
	return resp, nil
}

// limitFor says what a request fetches, from the path of the request that
// started its redirect chain (a blob is often redirected to a storage host).
func (g *guard) limitFor(req *http.Request) (string, int64) {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	path := strings.Split(strings.TrimSuffix(first.URL.Path, "/"), "/")
	if len(path) >= 4 && path[1] == "v2" {
		switch path[len(path)-2] {
		case "manifests":
			return "manifest", g.manifest
		case "blobs":
			return "image config", g.config
		}
	}
	return "registry response", otherBodyLimit
}

// tooLargeError is returned instead of reading something larger than its
// limit.
type tooLargeError struct {
	what  string // "manifest", "image config", "registry response"
	limit int64
	size  int64 // declared size; -1 when the body ran past the limit
}

func (e *tooLargeError) Error() string {
	if e.size < 0 {
		return fmt.Sprintf("the %s is larger than the limit of %d bytes (cut off after reading %d)", e.what, e.limit, e.limit+1)
	}
	return fmt.Sprintf("the %s is %d bytes, more than the limit of %d bytes (not read)", e.what, e.size, e.limit)
}

// flag names the webhook flag that raises the limit.
func (e *tooLargeError) flag() string {
	switch e.what {
	case "manifest":
		return "--registry-max-manifest-bytes"
	case "image config":
		return "--registry-max-config-bytes"
	}
	return ""
}

// limitedBody reads at most left bytes and fails on the byte after them: it
// never reads more than limit+1 bytes of a body that lies about its length.
type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	what  string
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &tooLargeError{what: b.what, limit: b.limit, size: -1}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), &tooLargeError{what: b.what, limit: b.limit, size: -1}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// cutBody ends a body after left bytes, silently.
type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

// forbiddenAddr says whether a registry may never be contacted at a: the
// link-local ranges (169.254.0.0/16, fe80::/10, which hold 169.254.169.254
// of AWS, GCP, Azure and others) and the metadata addresses outside them.
// Loopback and private addresses stay allowed (local registries, tests).
func forbiddenAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		return true
	}
	// Cloud metadata services outside the link-local ranges.
	switch a.String() {
	case "fd00:ec2::254", // AWS over IPv6
		"100.100.100.200": // Alibaba Cloud
		return true
	}
	return false
}

// forbiddenAddrError is the refusal to connect to a forbidden address.
type forbiddenAddrError struct{ addr string }

func (e *forbiddenAddrError) Error() string {
	return fmt.Sprintf("refusing to contact %s: link-local and cloud metadata addresses are never registries", e.addr)
}

// dialHooks lets tests resolve names with their own DNS and see which
// addresses were allowed to connect; New uses none.
type dialHooks struct {
	resolver *net.Resolver
	control  func(network, address string, c syscall.RawConn) error
}

// guardedControl runs after DNS resolution and before connect(2), for every
// address the dialer tries, so it also covers DNS rebinding and redirects.
func guardedControl(next func(string, string, syscall.RawConn) error) func(string, string, syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("refusing to dial %q: not an address", address)
		}
		if forbiddenAddr(ap.Addr()) {
			return &forbiddenAddrError{addr: ap.Addr().Unmap().String()}
		}
		if next != nil {
			return next(network, address, c)
		}
		return nil
	}
}

// newTransport builds the transport under the guard: go-containerregistry's
// defaults, a dialer that refuses forbidden addresses, and rootCAs trusted in
// addition to the system's.
func newTransport(rootCAs *x509.CertPool, hooks dialHooks) *http.Transport {
	dialer := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  hooks.resolver,
		Control:   guardedControl(hooks.control),
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if rootCAs == nil {
		return t
	}
	// crypto/x509 cannot add a pool to the system's, so the chain is verified
	// here against each in turn. The name to verify is the dialed host's: the
	// TLS state carries none for an IP address (no SNI). Through a proxy the
	// transport does the handshake itself, with the name from the state.
	t.TLSClientConfig = verifyingConfig("", rootCAs)
	t.ForceAttemptHTTP2 = false // a custom TLS dialer would need its own ALPN
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, verifyingConfig(host, rootCAs))
		if err := c.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return c, nil
	}
	return t
}

// verifyingConfig verifies the server's chain for host (for the name in the
// TLS state when host is empty) against the system's roots, then extra's.
func verifyingConfig(host string, extra *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         host,
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := host
			if name == "" {
				name = cs.ServerName
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the registry presented no certificate")
			}
			if name == "" {
				return errors.New("no server name to verify the registry's certificate against")
			}
			opts := x509.VerifyOptions{DNSName: name, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			_, sysErr := leaf.Verify(opts)
			if sysErr == nil {
				return nil
			}
			opts.Roots = extra
			if _, err := leaf.Verify(opts); err == nil {
				return nil
			}
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: sysErr}
		},
	}
}

// waitSlot takes one of the slots of lookups in flight, or fails when ctx
// ends first.
func waitSlot(ctx context.Context, slots chan struct{}) (release func(), err error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}
