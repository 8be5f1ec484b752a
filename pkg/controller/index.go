package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// waiters is the index from what is waited for to the pods that wait, so that a
// change of one object wakes exactly the pods it may release.
type waiters struct {
	mu sync.Mutex
	// byKey: by name (and by selector string, for the selector's own entry).
	byKey map[depKey]map[types.NamespacedName]struct{}
	// selectors of each kind and namespace, by their string form.
	selectors map[scope]map[string]*selectorUse
	// ofPod is what each pod waits for, to update and drop its entries.
	ofPod map[types.NamespacedName][]depKey
}

// selectorUse is a selector and how many keys of byKey hold it: one per node
// it is waited for on, and one namespace-wide.
type selectorUse struct {
	selector labels.Selector
	keys     int
}

type scope struct {
	gvr       schema.GroupVersionResource
	namespace string
}

func newWaiters() *waiters {
	return &waiters{
		byKey:     map[depKey]map[types.NamespacedName]struct{}{},
		selectors: map[scope]map[string]*selectorUse{},
		ofPod:     map[types.NamespacedName][]depKey{},
	}
}

// set records that pod waits for deps, replacing what it waited for before.
func (w *waiters) set(pod types.NamespacedName, deps []dependency) {
	keys := make([]depKey, 0, len(deps))
	for _, d := range deps {
		if d.problem == "" {
			keys = append(keys, d.key())
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.ofPod[pod]; ok && sameKeys(old, keys) {
		return
	}
	w.dropLocked(pod)
	w.ofPod[pod] = keys
	for i, k := range keys {
		pods := w.byKey[k]
		if pods == nil {
			pods = map[types.NamespacedName]struct{}{}
			w.byKey[k] = pods
			if k.selector != "" {
				w.useSelectorLocked(k, deps[indexOfKey(deps, i, k)].selector)
			}
		}
		pods[pod] = struct{}{}
	}
}

// useSelectorLocked counts the new key k of byKey on its selector sel.
func (w *waiters) useSelectorLocked(k depKey, sel labels.Selector) {
	s := scope{k.gvr, k.namespace}
	if w.selectors[s] == nil {
		w.selectors[s] = map[string]*selectorUse{}
	}
	use := w.selectors[s][k.selector]
	if use == nil {
		use = &selectorUse{selector: sel}
		w.selectors[s][k.selector] = use
	}
	use.keys++
}

// indexOfKey finds the dependency whose key is k, searching from i (keys and deps
// are in the same order but deps may hold unindexed ones).
func indexOfKey(deps []dependency, i int, k depKey) int {
	for j := i; j < len(deps); j++ {
		if deps[j].problem == "" && deps[j].key() == k {
			return j
		}
	}
	return i
}

// forget drops the pod.
func (w *waiters) forget(pod types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropLocked(pod)
}

func (w *waiters) dropLocked(pod types.NamespacedName) {
	for _, k := range w.ofPod[pod] {
		pods := w.byKey[k]
		delete(pods, pod)
		if len(pods) == 0 {
			delete(w.byKey, k)
			if k.selector != "" {
				s := scope{k.gvr, k.namespace}
				if use := w.selectors[s][k.selector]; use != nil {
					if use.keys--; use.keys <= 0 {
						delete(w.selectors[s], k.selector)
					}
				}
				if len(w.selectors[s]) == 0 {
					delete(w.selectors, s)
				}
			}
		}
	}
	delete(w.ofPod, pod)
}

// of returns the pods that wait for obj of kind gvr, or did before the change
// from old (label changes).
func (w *waiters) of(gvr schema.GroupVersionResource, old, obj *unstructured.Unstructured) []types.NamespacedName {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[types.NamespacedName]struct{}{}
	add := func(k depKey) {
		for p := range w.byKey[k] {
			seen[p] = struct{}{}
		}
	}
	for _, o := range []*unstructured.Unstructured{old, obj} {
		if o == nil {
			continue
		}
		ns := o.GetNamespace()
		name := o.GetName()
		if gvr == endpointSlicesResource {
			name = o.GetLabels()[serviceNameLabel]
		}
		add(depKey{gvr: gvr, namespace: ns, name: name})
		node := ""
		if gvr == podsResource {
			node = nodeOf(o)
		}
		for str, use := range w.selectors[scope{gvr, ns}] {
			if use.selector.Matches(labels.Set(o.GetLabels())) {
				add(depKey{gvr: gvr, namespace: ns, selector: str})
				if node != "" {
					add(depKey{gvr: gvr, namespace: ns, selector: str, node: node})
				}
			}
		}
	}
	out := make([]types.NamespacedName, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	return out
}

// ofKind returns every pod waiting for something of kind gvr.
func (w *waiters) ofKind(gvr schema.GroupVersionResource) []types.NamespacedName {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []types.NamespacedName
	for pod, keys := range w.ofPod {
		for _, k := range keys {
			if k.gvr == gvr {
				out = append(out, pod)
				break
			}
		}
	}
	return out
}

func sameKeys(a, b []depKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// kinds are the kinds some pod waits for.
func (w *waiters) kinds() map[schema.GroupVersionResource]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[schema.GroupVersionResource]bool{}
	for k := range w.byKey {
		out[k.gvr] = true
	}
	return out
}
