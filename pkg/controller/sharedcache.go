package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sharedCache lends the process's cache to the controller's manager, which is
// made anew after every won election: the manager reads and watches through it,
// so that the process holds one watch per kind (the pods the cycle detector
// follows are the controller's) and the API server sends each pod's change to
// it once, not once per cache. The process's manager starts and stops the
// cache; the controller's manager only waits for it. The event handlers the
// controller's manager adds are removed when it stops, so that a lost election
// leaves none behind on informers that live on.
type sharedCache struct {
	cache.Cache

	mu      sync.Mutex
	handles []sharedHandle
}

type sharedHandle struct {
	informer cache.Informer
	handle   toolscache.ResourceEventHandlerRegistration
}

func newSharedCache(c cache.Cache) *sharedCache { return &sharedCache{Cache: c} }

// Start does not start the cache (its owner did): it waits until the
// controller's manager stops, then removes that manager's event handlers.
func (c *sharedCache) Start(ctx context.Context) error {
	<-ctx.Done()
	c.mu.Lock()
	handles := c.handles
	c.handles = nil
	c.mu.Unlock()
	var errs []error
	for _, h := range handles {
		if err := h.informer.RemoveEventHandler(h.handle); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the stopped controller's event handlers from the shared cache: %w", err)
	}
	return nil
}

func (c *sharedCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	inf, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return &sharedInformer{Informer: inf, cache: c}, nil
}

func (c *sharedCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	inf, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return &sharedInformer{Informer: inf, cache: c}, nil
}

// RemoveInformer is refused: the informers are the process's, which other
// parts of it use.
func (c *sharedCache) RemoveInformer(context.Context, client.Object) error {
	return errors.New("the controller's manager may not remove an informer of the process's shared cache")
}

func (c *sharedCache) remember(inf cache.Informer, h toolscache.ResourceEventHandlerRegistration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handles = append(c.handles, sharedHandle{informer: inf, handle: h})
}

// sharedInformer records the handlers added through it.
type sharedInformer struct {
	cache.Informer
	cache *sharedCache
}

func (i *sharedInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	reg, err := i.Informer.AddEventHandler(h)
	if err == nil {
		i.cache.remember(i.Informer, reg)
	}
	return reg, err
}

func (i *sharedInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	reg, err := i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	if err == nil {
		i.cache.remember(i.Informer, reg)
	}
	return reg, err
}

func (i *sharedInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, o toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	reg, err := i.Informer.AddEventHandlerWithOptions(h, o)
	if err == nil {
		i.cache.remember(i.Informer, reg)
	}
	return reg, err
}
