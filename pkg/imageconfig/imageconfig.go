// Package imageconfig reads an image's ENTRYPOINT and CMD from its registry,
// authenticating the way the kubelet would pull the image for a given pod: with
// the pod's imagePullSecrets and those of its ServiceAccount.
//
// The webhook needs this for containers whose spec has no command: Kubernetes
// runs the image's ENTRYPOINT, followed by its CMD unless the container sets
// args.
//
// The platform is fixed per Lookup. At admission time the pod is not yet
// scheduled, so the node's platform (and therefore which manifest of a
// multi-platform index the kubelet will pull) is unknown; the Lookup reads the
// manifest for Options.Platform, linux/<GOARCH of the webhook> by default. For
// the usual multi-arch images ENTRYPOINT and CMD are the same on every platform.
//
// # Limits
//
// A lookup runs in the webhook's admission path, so what a registry (or an
// image reference in a pod) can make it do is bounded:
//
//   - Bytes: a manifest or index is read up to Options.MaxManifestBytes
//     (DefaultMaxManifestBytes, 1 MiB), an image config up to
//     Options.MaxConfigBytes (DefaultMaxConfigBytes, 1 MiB). What declares
//     more (a config in its manifest, a manifest in the answer to HEAD, any
//     answer in its Content-Length) is refused before it is read, and a body
//     that runs past its limit is cut off after limit+1 bytes. The /v2/ ping and token answers are read up to 64 KiB, the
//     body of an error answer up to 32 KiB.
//   - Time: one budget per lookup, Options.Timeout (DefaultTimeout, 3s), covers
//     waiting for a slot, reading the pull secrets and every registry request.
//   - Concurrency: at most Options.MaxInFlight (DefaultMaxInFlight, 16) lookups
//     of one Lookup talk to registries at a time (the webhook has one Lookup, so
//     this is per process); the others wait for a slot within their budget.
//     Lookups of the same image for the same pod identity share one slot.
//   - Addresses: link-local addresses (169.254.0.0/16, fe80::/10, where most
//     clouds serve instance metadata) and the metadata addresses fd00:ec2::254
//     and 100.100.100.200 are never contacted, whether the reference names them,
//     a name resolves to them or a registry redirects there: the dialer refuses
//     them after DNS resolution, before connecting. Loopback and private
//     addresses are allowed. Through an HTTP proxy (HTTPS_PROXY) only literal
//     addresses can be checked, since the proxy resolves names.
//   - Messages: errors quote at most the first 256 bytes of the image
//     reference, and of a registry's error answer only its HTTP status and the
//     first error code and message, cut to 200 bytes; the body itself is never
//     repeated.
package imageconfig

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/k8schain"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/lru"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout          = 3 * time.Second
	DefaultCacheSize        = 512
	DefaultMaxManifestBytes = 1 << 20
	DefaultMaxConfigBytes   = 1 << 20
	DefaultMaxInFlight      = 16
)

// reportGrace is how much longer than Timeout a caller waits for the lookup
// to report its own timeout.
const reportGrace = 100 * time.Millisecond

// retryBackoff keeps go-containerregistry's retries of transient failures
// (connection resets, 5xx, 429) inside the lookup's short time budget; its
// default waits 1s and then 3s.
var retryBackoff = remote.Backoff{
	Duration: 200 * time.Millisecond,
	Factor:   2,
	Jitter:   0.1,
	Steps:    3,
}

// Options configures a Lookup. The zero value is usable: anonymous pulls over
// HTTPS, DefaultTimeout, linux/<GOARCH>, DefaultCacheSize entries and the
// default limits.
type Options struct {
	// Client reads the pod's imagePullSecrets and its ServiceAccount (which
	// needs get on secrets and serviceaccounts in the pods' namespaces: the
	// chart grants it in those of registryLookup.pullSecretNamespaces). When
	// nil, or when RBAC forbids the read, registries are accessed
	// anonymously; a registry that then refuses says what to grant.
	//
	// With a Client the keychain is k8schain's: the pull secrets first, then
	// the webhook's own Docker config and the GCR/ECR/ACR credential helpers
	// (which use the webhook's identity, not the node's).
	Client kubernetes.Interface

	// Timeout bounds one lookup, including reading the pull secrets; 0 means
	// DefaultTimeout. ImageConfig returns at most 100ms after it. Keep it well
	// below the webhook's own timeout.
	Timeout time.Duration

	// Platform selects the manifest of a multi-platform index; a zero OS means
	// linux/<runtime.GOARCH>. Parse a flag with v1.ParsePlatform.
	Platform v1.Platform

	// CacheSize bounds the number of image configs cached by digest; values
	// <= 0 mean DefaultCacheSize.
	CacheSize int

	// Transport carries the registry requests; nil means a transport like
	// remote.DefaultTransport whose dialer refuses link-local and cloud
	// metadata addresses and which trusts RootCAs. A Transport given here is
	// used as is: its dialing and TLS are the caller's (plain HTTP, literal
	// forbidden addresses and the byte limits are still enforced).
	Transport http.RoundTripper

	// RootCAs holds CAs of private registries, trusted in addition to the
	// system's roots; nil means the system's only. Ignored with a Transport.
	RootCAs *x509.CertPool

	// MaxManifestBytes bounds one manifest or index; <= 0 means
	// DefaultMaxManifestBytes.
	MaxManifestBytes int64

	// MaxConfigBytes bounds one image config; <= 0 means
	// DefaultMaxConfigBytes.
	MaxConfigBytes int64

	// MaxInFlight bounds the lookups of this Lookup that talk to registries
	// at a time; <= 0 means DefaultMaxInFlight. Waiting for a slot counts
	// against Timeout.
	MaxInFlight int

	// InsecureRegistries lists registries, as host or host:port exactly as in
	// image references, that may be reached over plain HTTP. All others are
	// reached over HTTPS only: plain HTTP is refused even for the loopback and
	// private addresses go-containerregistry would otherwise fall back to, so
	// that pull secrets never travel in clear text by accident.
	InsecureRegistries []string
}

// Lookup reads image configs from registries and caches them by digest. It is
// safe for concurrent use and implements inject.ImageConfigLookup.
//
// A config is cached under the digest the reference resolved to (the index's
// for a multi-platform image), since what a digest names never changes. A
// digest reference found in the cache is answered without asking the registry,
// and so without checking the pod's credentials, like a kubelet pulling with
// IfNotPresent: whoever knows a private image's digest can learn its argv once
// another pod made it cached. Tags are always resolved with the pod's
// credentials.
type Lookup struct {
	client      kubernetes.Interface
	timeout     time.Duration
	platform    v1.Platform
	transport   http.RoundTripper
	insecure    map[string]bool
	maxManifest int64
	maxConfig   int64

	cache    *lru.Cache // manifest or index digest (string) -> inject.ImageConfig
	inflight singleflight.Group
	progress sync.Map      // flightKey -> *progress of the running shared call
	slots    chan struct{} // one element per lookup talking to registries
}

var _ inject.ImageConfigLookup = (*Lookup)(nil)

// New returns a Lookup configured by opts.
func New(opts Options) *Lookup { return newLookup(opts, dialHooks{}) }

func newLookup(opts Options, hooks dialHooks) *Lookup {
	l := &Lookup{
		client:      opts.Client,
		timeout:     opts.Timeout,
		platform:    opts.Platform,
		insecure:    map[string]bool{},
		maxManifest: opts.MaxManifestBytes,
		maxConfig:   opts.MaxConfigBytes,
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	if l.platform.OS == "" {
		l.platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	if l.maxManifest <= 0 {
		l.maxManifest = DefaultMaxManifestBytes
	}
	if l.maxConfig <= 0 {
		l.maxConfig = DefaultMaxConfigBytes
	}
	inFlight := opts.MaxInFlight
	if inFlight <= 0 {
		inFlight = DefaultMaxInFlight
	}
	l.slots = make(chan struct{}, inFlight)
	size := opts.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	l.cache = lru.New(size)
	for _, r := range opts.InsecureRegistries {
		l.insecure[r] = true
	}
	next := opts.Transport
	if next == nil {
		next = newTransport(opts.RootCAs, hooks)
	}
	l.transport = &guard{next: next, insecure: l.insecure, manifest: l.maxManifest, config: l.maxConfig}
	return l
}

// ImageConfig returns the ENTRYPOINT and CMD of ref.Image as the pod described
// by ref would pull it. A digest reference whose config is cached is answered
// without any request; a tag costs one manifest HEAD when its digest is cached.
// Concurrent lookups of the same image for the same pod identity share one
// registry round trip. Entrypoint and Cmd are nil when the image sets none.
// The returned slices belong to the caller.
func (l *Lookup) ImageConfig(ctx context.Context, ref inject.ImageRef) (inject.ImageConfig, error) {
	r, err := l.parse(ref.Image)
	if err != nil {
		return inject.ImageConfig{}, l.fail(ref, "", err, nil)
	}
	if d, ok := r.(name.Digest); ok {
		if cfg, ok := l.cached(d.DigestStr()); ok {
			return cfg, nil
		}
	}

	// The caller waits a moment longer than the work below may take, so that
	// a timeout is normally reported by the work, which knows what it was
	// doing; the caller's own limit only matters for work stuck in code that
	// ignores its context (cloud credential helpers).
	ctx, cancel := context.WithTimeoutCause(ctx, l.timeout+reportGrace, errTimedOut)
	defer cancel()

	// The shared call outlives a caller that gives up (its context is
	// detached), but never its own timeout; what it finds is cached.
	key := flightKey(ref)
	ch := l.inflight.DoChan(key, func() (any, error) {
		p := &progress{stage: stageSlot}
		l.progress.Store(key, p)
		defer l.progress.CompareAndDelete(key, p)
		wctx, wcancel := context.WithTimeoutCause(context.WithoutCancel(ctx), l.timeout, errTimedOut)
		defer wcancel()
		return l.lookup(wctx, ref, r, p)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return inject.ImageConfig{}, res.Err
		}
		return clone(res.Val.(inject.ImageConfig)), nil
	case <-ctx.Done():
		// Say what the shared call was doing when this caller gave up.
		stage := "waiting for the registry"
		if p, ok := l.progress.Load(key); ok {
			stage = p.(*progress).get()
		}
		cause := context.Cause(ctx)
		switch {
		case stage == stageSlot:
			cause = &busyError{limit: cap(l.slots), cause: cause}
		case !errors.Is(cause, errTimedOut):
			cause = fmt.Errorf("gave up waiting for the registry while %s: %w", stage, cause)
		}
		return inject.ImageConfig{}, l.fail(ref, stage, cause, nil)
	}
}

// Stages of a lookup, as errors name them.
const (
	stageSlot     = "waiting for a free registry lookup slot"
	stageSecrets  = "reading the pod's pull secrets"
	stageTag      = "resolving the tag"
	stageManifest = "fetching the manifest"
	stageConfig   = "fetching the image config"
)

// progress is the stage of a running lookup, read by callers that give up.
type progress struct {
	mu    sync.Mutex
	stage string
}

func (p *progress) set(stage string) {
	p.mu.Lock()
	p.stage = stage
	p.mu.Unlock()
}

func (p *progress) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stage
}

// lookup does the registry work of one ImageConfig call under ctx, which
// carries the lookup's timeout, and reports its stage to p.
func (l *Lookup) lookup(ctx context.Context, ref inject.ImageRef, r name.Reference, p *progress) (inject.ImageConfig, error) {
	p.set(stageSlot)
	start := time.Now()
	release, err := waitSlot(ctx, l.slots)
	if err != nil {
		return inject.ImageConfig{}, l.fail(ref, stageSlot, &busyError{limit: cap(l.slots), after: l.timeout, cause: err}, nil)
	}
	defer release()
	waited := time.Since(start)

	var secretsErr error
	fail := func(err error) (inject.ImageConfig, error) {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if errors.Is(err, errTimedOut) {
			err = &timeoutError{after: l.timeout, stage: p.get(), waited: waited, slots: cap(l.slots)}
		}
		return inject.ImageConfig{}, l.fail(ref, p.get(), err, secretsErr)
	}

	p.set(stageSecrets)
	var auth remote.Option
	auth, secretsErr = l.keychain(ctx, ref)
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}

	puller, err := remote.NewPuller(
		auth,
		remote.WithTransport(l.transport),
		remote.WithPlatform(l.platform),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithUserAgent("kubernetes-entrypoint"),
	)
	if err != nil {
		return fail(err)
	}

	var digest string
	var desc *remote.Descriptor
	if d, ok := r.(name.Digest); ok {
		digest = d.DigestStr()
	} else {
		// HEAD learns the digest without counting against pull rate limits
		// (Docker Hub). A HEAD error has no body to explain it, so a refused
		// HEAD is repeated as a GET, whose answer also serves the fetch below.
		p.set(stageTag)
		head, err := puller.Head(ctx, r)
		var terr *transport.Error
		switch {
		case err == nil:
			digest = head.Digest.String()
		case errors.As(err, &terr) && ctx.Err() == nil:
			p.set(stageManifest)
			if desc, err = puller.Get(ctx, r); err != nil {
				return fail(err)
			}
			digest = desc.Digest.String()
		default:
			return fail(err)
		}
		if cfg, ok := l.cached(digest); ok {
			return cfg, nil
		}
		if desc == nil && head.Size > l.maxManifest {
			p.set(stageManifest)
			return fail(&tooLargeError{what: "manifest", limit: l.maxManifest, size: head.Size})
		}
	}

	if desc == nil {
		p.set(stageManifest)
		if desc, err = puller.Get(ctx, r.Context().Digest(digest)); err != nil {
			return fail(err)
		}
	}
	img, err := desc.Image() // fetches the platform's manifest of an index
	if err != nil {
		return fail(err)
	}
	p.set(stageConfig)
	m, err := img.Manifest()
	if err != nil {
		return fail(err)
	}
	if m.Config.Size > l.maxConfig {
		return fail(&tooLargeError{what: "image config", limit: l.maxConfig, size: m.Config.Size})
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fail(err)
	}
	cfg := inject.ImageConfig{Entrypoint: slices.Clone(cf.Config.Entrypoint), Cmd: slices.Clone(cf.Config.Cmd)}
	l.cache.Add(digest, cfg)
	return cfg, nil
}

// keychain returns the authentication option for ref's pod. When the pull
// secrets cannot be read the lookup goes on anonymously (public images need
// none) and the reason is returned to explain a later failure.
func (l *Lookup) keychain(ctx context.Context, ref inject.ImageRef) (remote.Option, error) {
	if l.client == nil {
		return remote.WithAuth(authn.Anonymous), nil
	}
	kc, err := k8schain.New(ctx, l.client, k8schain.Options{
		Namespace:          ref.Namespace,
		ServiceAccountName: serviceAccount(ref),
		ImagePullSecrets:   ref.ImagePullSecrets,
	})
	if err != nil {
		return remote.WithAuth(authn.Anonymous), err
	}
	return remote.WithAuthFromKeychain(kc), nil
}

func (l *Lookup) parse(image string) (name.Reference, error) {
	if strings.TrimSpace(image) != image || image == "" {
		return nil, fmt.Errorf("invalid image reference %q", image)
	}
	r, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	if l.insecure[r.Context().RegistryStr()] {
		return name.ParseReference(image, name.Insecure)
	}
	return r, nil
}

func (l *Lookup) cached(digest string) (inject.ImageConfig, bool) {
	v, ok := l.cache.Get(digest)
	if !ok {
		return inject.ImageConfig{}, false
	}
	return clone(v.(inject.ImageConfig)), true
}

func clone(c inject.ImageConfig) inject.ImageConfig {
	return inject.ImageConfig{Entrypoint: slices.Clone(c.Entrypoint), Cmd: slices.Clone(c.Cmd)}
}

func serviceAccount(ref inject.ImageRef) string {
	if ref.ServiceAccount == "" {
		return "default"
	}
	return ref.ServiceAccount
}

// flightKey identifies lookups that may share one registry round trip: same
// image, same credentials.
func flightKey(ref inject.ImageRef) string {
	parts := append([]string{ref.Image, ref.Namespace, serviceAccount(ref)}, ref.ImagePullSecrets...)
	return strings.Join(parts, "\x00")
}
