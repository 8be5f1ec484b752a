package imageconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

const (
	testUser = "puller"
	testPass = "s3cret with spaces"
)

// testRegistry is an in-process OCI registry with a log of the requests it
// served (after an optional wrapper, e.g. basic auth, saw them).
type testRegistry struct {
	host string // 127.0.0.1:port

	mu   sync.Mutex
	reqs []string // "METHOD /path"
}

func newRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.reqs = append(tr.reqs, r.Method+" "+r.URL.Path)
		tr.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// requests returns the requests served since the last call and forgets them.
func (tr *testRegistry) requests() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r := tr.reqs
	tr.reqs = nil
	return r
}

func basicAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var pushAuth = remote.WithAuth(&authn.Basic{Username: testUser, Password: testPass})

func testImage(t *testing.T, platform v1.Platform, cfg v1.Config) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// push writes an image to tr as repoTag ("app:1.2") and returns its digest.
func (tr *testRegistry) push(t *testing.T, repoTag string, cfg v1.Config) string {
	t.Helper()
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, cfg)
	if err := remote.Write(ref, img, pushAuth); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tr.requests()
	return d.String()
}

func (tr *testRegistry) lookup(opts Options) *Lookup {
	opts.InsecureRegistries = append(opts.InsecureRegistries, tr.host)
	return New(opts)
}

func ref(image string) inject.ImageRef {
	return inject.ImageRef{Image: image, Namespace: "apps"}
}

func mustConfig(t *testing.T, l *Lookup, r inject.ImageRef) inject.ImageConfig {
	t.Helper()
	got, err := l.ImageConfig(context.Background(), r)
	if err != nil {
		t.Fatalf("ImageConfig(%q): %v", r.Image, err)
	}
	return got
}

func wantConfig(t *testing.T, got inject.ImageConfig, entrypoint, cmd []string) {
	t.Helper()
	if !slices.Equal(got.Entrypoint, entrypoint) || !slices.Equal(got.Cmd, cmd) {
		t.Fatalf("got Entrypoint %q Cmd %q, want Entrypoint %q Cmd %q", got.Entrypoint, got.Cmd, entrypoint, cmd)
	}
}

// maxDenial bounds every error of a lookup, whatever the registry answered
// and however long the reference: the webhook denies pods with it.
const maxDenial = 2048

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	t.Logf("error: %v", err)
	if n := len(err.Error()); n > maxDenial {
		t.Errorf("error of %d bytes, want at most %d: %.3000s", n, maxDenial, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

var (
	appEntrypoint = []string{"/usr/bin/app", "--config", "/etc/app/config file.yaml", ""}
	appCmd        = []string{"serve", "", "  two  spaces  "}
)

func TestPublicImageByTagAndDigest(t *testing.T) {
	tr := newRegistry(t, nil)
	digest := tr.push(t, "team/app:1.2", v1.Config{Entrypoint: appEntrypoint, Cmd: appCmd})
	l := tr.lookup(Options{})

	wantConfig(t, mustConfig(t, l, ref(tr.host+"/team/app:1.2")), appEntrypoint, appCmd)
	wantConfig(t, mustConfig(t, New(Options{InsecureRegistries: []string{tr.host}}), ref(tr.host+"/team/app@"+digest)), appEntrypoint, appCmd)
	wantConfig(t, mustConfig(t, tr.lookup(Options{}), ref(tr.host+"/team/app:ignored@"+digest)), appEntrypoint, appCmd)
}

func TestEntrypointOnlyAndCmdOnly(t *testing.T) {
	tr := newRegistry(t, nil)
	tr.push(t, "ep:1", v1.Config{Entrypoint: []string{"/bin/run"}})
	tr.push(t, "cmd:1", v1.Config{Cmd: []string{"sh", "-c", "echo hi"}})
	l := tr.lookup(Options{})
	wantConfig(t, mustConfig(t, l, ref(tr.host+"/ep:1")), []string{"/bin/run"}, nil)
	wantConfig(t, mustConfig(t, l, ref(tr.host+"/cmd:1")), nil, []string{"sh", "-c", "echo hi"})
}

func dockerConfigSecret(ns, name, host string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil,
			`{"auths":{%q:{"username":%q,"password":%q}}}`, host, testUser, testPass)},
	}
}

func TestPullSecrets(t *testing.T) {
	tr := newRegistry(t, basicAuth)
	tr.push(t, "private/app:1.2", v1.Config{Entrypoint: appEntrypoint, Cmd: appCmd})
	image := tr.host + "/private/app:1.2"
	secret := dockerConfigSecret("apps", "regcred", tr.host)

	t.Run("no client", func(t *testing.T) {
		_, err := tr.lookup(Options{}).ImageConfig(context.Background(), ref(image))
		wantErr(t, err, fmt.Sprintf("reading the config of image %q (platform linux/%s)", image, runtime.GOARCH),
			"UNAUTHORIZED", "add the pull secret to the pod or its ServiceAccount", "entrypoint.io/command.<container>")
	})

	t.Run("secret exists but the pod does not use it", func(t *testing.T) {
		client := fake.NewClientset(secret)
		_, err := tr.lookup(Options{Client: client}).ImageConfig(context.Background(), ref(image))
		wantErr(t, err, image, "UNAUTHORIZED", "add the pull secret")
	})

	t.Run("pod imagePullSecrets", func(t *testing.T) {
		client := fake.NewClientset(secret)
		r := ref(image)
		r.ImagePullSecrets = []string{"missing", "regcred"}
		wantConfig(t, mustConfig(t, tr.lookup(Options{Client: client}), r), appEntrypoint, appCmd)
	})

	t.Run("ServiceAccount imagePullSecrets", func(t *testing.T) {
		sa := &corev1.ServiceAccount{
			ObjectMeta:       metav1.ObjectMeta{Namespace: "apps", Name: "builder"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		}
		client := fake.NewClientset(secret, sa)
		r := ref(image)
		r.ServiceAccount = "builder"
		wantConfig(t, mustConfig(t, tr.lookup(Options{Client: client}), r), appEntrypoint, appCmd)

		// The default ServiceAccount is used when the pod names none.
		def := sa.DeepCopy()
		def.Name = "default"
		client = fake.NewClientset(secret, def)
		wantConfig(t, mustConfig(t, tr.lookup(Options{Client: client}), ref(image)), appEntrypoint, appCmd)
	})

	t.Run("secrets unreadable", func(t *testing.T) {
		client := fake.NewClientset(secret)
		client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "regcred", errors.New("RBAC says no"))
		})
		r := ref(image)
		r.ImagePullSecrets = []string{"regcred"}
		_, err := tr.lookup(Options{Client: client}).ImageConfig(context.Background(), r)
		wantErr(t, err, image, "UNAUTHORIZED", "pull secrets could not be read", "forbidden")

		// A public image does not need them.
		pub := newRegistry(t, nil)
		pub.push(t, "app:1", v1.Config{Cmd: []string{"run"}})
		r.Image = pub.host + "/app:1"
		wantConfig(t, mustConfig(t, pub.lookup(Options{Client: client}), r), nil, []string{"run"})
	})
}

func TestMultiPlatformIndex(t *testing.T) {
	tr := newRegistry(t, nil)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: testImage(t, amd64, v1.Config{Entrypoint: []string{"/amd64/app"}, Cmd: []string{"x86"}}),
			Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: testImage(t, arm64, v1.Config{Entrypoint: []string{"/arm64/app"}, Cmd: []string{"arm"}}),
			Descriptor: v1.Descriptor{Platform: &arm64}},
	)
	r, err := name.ParseReference(tr.host + "/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	for _, image := range []string{tr.host + "/multi:1", tr.host + "/multi@" + d.String()} {
		got := mustConfig(t, tr.lookup(Options{Platform: amd64}), ref(image))
		wantConfig(t, got, []string{"/amd64/app"}, []string{"x86"})
		got = mustConfig(t, tr.lookup(Options{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}}), ref(image))
		wantConfig(t, got, []string{"/arm64/app"}, []string{"arm"})
	}

	_, err = tr.lookup(Options{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}}).ImageConfig(context.Background(), ref(tr.host+"/multi:1"))
	wantErr(t, err, tr.host+"/multi:1", "(platform linux/s390x)")
}

func TestDefaults(t *testing.T) {
	l := New(Options{})
	if want := (v1.Platform{OS: "linux", Architecture: runtime.GOARCH}); l.platform.String() != want.String() {
		t.Errorf("default platform %s, want %s", l.platform, want)
	}
	if l.timeout != DefaultTimeout {
		t.Errorf("default timeout %s, want %s", l.timeout, DefaultTimeout)
	}
}

func TestUnreachableRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	_ = ln.Close()

	image := host + "/app:1"
	l := New(Options{Timeout: 2 * time.Second, InsecureRegistries: []string{host}})
	start := time.Now()
	_, err = l.ImageConfig(context.Background(), ref(image))
	if elapsed := time.Since(start); elapsed > 2*time.Second+500*time.Millisecond {
		t.Errorf("took %s, want at most the 2s timeout", elapsed)
	}
	wantErr(t, err, fmt.Sprintf("image %q", image), "entrypoint.io/command.<container>")
}

func TestSlowRegistry(t *testing.T) {
	tr := newRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") &&
				strings.Contains(r.Header.Get("User-Agent"), "kubernetes-entrypoint") {
				select {
				case <-time.After(10 * time.Second):
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	tr.push(t, "slow:1", v1.Config{Cmd: []string{"run"}})

	l := tr.lookup(Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := l.ImageConfig(context.Background(), ref(tr.host+"/slow:1"))
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %s, want about the 300ms timeout", elapsed)
	}
	wantErr(t, err, tr.host+"/slow:1", "timed out after 300ms while resolving the tag", "check that the registry is reachable")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}

	// The caller's own deadline is reported as such, not as the lookup's
	// timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = tr.lookup(Options{Timeout: time.Second}).ImageConfig(ctx, ref(tr.host+"/slow:1"))
	wantErr(t, err, tr.host+"/slow:1", "gave up waiting for the registry while resolving the tag: context deadline exceeded")
	if err != nil && strings.Contains(err.Error(), "timed out after") {
		t.Errorf("error %q blames the lookup's timeout for the caller's deadline", err)
	}
}

func TestCache(t *testing.T) {
	tr := newRegistry(t, nil)
	digest := tr.push(t, "cached:1", v1.Config{Entrypoint: appEntrypoint, Cmd: appCmd})
	l := tr.lookup(Options{Client: fake.NewClientset()})
	byDigest := ref(tr.host + "/cached@" + digest)

	wantConfig(t, mustConfig(t, l, byDigest), appEntrypoint, appCmd)
	if len(tr.requests()) == 0 {
		t.Fatal("the first lookup made no request")
	}

	// A digest reference is answered from the cache: no registry request, no
	// API request for pull secrets.
	client := fake.NewClientset()
	l.client = client
	got := mustConfig(t, l, byDigest)
	wantConfig(t, got, appEntrypoint, appCmd)
	if reqs := tr.requests(); len(reqs) != 0 {
		t.Errorf("cached digest lookup made requests %q", reqs)
	}
	if actions := client.Actions(); len(actions) != 0 {
		t.Errorf("cached digest lookup made API calls %v", actions)
	}

	// The caller owns what it gets.
	got.Entrypoint[0], got.Cmd[0] = "mutated", "mutated"
	wantConfig(t, mustConfig(t, l, byDigest), appEntrypoint, appCmd)

	// A tag resolving to the cached digest costs the manifest HEAD only (plus
	// the protocol's GET /v2/ ping that opens every session).
	tr.requests()
	wantConfig(t, mustConfig(t, l, ref(tr.host+"/cached:1")), appEntrypoint, appCmd)
	reqs := tr.requests()
	var manifests []string
	for _, r := range reqs {
		switch {
		case r == "GET /v2/":
		case strings.Contains(r, "/manifests/"):
			manifests = append(manifests, r)
		default:
			t.Errorf("unexpected request %q", r)
		}
	}
	if want := []string{"HEAD /v2/cached/manifests/1"}; !slices.Equal(manifests, want) {
		t.Errorf("manifest requests %q, want %q", manifests, want)
	}

	// A moved tag is followed.
	tr.push(t, "cached:1", v1.Config{Cmd: []string{"v2"}})
	wantConfig(t, mustConfig(t, l, ref(tr.host+"/cached:1")), nil, []string{"v2"})
}

func TestCacheIsBounded(t *testing.T) {
	tr := newRegistry(t, nil)
	a := tr.push(t, "a:1", v1.Config{Cmd: []string{"a"}})
	b := tr.push(t, "b:1", v1.Config{Cmd: []string{"b"}})
	l := tr.lookup(Options{CacheSize: 1})

	mustConfig(t, l, ref(tr.host+"/a@"+a))
	mustConfig(t, l, ref(tr.host+"/b@"+b))
	tr.requests()
	wantConfig(t, mustConfig(t, l, ref(tr.host+"/a@"+a)), nil, []string{"a"})
	if len(tr.requests()) == 0 {
		t.Error("evicted digest was answered without a request")
	}
}

func TestConcurrentLookups(t *testing.T) {
	tr := newRegistry(t, nil)
	digest := tr.push(t, "busy:1", v1.Config{Entrypoint: appEntrypoint, Cmd: appCmd})
	l := tr.lookup(Options{CacheSize: 2})
	images := []string{tr.host + "/busy:1", tr.host + "/busy@" + digest}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			got, err := l.ImageConfig(context.Background(), ref(images[i%2]))
			if err != nil {
				errs <- err
				return
			}
			if !slices.Equal(got.Entrypoint, appEntrypoint) || !slices.Equal(got.Cmd, appCmd) {
				errs <- fmt.Errorf("got %q %q", got.Entrypoint, got.Cmd)
				return
			}
			got.Entrypoint[0] = "mutated"
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPlainHTTPOnlyForInsecureRegistries(t *testing.T) {
	tr := newRegistry(t, nil)
	tr.push(t, "app:1", v1.Config{Cmd: []string{"run"}})

	_, err := New(Options{Timeout: time.Second}).ImageConfig(context.Background(), ref(tr.host+"/app:1"))
	wantErr(t, err, tr.host+"/app:1", "refusing plain HTTP to "+tr.host)
}

func TestInvalidReference(t *testing.T) {
	for _, image := range []string{"", "UPPER/case:1", "app:tag with space", " app:1"} {
		_, err := New(Options{}).ImageConfig(context.Background(), ref(image))
		wantErr(t, err, fmt.Sprintf("image %q", image))
	}
}
