package imageconfig

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func errForbiddenSecrets(name string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, name, errors.New("RBAC says no"))
}

func TestForbiddenAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"169.254.169.254", true},
		{"169.254.170.2", true}, // ECS task metadata
		{"169.254.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"fe80::1", true},
		{"fe80::a9fe:a9fe", true},
		{"ff02::1", true},
		{"fd00:ec2::254", true},
		{"100.100.100.200", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"192.168.1.1", false},
		{"100.100.100.201", false},
		{"fd00:ec2::253", false},
		{"8.8.8.8", false},
		{"169.253.255.255", false},
		{"169.255.0.0", false},
	} {
		if got := forbiddenAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("forbiddenAddr(%s) = %t, want %t", tc.addr, got, tc.want)
		}
	}
}

// fakeDNS answers A and AAAA queries for its names, so that tests resolve
// names to any address without a real DNS server. Go's resolver speaks the
// TCP framing (a 2-byte length before each message) over a net.Conn that is
// not a PacketConn.
type fakeDNS struct {
	names map[string]netip.Addr // lower case, without the final dot

	mu    sync.Mutex
	asked []string
}

func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go d.serve(server)
		return client, nil
	}}
}

func (d *fakeDNS) wasAsked(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.asked {
		if n == name {
			return true
		}
	}
	return false
}

func (d *fakeDNS) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	for {
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		a := d.answer(q)
		if a == nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...)); err != nil {
			return
		}
	}
}

// answer builds the response to query q: its question, and one answer when
// the name is known with an address of the asked type.
func (d *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		n := int(q[i])
		if i+1+n > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+n]))
		i += 1 + n
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	name := strings.ToLower(strings.Join(labels, "."))
	d.mu.Lock()
	d.asked = append(d.asked, name)
	d.mu.Unlock()

	addr, known := d.names[name]
	flags := uint16(0x8180) // a response; recursion desired and available
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte(nil), q[:2]...) // the query's ID
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1) // the question
	const typeA, typeAAAA = 1, 28
	if known && (qtype == typeA && addr.Is4() || qtype == typeAAAA && addr.Is6()) {
		resp = binary.BigEndian.AppendUint16(resp, 1)
	} else {
		resp = binary.BigEndian.AppendUint16(resp, 0)
	}
	resp = append(resp, 0, 0, 0, 0) // no authority, no additional records
	resp = append(resp, q[12:i+4]...)
	if binary.BigEndian.Uint16(resp[6:]) == 1 {
		raw := addr.AsSlice()
		resp = append(resp, 0xc0, 12) // the name, as a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1)  // class IN
		resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(raw)))
		resp = append(resp, raw...)
	}
	return resp
}

// dialLog records the addresses the guarded dialer let through to connect.
// It lets only loopback through itself, so that no test sends a packet
// elsewhere even when the guard is broken.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) control(_, address string, _ syscall.RawConn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, address)
	if ap, err := netip.ParseAddrPort(address); err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("test safety net: not connecting to %s", address)
	}
	return nil
}

func (d *dialLog) connected() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

func TestMetadataAddressesAreNeverContacted(t *testing.T) {
	// A local registry that redirects the config blob where it says.
	var redirect atomic.Pointer[string]
	tr := newRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if to := redirect.Load(); to != nil && *to != "" && strings.Contains(r.URL.Path, "/blobs/") && strings.Contains(r.Header.Get("User-Agent"), "kubernetes-entrypoint") {
				http.Redirect(w, r, *to, http.StatusTemporaryRedirect)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	tr.push(t, "app:1", v1.Config{Cmd: []string{"run"}})
	_, port, err := net.SplitHostPort(tr.host)
	if err != nil {
		t.Fatal(err)
	}
	dns := &fakeDNS{names: map[string]netip.Addr{
		"metadata.test":    netip.MustParseAddr("169.254.169.254"),
		"metadata-v6.test": netip.MustParseAddr("fd00:ec2::254"),
		"alibaba.test":     netip.MustParseAddr("100.100.100.200"),
		"link-local.test":  netip.MustParseAddr("fe80::1"),
		"registry.test":    netip.MustParseAddr("127.0.0.1"),
	}}

	for _, tc := range []struct {
		name     string
		image    string
		redirect string
		asked    string // a name the lookup must have resolved
		want     string // the refused address; "" when the lookup succeeds
		ggcr     bool   // refused by go-containerregistry's own redirect check
	}{
		{name: "literal 169.254.169.254", image: "169.254.169.254/app:1", want: "169.254.169.254"},
		{name: "literal 169.254.169.254 with a port", image: "169.254.169.254:5000/app:1", want: "169.254.169.254"},
		{name: "literal 100.100.100.200", image: "100.100.100.200/app:1", want: "100.100.100.200"},
		{name: "literal fd00:ec2::254", image: "[fd00:ec2::254]:443/app:1", want: "fd00:ec2::254"},
		{name: "name resolving to 169.254.169.254", image: "metadata.test/app:1", asked: "metadata.test", want: "169.254.169.254"},
		{name: "name resolving to fd00:ec2::254", image: "metadata-v6.test:5000/app:1", asked: "metadata-v6.test", want: "fd00:ec2::254"},
		{name: "name resolving to 100.100.100.200", image: "alibaba.test/app:1", asked: "alibaba.test", want: "100.100.100.200"},
		{name: "name resolving to fe80::1", image: "link-local.test/app:1", asked: "link-local.test", want: "fe80::1"},
		{name: "redirect to a name resolving to 169.254.169.254", image: tr.host + "/app:1",
			redirect: "https://metadata.test/latest/meta-data/", asked: "metadata.test", want: "169.254.169.254"},
		{name: "redirect to 169.254.169.254", image: tr.host + "/app:1",
			redirect: "https://169.254.169.254/latest/meta-data/", want: "169.254.169.254", ggcr: true},
		{name: "name resolving to loopback", image: "registry.test:" + port + "/app:1", asked: "registry.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redirect.Store(&tc.redirect)
			var dials dialLog
			l := newLookup(Options{
				Timeout:            10 * time.Second,
				InsecureRegistries: []string{tr.host, "registry.test:" + port},
			}, dialHooks{resolver: dns.resolver(), control: dials.control})
			got, err := l.ImageConfig(context.Background(), ref(tc.image))

			if tc.asked != "" && !dns.wasAsked(tc.asked) {
				t.Errorf("%s was never resolved: the test did not reach the dialer", tc.asked)
			}
			for _, a := range dials.connected() {
				if ap, err := netip.ParseAddrPort(a); err != nil || !ap.Addr().IsLoopback() {
					t.Errorf("the guard let the dialer go on to %s", a)
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ImageConfig: %v", err)
				}
				wantConfig(t, got, nil, []string{"run"})
				return
			}
			if tc.ggcr {
				wantErr(t, err, `redirect from "127.0.0.1" to private/link-local host "`+tc.want+`" denied`)
				return
			}
			wantErr(t, err, "refusing to contact "+tc.want+": link-local and cloud metadata addresses are never registries")
			var refused *forbiddenAddrError
			if !errors.As(err, &refused) {
				t.Errorf("error %v does not unwrap to the guard's refusal", err)
			}
		})
	}
}

// roundTripRecorder fails every request it is given, and counts them.
type roundTripRecorder struct{ n atomic.Int32 }

func (r *roundTripRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n.Add(1)
	return nil, fmt.Errorf("test transport: not sending %s %s", req.Method, req.URL)
}

// TestGuardWithAnyTransport: literal forbidden addresses and plain HTTP are
// refused before the transport, so also through a proxy (whose dialer only
// sees the proxy) and with a Transport of the caller's.
func TestGuardWithAnyTransport(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"169.254.169.254/app:1", "refusing to contact 169.254.169.254"},
		{"[fe80::1]:5000/app:1", "refusing to contact fe80::1"},
		{"[::ffff:169.254.169.254]/app:1", "refusing to contact 169.254.169.254"},
		{"100.100.100.200:80/app:1", "refusing to contact 100.100.100.200"},
		{"registry.example:5000/app:1", "test transport: not sending"},
	} {
		t.Run(tc.image, func(t *testing.T) {
			var next roundTripRecorder
			_, err := New(Options{Transport: &next, Timeout: 5 * time.Second}).ImageConfig(context.Background(), ref(tc.image))
			wantErr(t, err, tc.want)
			if strings.HasPrefix(tc.want, "refusing") && next.n.Load() != 0 {
				t.Errorf("the transport was given %d requests", next.n.Load())
			}
		})
	}
}

// TestRefusalPrecedesConnect shows that the guard runs before connect(2): a
// listener on loopback sees no connection when the guard refuses its address.
func TestRefusalPrecedesConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			_ = c.Close()
		}
	}()
	refuseLoopback := func(_, address string, _ syscall.RawConn) error {
		return &forbiddenAddrError{addr: address}
	}
	d := net.Dialer{Control: guardedControl(refuseLoopback)}
	if _, err := d.DialContext(context.Background(), "tcp", ln.Addr().String()); err == nil {
		t.Fatal("dialed although the control refused")
	}
	select {
	case <-accepted:
		t.Fatal("the listener accepted a connection the control refused")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRegistryErrorAnswersAreNotRepeated(t *testing.T) {
	longMessage := strings.Repeat("m", 100_000)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   []string
	}{{
		name:   "500 with 1 MiB of text",
		status: http.StatusInternalServerError,
		body:   strings.Repeat("secret page ", 1<<20/12),
		want:   []string{"the registry answered 500 Internal Server Error;"},
	}, {
		name:   "a JSON error whose message is 100 kB",
		status: http.StatusForbidden,
		body:   fmt.Sprintf(`{"errors":[{"code":"DENIED","message":%q}]}`, longMessage),
		want:   []string{"the registry answered 403 Forbidden;", "add the pull secret"},
	}, {
		name:   "a JSON error whose message is 10 kB",
		status: http.StatusForbidden,
		body:   fmt.Sprintf(`{"errors":[{"code":"DENIED","message":%q,"detail":%q},{"code":"UNAUTHORIZED"}]}`, longMessage[:10_000], longMessage[:10_000]),
		want:   []string{`the registry answered 403 Forbidden: DENIED "mmm`, `mmm..." (and 1 more);`, "add the pull secret"},
	}, {
		name:   "a JSON error with a long code",
		status: http.StatusNotFound,
		body:   fmt.Sprintf(`{"errors":[{"code":%q,"message":"no such manifest"}]}`, longMessage[:10_000]),
		want:   []string{"the registry answered 404 Not Found: mmm", "check the image name and tag"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rr := newRawRegistry(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					w.WriteHeader(http.StatusOK)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := New(Options{Timeout: 20 * time.Second, InsecureRegistries: []string{rr.host}}).
				ImageConfig(context.Background(), ref(rr.host+"/app:1"))
			wantErr(t, err, tc.want...)
			if err != nil && (strings.Contains(err.Error(), "secret page") || strings.Contains(err.Error(), strings.Repeat("m", 300))) {
				t.Errorf("the error repeats the registry's answer: %.1000s", err)
			}
		})
	}
}

func TestLongReferencesAreCut(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	for _, image := range []string{
		"127.0.0.1:1/" + long + ":1",                    // invalid: repository longer than 255
		long + ".example/app:1",                         // a host no resolver accepts
		"127.0.0.1:1/app:" + long,                       // invalid tag
		"127.0.0.1:1/app@sha256:" + long,                // invalid digest
		"127.0.0.1:1/app:1 " + strings.Repeat("é", 5e4), // invalid, multi-byte
	} {
		_, err := New(Options{Timeout: 5 * time.Second}).ImageConfig(context.Background(), ref(image))
		wantErr(t, err, fmt.Sprintf("(%d bytes)", len(image)))
	}

	// Nor does a long namespace make the RBAC hint long.
	r := ref("127.0.0.1:1/app:1")
	r.Namespace = long
	err := New(Options{}).fail(r, stageTag, errors.New("denied"), errForbiddenSecrets(long))
	wantErr(t, err, "registryLookup.pullSecretNamespaces")
}

func TestRootCAs(t *testing.T) {
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	_, port, err := net.SplitHostPort(host)
	if err != nil {
		t.Fatal(err)
	}
	// httptest's certificate holds example.com and 127.0.0.1, not wrong.test.
	dns := &fakeDNS{names: map[string]netip.Addr{
		"example.com": netip.MustParseAddr("127.0.0.1"),
		"wrong.test":  netip.MustParseAddr("127.0.0.1"),
	}}
	r, err := name.ParseReference(host + "/private-ca/app:1")
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Config{Entrypoint: []string{"/app"}})
	if err := remote.Write(r, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}

	ours := x509.NewCertPool()
	ours.AddCert(srv.Certificate())
	theirs := x509.NewCertPool()
	theirs.AddCert(selfSignedCA(t))

	for _, tc := range []struct {
		name    string
		host    string
		rootCAs *x509.CertPool
		want    []string
	}{
		{name: "system roots only", host: host, want: []string{"the registry's TLS certificate is not trusted: x509: certificate signed by unknown authority",
			"give the webhook the registry's CA (--registry-ca-file)"}},
		{name: "another CA", host: host, rootCAs: theirs, want: []string{"the registry's TLS certificate is not trusted: x509: certificate signed by unknown authority",
			"--registry-ca-file"}},
		{name: "the registry's CA", host: host, rootCAs: ours},
		{name: "the registry's CA, by a name in its certificate", host: "example.com:" + port, rootCAs: ours},
		{name: "the registry's CA, by a name not in its certificate", host: "wrong.test:" + port, rootCAs: ours,
			want: []string{"the registry's TLS certificate is not trusted: x509: certificate is valid for", "not wrong.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLookup(Options{Timeout: 10 * time.Second, RootCAs: tc.rootCAs, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}},
				dialHooks{resolver: dns.resolver()})
			got, err := l.ImageConfig(context.Background(), ref(tc.host+"/private-ca/app:1"))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ImageConfig: %v", err)
				}
				wantConfig(t, got, []string{"/app"}, nil)
				return
			}
			wantErr(t, err, tc.want...)
		})
	}
}

// selfSignedCA is a CA that signed nothing the tests serve.
func selfSignedCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "another CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
