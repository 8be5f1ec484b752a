package imageconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A lookup that reads what it should not gets cut off within its limit plus
// what the kernel buffers hold between the two ends. Both ends shrink their
// socket buffers (smallBuffers, smallRecvBuf), so this is a few KiB; without
// the limits these tests read 100 MiB (go-containerregistry's manifest bound)
// or 256 MiB.
const (
	testLimit    = 64 << 10
	bufferSlack  = 256 << 10
	declaredHuge = 256 << 20
)

// rawRegistry serves a handler written by the test, counting the bytes its
// answers wrote per kind of request ("ping", "manifest", "blob", "other").
type rawRegistry struct {
	host    string
	handler http.HandlerFunc

	mu      sync.Mutex
	written map[string]int64
	reqs    []string
	active  sync.WaitGroup
}

func newRawRegistry(t *testing.T, h http.HandlerFunc) *rawRegistry {
	t.Helper()
	rr := &rawRegistry{handler: h, written: map[string]int64{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(rr.serve))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	rr.host = strings.TrimPrefix(srv.URL, "http://")
	return rr
}

func (rr *rawRegistry) serve(w http.ResponseWriter, r *http.Request) {
	rr.active.Add(1)
	defer rr.active.Done()
	rr.mu.Lock()
	rr.reqs = append(rr.reqs, r.Method+" "+r.URL.Path)
	rr.mu.Unlock()
	rr.handler(&countingWriter{ResponseWriter: w, rr: rr, kind: requestKind(r.URL.Path)}, r)
}

func requestKind(path string) string {
	switch {
	case path == "/v2/":
		return "ping"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	}
	return "other"
}

// writtenBy waits until no answer is being written (the client hung up) and
// returns the bytes written for kind.
func (rr *rawRegistry) writtenBy(t *testing.T, kind string) int64 {
	t.Helper()
	done := make(chan struct{})
	go func() { rr.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		rr.mu.Lock()
		defer rr.mu.Unlock()
		t.Fatalf("the registry still writes 30s after the lookup returned (written so far %v, requests %q): the client did not hang up", rr.written, rr.reqs)
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.written[kind]
}

func (rr *rawRegistry) requests() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]string(nil), rr.reqs...)
}

type countingWriter struct {
	http.ResponseWriter
	rr   *rawRegistry
	kind string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.rr.mu.Lock()
	c.rr.written[c.kind] += int64(n)
	c.rr.mu.Unlock()
	return n, err
}

func (c *countingWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

// smallBuffers gives accepted connections a small send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// smallRecvBuf shrinks the client's receive buffer before it connects.
func smallRecvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	}); err != nil {
		return err
	}
	return serr
}

// stream answers 200 with size zero bytes (endless when size < 0), declaring
// the size in Content-Length when declare is set and sending chunks
// otherwise. It stops when the client hangs up.
func stream(w http.ResponseWriter, size int64, declare bool) {
	if declare {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32<<10)
	for sent := int64(0); size < 0 || sent < size; {
		n := int64(len(buf))
		if size >= 0 {
			n = min(n, size-sent)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
		sent += n
		if !declare {
			w.(http.Flusher).Flush()
		}
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func manifestWithConfig(size int64, digest string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":%q},"layers":[]}`, size, digest)
}

func indexWithChild(digest string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":%q,"platform":{"os":"linux","architecture":%q}}]}`,
		digest, runtime.GOARCH)
}

// serveManifest answers a manifest request honestly.
func serveManifest(w http.ResponseWriter, r *http.Request, body []byte, mediaType string) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", sha(body))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
)

func TestByteLimits(t *testing.T) {
	// A config that is never served whole: its digest is of nothing real.
	bigConfig := sha([]byte("a config of 256 MiB"))
	small := []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["run"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	smallManifest := manifestWithConfig(int64(len(small)), sha(small))
	hugeChild := sha([]byte("a child manifest without end"))

	for _, tc := range []struct {
		name  string
		image string // after the registry's host
		serve func(w http.ResponseWriter, r *http.Request)
		want  []string // in the error; none means the lookup succeeds
		kind  string   // whose answers must stay within the limit
		limit int64
	}{{
		name:  "config declared 256 MiB in the manifest",
		image: "/big:1",
		serve: func(w http.ResponseWriter, r *http.Request) {
			switch requestKind(r.URL.Path) {
			case "manifest":
				serveManifest(w, r, manifestWithConfig(declaredHuge, bigConfig), ociManifest)
			case "blob":
				stream(w, declaredHuge, true)
			default:
				w.WriteHeader(http.StatusOK)
			}
		},
		want: []string{"the image config is 268435456 bytes, more than the limit of 65536 bytes (not read)",
			"raise --registry-max-config-bytes", "entrypoint.io/command.<container>"},
		kind: "blob", limit: 0,
	}, {
		name:  "manifest with a Content-Length of 256 MiB",
		image: "/big@" + sha([]byte("whatever")),
		serve: func(w http.ResponseWriter, r *http.Request) {
			if requestKind(r.URL.Path) == "manifest" {
				w.Header().Set("Content-Type", ociManifest)
				stream(w, declaredHuge, true)
				return
			}
			w.WriteHeader(http.StatusOK)
		},
		want: []string{"the manifest is 268435456 bytes, more than the limit of 65536 bytes (not read)", "raise --registry-max-manifest-bytes"},
		kind: "manifest", limit: bufferSlack, // written into socket buffers, never read

	}, {
		name:  "manifest whose HEAD declares 256 MiB",
		image: "/big:1",
		serve: func(w http.ResponseWriter, r *http.Request) {
			switch {
			case requestKind(r.URL.Path) != "manifest":
				w.WriteHeader(http.StatusOK)
			case r.Method == http.MethodHead:
				w.Header().Set("Content-Type", ociManifest)
				w.Header().Set("Docker-Content-Digest", sha([]byte("whatever")))
				w.Header().Set("Content-Length", strconv.Itoa(declaredHuge))
				w.WriteHeader(http.StatusOK)
			default:
				stream(w, declaredHuge, true)
			}
		},
		want: []string{"the manifest is 268435456 bytes, more than the limit of 65536 bytes (not read)"},
		kind: "manifest", limit: 0, // no GET at all

	}, {
		name:  "manifest without Content-Length and without end",
		image: "/big@" + sha([]byte("whatever")),
		serve: func(w http.ResponseWriter, r *http.Request) {
			if requestKind(r.URL.Path) == "manifest" {
				w.Header().Set("Content-Type", ociManifest)
				stream(w, -1, false)
				return
			}
			w.WriteHeader(http.StatusOK)
		},
		want: []string{"the manifest is larger than the limit of 65536 bytes (cut off after reading 65537)"},
		kind: "manifest", limit: testLimit + bufferSlack,
	}, {
		name:  "index whose platform's manifest has no end",
		image: "/multi:1",
		serve: func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/manifests/"+hugeChild):
				w.Header().Set("Content-Type", ociManifest)
				stream(w, -1, false)
			case requestKind(r.URL.Path) == "manifest":
				serveManifest(w, r, indexWithChild(hugeChild), ociIndex)
			default:
				w.WriteHeader(http.StatusOK)
			}
		},
		want: []string{"the manifest is larger than the limit of 65536 bytes (cut off after reading 65537)"},
		kind: "manifest", limit: testLimit + bufferSlack,
	}, {
		name:  "ping answer without end",
		image: "/app:1",
		serve: func(w http.ResponseWriter, r *http.Request) {
			switch requestKind(r.URL.Path) {
			case "ping":
				stream(w, -1, false)
			case "manifest":
				serveManifest(w, r, smallManifest, ociManifest)
			case "blob":
				_, _ = w.Write(small)
			}
		},
		kind: "ping", limit: otherBodyLimit + bufferSlack,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rr := newRawRegistry(t, tc.serve)
			l := newLookup(Options{
				Timeout:            30 * time.Second,
				MaxManifestBytes:   testLimit,
				MaxConfigBytes:     testLimit,
				InsecureRegistries: []string{rr.host},
			}, dialHooks{control: smallRecvBuf})

			got, err := l.ImageConfig(context.Background(), ref(rr.host+tc.image))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ImageConfig: %v", err)
				}
				wantConfig(t, got, nil, []string{"run"})
			} else {
				wantErr(t, err, tc.want...)
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("the lookup ran out of time instead of refusing the size: %v", err)
				}
			}
			n := rr.writtenBy(t, tc.kind)
			t.Logf("the registry wrote %d bytes of %s answers", n, tc.kind)
			if n > tc.limit {
				t.Errorf("the registry wrote %d bytes of %s answers before the client hung up, want at most %d (requests %q)", n, tc.kind, tc.limit, rr.requests())
			}
		})
	}
}

func TestLimitedBody(t *testing.T) {
	for _, tc := range []struct {
		body, limit int
		wantErr     bool
	}{
		{body: 0, limit: 0},
		{body: 10, limit: 10},
		{body: 11, limit: 10, wantErr: true},
		{body: 1 << 20, limit: 10, wantErr: true},
	} {
		t.Run(fmt.Sprintf("%d bytes, limit %d", tc.body, tc.limit), func(t *testing.T) {
			src := &countingReader{left: tc.body}
			b := &limitedBody{rc: src, left: int64(tc.limit), what: "manifest", limit: int64(tc.limit)}
			var got int
			var err error
			buf := make([]byte, 7) // odd size, to cross the limit mid-read
			for err == nil {
				var n int
				n, err = b.Read(buf)
				got += n
			}
			var big *tooLargeError
			if tc.wantErr != errors.As(err, &big) {
				t.Fatalf("error %v, want a tooLargeError: %t", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.body {
				t.Errorf("read %d bytes, want %d", got, tc.body)
			}
			if got > tc.limit {
				t.Errorf("handed %d bytes to the reader, more than the limit %d", got, tc.limit)
			}
			if src.read > tc.limit+1 {
				t.Errorf("read %d bytes of the body, want at most limit+1 = %d", src.read, tc.limit+1)
			}
		})
	}
}

type countingReader struct{ left, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	r.left -= n
	r.read += n
	return n, nil
}

func (r *countingReader) Close() error { return nil }

// blockRepo holds the lookups' requests for repo until release is closed or
// the request ends, and reports each on arrived.
func blockRepo(repo string, arrived chan<- string, release <-chan struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/"+repo+"/") && strings.Contains(r.Header.Get("User-Agent"), "kubernetes-entrypoint") {
				select {
				case arrived <- r.Method + " " + r.URL.Path:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func awaitRequest(t *testing.T, arrived <-chan string, what string) {
	t.Helper()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not reach the registry within 30s", what)
	}
}

func TestMaxInFlight(t *testing.T) {
	t.Run("the caller gives up while its lookup waits for a slot", func(t *testing.T) {
		arrived, release := make(chan string, 16), make(chan struct{})
		tr := newRegistry(t, blockRepo("held", arrived, release))
		tr.push(t, "held:1", v1.Config{Cmd: []string{"held"}})
		tr.push(t, "other:1", v1.Config{Cmd: []string{"other"}})
		l := tr.lookup(Options{MaxInFlight: 1, Timeout: 30 * time.Second})

		held := make(chan error, 1)
		go func() {
			_, err := l.ImageConfig(context.Background(), ref(tr.host+"/held:1"))
			held <- err
		}()
		awaitRequest(t, arrived, "the lookup of held:1")
		tr.requests()

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := l.ImageConfig(ctx, ref(tr.host+"/other:1"))
		wantErr(t, err, tr.host+"/other:1", "too many registry lookups in flight (1)", "gave up waiting for one to finish",
			"raise --registry-max-in-flight", "entrypoint.io/command.<container>")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
		}
		for _, r := range tr.requests() {
			if strings.Contains(r, "/other/") {
				t.Errorf("the lookup of other:1 reached the registry (%q) while the only slot was taken", r)
			}
		}

		close(release)
		if err := <-held; err != nil {
			t.Fatalf("the lookup that held the slot: %v", err)
		}
		wantConfig(t, mustConfig(t, l, ref(tr.host+"/other:1")), nil, []string{"other"})
	})

	t.Run("the lookup's own budget ends while it waits for a slot", func(t *testing.T) {
		// A lookup stuck in code that ignores its context (here the pull
		// secrets read of a client that never answers) keeps its slot past
		// its budget.
		stuck := make(chan struct{})
		t.Cleanup(func() { close(stuck) })
		tr := newRegistry(t, nil)
		tr.push(t, "other:1", v1.Config{Cmd: []string{"other"}})
		l := tr.lookup(Options{MaxInFlight: 1, Timeout: 500 * time.Millisecond, Client: stuckClient(stuck)})

		_, err := l.ImageConfig(context.Background(), ref(tr.host+"/stuck:1"))
		wantErr(t, err, "timed out after 500ms while reading the pod's pull secrets", "check that the API server answers the webhook")

		_, err = l.ImageConfig(context.Background(), ref(tr.host+"/other:1"))
		wantErr(t, err, tr.host+"/other:1", "too many registry lookups in flight (1): none finished within the lookup's 500ms",
			"raise --registry-max-in-flight", "entrypoint.io/command.<container>")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
		}
		if reqs := tr.requests(); len(reqs) != 0 {
			t.Errorf("requests %q reached the registry while the only slot was taken", reqs)
		}
	})

	t.Run("waiting for a slot counts against the lookup's budget", func(t *testing.T) {
		arrived, release := make(chan string, 16), make(chan struct{})
		slowArrived, slowRelease := make(chan string, 16), make(chan struct{})
		t.Cleanup(func() { close(slowRelease) })
		tr := newRegistry(t, func(next http.Handler) http.Handler {
			return blockRepo("held", arrived, release)(blockRepo("slow", slowArrived, slowRelease)(next))
		})
		tr.push(t, "held:1", v1.Config{Cmd: []string{"held"}})
		tr.push(t, "slow:1", v1.Config{Cmd: []string{"slow"}})
		const budget = 2 * time.Second
		l := tr.lookup(Options{MaxInFlight: 1, Timeout: budget})

		held := make(chan error, 1)
		go func() {
			_, err := l.ImageConfig(context.Background(), ref(tr.host+"/held:1"))
			held <- err
		}()
		awaitRequest(t, arrived, "the lookup of held:1")

		// slow:1 gets the slot after half its budget and then waits on the
		// registry: the half it has left must be all it gets.
		start := time.Now()
		slow := make(chan error, 1)
		go func() {
			_, err := l.ImageConfig(context.Background(), ref(tr.host+"/slow:1"))
			slow <- err
		}()
		time.Sleep(budget / 2)
		close(release)
		if err := <-held; err != nil {
			t.Fatalf("the lookup that held the slot: %v", err)
		}
		err := <-slow
		elapsed := time.Since(start)
		// Normally "timed out after 2s while resolving the tag, 1s of it
		// waiting for a free slot: ..."; on a stalled machine the budget may
		// end before the slot is free: "none finished within the lookup's 2s".
		wantErr(t, err, tr.host+"/slow:1", "too many registry lookups in flight (1)", "raise --registry-max-in-flight")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
		}
		if elapsed > budget+budget/2 {
			t.Errorf("took %s, want about the budget of %s (waiting for the slot included)", elapsed, budget)
		}
	})
}

func TestDefaultLimits(t *testing.T) {
	l := New(Options{})
	if l.maxManifest != DefaultMaxManifestBytes || l.maxConfig != DefaultMaxConfigBytes || cap(l.slots) != DefaultMaxInFlight {
		t.Errorf("limits %d, %d, %d; want the defaults %d, %d, %d", l.maxManifest, l.maxConfig, cap(l.slots),
			DefaultMaxManifestBytes, DefaultMaxConfigBytes, DefaultMaxInFlight)
	}
	if DefaultMaxManifestBytes != 1<<20 || DefaultMaxConfigBytes != 1<<20 || DefaultMaxInFlight != 16 {
		t.Errorf("defaults changed: update the package documentation and the chart's")
	}
	l = New(Options{MaxManifestBytes: 5, MaxConfigBytes: 6, MaxInFlight: 7})
	if l.maxManifest != 5 || l.maxConfig != 6 || cap(l.slots) != 7 {
		t.Errorf("limits %d, %d, %d; want 5, 6, 7", l.maxManifest, l.maxConfig, cap(l.slots))
	}
}

// stuckClient is an API client whose reads of Secrets and ServiceAccounts
// never return before stuck is closed, whatever their context says.
func stuckClient(stuck <-chan struct{}) *fake.Clientset {
	client := fake.NewClientset()
	block := func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		<-stuck
		return true, nil, errors.New("released")
	}
	client.PrependReactor("get", "secrets", block)
	client.PrependReactor("get", "serviceaccounts", block)
	return client
}

// BenchmarkHostileRegistry measures what one lookup costs against registries
// that declare or send far more than the limits (B/op is the lookup's
// allocations; the registry's own are a fixed 32 KiB buffer per answer).
func BenchmarkHostileRegistry(b *testing.B) {
	small := []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["run"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	for _, bc := range []struct {
		name  string
		image string
		serve func(w http.ResponseWriter, r *http.Request)
	}{{
		name:  "honest image",
		image: "/app:1",
		serve: func(w http.ResponseWriter, r *http.Request) {
			switch requestKind(r.URL.Path) {
			case "manifest":
				serveManifest(w, r, manifestWithConfig(int64(len(small)), sha(small)), ociManifest)
			case "blob":
				_, _ = w.Write(small)
			}
		},
	}, {
		name:  "config declared 256 MiB",
		image: "/big:1",
		serve: func(w http.ResponseWriter, r *http.Request) {
			switch requestKind(r.URL.Path) {
			case "manifest":
				serveManifest(w, r, manifestWithConfig(declaredHuge, sha([]byte("big"))), ociManifest)
			case "blob":
				stream(w, declaredHuge, true)
			}
		},
	}, {
		name:  "manifest without end",
		image: "/big@" + sha([]byte("whatever")),
		serve: func(w http.ResponseWriter, r *http.Request) {
			if requestKind(r.URL.Path) == "manifest" {
				stream(w, -1, false)
			}
		},
	}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(bc.serve))
			b.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			b.ReportAllocs()
			for b.Loop() {
				// A new Lookup each time: nothing cached.
				l := New(Options{Timeout: 30 * time.Second, InsecureRegistries: []string{host}})
				_, _ = l.ImageConfig(context.Background(), ref(host+bc.image))
			}
		})
	}
}
