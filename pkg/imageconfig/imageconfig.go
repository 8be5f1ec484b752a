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
package imageconfig

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
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
	DefaultTimeout   = 3 * time.Second
	DefaultCacheSize = 512
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
// HTTPS, DefaultTimeout, linux/<GOARCH>, DefaultCacheSize entries.
type Options struct {
	// Client reads the pod's imagePullSecrets and its ServiceAccount (which
	// needs get on secrets and serviceaccounts in the pods' namespaces). When
	// nil, registries are accessed anonymously.
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

	// Transport carries the registry requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper

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
	client    kubernetes.Interface
	timeout   time.Duration
	platform  v1.Platform
	transport http.RoundTripper
	insecure  map[string]bool

	cache    *lru.Cache // manifest or index digest (string) -> inject.ImageConfig
	inflight singleflight.Group
}

var _ inject.ImageConfigLookup = (*Lookup)(nil)

// New returns a Lookup configured by opts.
func New(opts Options) *Lookup {
	l := &Lookup{
		client:   opts.Client,
		timeout:  opts.Timeout,
		platform: opts.Platform,
		insecure: map[string]bool{},
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	if l.platform.OS == "" {
		l.platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
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
		next = remote.DefaultTransport
	}
	l.transport = &httpsOnly{next: next, insecure: l.insecure}
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
		return inject.ImageConfig{}, l.fail(ref.Image, "", err, nil)
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
	ch := l.inflight.DoChan(flightKey(ref), func() (any, error) {
		wctx, wcancel := context.WithTimeoutCause(context.WithoutCancel(ctx), l.timeout, errTimedOut)
		defer wcancel()
		return l.lookup(wctx, ref, r)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return inject.ImageConfig{}, res.Err
		}
		return clone(res.Val.(inject.ImageConfig)), nil
	case <-ctx.Done():
		cause := context.Cause(ctx)
		if !errors.Is(cause, errTimedOut) {
			cause = fmt.Errorf("gave up waiting for the registry: %w", cause)
		}
		return inject.ImageConfig{}, l.fail(ref.Image, "waiting for the registry", cause, nil)
	}
}

// lookup does the registry work of one ImageConfig call under ctx, which
// carries the lookup's timeout.
func (l *Lookup) lookup(ctx context.Context, ref inject.ImageRef, r name.Reference) (inject.ImageConfig, error) {
	stage := "reading the pod's pull secrets"
	auth, secretsErr := l.keychain(ctx, ref)
	fail := func(err error) (inject.ImageConfig, error) {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return inject.ImageConfig{}, l.fail(ref.Image, stage, err, secretsErr)
	}
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
		stage = "resolving the tag"
		head, err := puller.Head(ctx, r)
		var terr *transport.Error
		switch {
		case err == nil:
			digest = head.Digest.String()
		case errors.As(err, &terr) && ctx.Err() == nil:
			stage = "fetching the manifest"
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
	}

	if desc == nil {
		stage = "fetching the manifest"
		if desc, err = puller.Get(ctx, r.Context().Digest(digest)); err != nil {
			return fail(err)
		}
	}
	stage = "fetching the image config"
	img, err := desc.Image()
	if err != nil {
		return fail(err)
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
