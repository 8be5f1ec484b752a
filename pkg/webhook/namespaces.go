package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CachedNamespaces reads namespace labels from Cache, a controller-runtime cache:
// the first read starts a metadata-only informer on namespaces, so a pod costs
// no API call. A namespace the cache does not know yet (created a moment ago) is
// read from Live, a reader that asks the API server; so is every namespace while
// the cache has not synced within cacheWait (just after the webhook started, or
// for good when it may not list namespaces: then each pod costs a fraction of a
// second and a clear error, not the whole lookup's deadline). Both need get,
// list and watch on namespaces.
type CachedNamespaces struct {
	Cache client.Reader
	Live  client.Reader // nil: a namespace missing from the cache is an error
}

// cacheWait is how long a lookup waits for the cache before it asks Live.
const cacheWait = 500 * time.Millisecond

var _ NamespaceLabels = CachedNamespaces{}

// NamespaceLabels returns the labels of namespace name.
func (c CachedNamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns := namespaceMetadata()
	cacheCtx := ctx
	if c.Live != nil {
		var cancel context.CancelFunc
		cacheCtx, cancel = context.WithTimeout(ctx, cacheWait)
		defer cancel()
	}
	err := c.Cache.Get(cacheCtx, client.ObjectKey{Name: name}, ns)
	var notStarted *cache.ErrCacheNotStarted
	notSynced := err != nil && (errors.As(err, &notStarted) || cacheCtx.Err() != nil && ctx.Err() == nil)
	if c.Live != nil && (apierrors.IsNotFound(err) || notSynced) {
		err = c.Live.Get(ctx, client.ObjectKey{Name: name}, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}

// namespaceMetadata is an empty namespace of which only the metadata is read.
func namespaceMetadata() *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return ns
}
