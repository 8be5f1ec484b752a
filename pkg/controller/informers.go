package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var (
	endpointSlicesResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	jobsResource           = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	podsResource           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// serviceIndex indexes EndpointSlices by "namespace/service".
const serviceIndex = "service"

// nodeIndex indexes pods by "namespace/node", so that a same-node dependency
// reads the pods of one node, not every pod of its namespace.
const nodeIndex = "node"

const serviceNameLabel = "kubernetes.io/service-name"

// kindInformer is the one shared informer of a kind the controller watches.
type kindInformer struct {
	informer toolscache.SharedIndexInformer
	// stop ends the informer; lastUsed is when a pod last asked for it (under
	// kindInformers.mu), so that one no pod needs any more is stopped.
	stop     context.CancelFunc
	lastUsed time.Time
	synced   atomic.Bool
	// watchErr is the latest list or watch error while not synced, for the
	// condition: "cannot watch jobs.batch: forbidden".
	watchErr atomic.Pointer[string]
}

// state says whether the informer can answer: synced, or why not yet.
func (k *kindInformer) state() (synced bool, problem string) {
	if k.synced.Load() {
		return true, ""
	}
	if p := k.watchErr.Load(); p != nil {
		return false, *p
	}
	return false, ""
}

// list returns the objects of namespace ("" for cluster-scoped kinds) in index
// order; nil until synced.
func (k *kindInformer) byIndex(index, value string) []*unstructured.Unstructured {
	items, err := k.informer.GetIndexer().ByIndex(index, value)
	if err != nil {
		return nil
	}
	return asUnstructured(items)
}

func (k *kindInformer) byKey(key string) []*unstructured.Unstructured {
	item, found, err := k.informer.GetIndexer().GetByKey(key)
	if err != nil || !found {
		return nil
	}
	return asUnstructured([]any{item})
}

func asUnstructured(items []any) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(items))
	for _, item := range items {
		if u, ok := item.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

// kindInformers starts one informer per kind on first use and stops it once no
// pod has needed it for idle (sweep).
type kindInformers struct {
	client dynamic.Interface
	log    logr.Logger
	// changed is called for every add, update and delete (old is nil but on
	// update; obj is the deleted object on delete).
	changed func(gvr schema.GroupVersionResource, old, obj *unstructured.Unstructured)
	// synced is called once the kind's informer has synced.
	synced func(gvr schema.GroupVersionResource)

	mu    sync.Mutex
	ctx   context.Context
	kinds map[schema.GroupVersionResource]*kindInformer
	now   func() time.Time
}

// start sets the context every informer runs under (the leader's).
func (k *kindInformers) start(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctx = ctx
}

// get returns the kind's informer, started when first asked for; nil before
// start.
func (k *kindInformers) get(gvr schema.GroupVersionResource) *kindInformer {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ki, ok := k.kinds[gvr]; ok {
		ki.lastUsed = k.now()
		return ki
	}
	if k.ctx == nil {
		return nil
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(k.client, gvr, "", 0, indexersOf(gvr), nil).Informer()
	ctx, stop := context.WithCancel(k.ctx)
	ki := &kindInformer{informer: inf, stop: stop, lastUsed: k.now()}
	_ = inf.SetTransform(slimmer(gvr))
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *toolscache.Reflector, err error) {
		msg := fmt.Sprintf("cannot watch %s: %s", resourceName(gvr), shortError(err))
		if prev := ki.watchErr.Swap(&msg); prev == nil || *prev != msg {
			k.log.Error(err, "cannot watch a kind that pods wait for; their condition says so until it can",
				"resource", resourceName(gvr), "hint", "grant the controller list and watch on it")
		}
		toolscache.DefaultWatchErrorHandler(ctx, r, err)
	})
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				k.changed(gvr, nil, u)
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			o, _ := oldObj.(*unstructured.Unstructured)
			if u, ok := obj.(*unstructured.Unstructured); ok {
				k.changed(gvr, o, u)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				k.changed(gvr, nil, u)
			}
		},
	})
	k.kinds[gvr] = ki
	go inf.RunWithContext(ctx)
	go func() {
		if toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			ki.synced.Store(true)
			ki.watchErr.Store(nil)
			k.log.Info("watching a kind that pods wait for", "resource", resourceName(gvr))
			k.synced(gvr)
		}
	}()
	return ki
}

// indexersOf are the indexes of the kind's informer: by namespace, and by
// service for EndpointSlices, by node for pods.
func indexersOf(gvr schema.GroupVersionResource) toolscache.Indexers {
	indexers := toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc}
	switch gvr {
	case endpointSlicesResource:
		indexers[serviceIndex] = serviceOf
	case podsResource:
		indexers[nodeIndex] = podNodeOf
	}
	return indexers
}

// serviceOf is the "namespace/service" of an EndpointSlice; none without its
// service label.
func serviceOf(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	svc := u.GetLabels()[serviceNameLabel]
	if svc == "" {
		return nil, nil
	}
	return []string{u.GetNamespace() + "/" + svc}, nil
}

// podNodeOf is the "namespace/node" of a pod; none while it has no node.
func podNodeOf(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	n := nodeOf(u)
	if n == "" {
		return nil, nil
	}
	return []string{onNodeKey(u.GetNamespace(), n)}, nil
}

// onNodeKey is the nodeIndex value of the pods of namespace on node.
func onNodeKey(namespace, node string) string {
	return namespace + "/" + node
}

// sweep stops the informers of kinds no pod waits for (inUse) and none asked
// for since idle ago, and tells which it stopped. The Jobs informer stays: it
// feeds the memory of completed Jobs (jobmemory.go), which a pod created later
// may need.
func (k *kindInformers) sweep(inUse map[schema.GroupVersionResource]bool, idle time.Duration) []schema.GroupVersionResource {
	k.mu.Lock()
	defer k.mu.Unlock()
	var stopped []schema.GroupVersionResource
	for gvr, ki := range k.kinds {
		if gvr == jobsResource || inUse[gvr] || k.now().Sub(ki.lastUsed) < idle {
			continue
		}
		ki.stop()
		delete(k.kinds, gvr)
		stopped = append(stopped, gvr)
		k.log.Info("stopped watching a kind no pod waits for any more", "resource", resourceName(gvr))
	}
	return stopped
}

// count is how many kinds are watched.
func (k *kindInformers) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.kinds)
}

// slimmer drops what the readiness rules never read, so that a cluster's worth of
// pods and jobs costs little memory: managed fields everywhere, the spec of pods
// (but their node), jobs and CRDs (their status and labels decide; a CRD's schema can be large),
// the pod template of workloads (their replicas and update strategy decide).
// Of Secrets and ConfigMaps it keeps the keys and drops every value before the
// object is cached (kube.KeysOnly): a cluster's ConfigMaps can weigh hundreds of
// megabytes, and no Secret value may be held by the controller. A rule that
// compares a ConfigMap's values (a custom-resource field, a CEL expression)
// reads that one object by GET, after the pod's access to it is checked.
func slimmer(gvr schema.GroupVersionResource) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		switch gvr {
		case podsResource:
			// A pod's node decides same-node dependencies.
			node := nodeOf(u)
			unstructured.RemoveNestedField(u.Object, "spec")
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
			if node != "" {
				_ = unstructured.SetNestedField(u.Object, node, "spec", "nodeName")
			}
		case jobsResource, kube.CRDsResource:
			unstructured.RemoveNestedField(u.Object, "spec")
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		case kube.WorkloadResource(spec.WorkloadDeployment), kube.WorkloadResource(spec.WorkloadStatefulSet), kube.WorkloadResource(spec.WorkloadDaemonSet):
			unstructured.RemoveNestedField(u.Object, "spec", "template")
			unstructured.RemoveNestedField(u.Object, "spec", "volumeClaimTemplates")
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		case kube.SecretsResource, kube.ConfigMapsResource:
			kube.KeysOnly(u)
		}
		return u, nil
	}
}

// resourceName is "jobs.batch", as kubectl and RBAC name a resource.
func resourceName(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource
	}
	return gvr.Resource + "." + gvr.Group
}
