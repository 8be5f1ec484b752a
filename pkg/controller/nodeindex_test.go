package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// onNodeObj is a pod object of the informer in ns on node ("" for none yet).
func onNodeObj(ns, name, node string, lbls map[string]string) *unstructured.Unstructured {
	u := obj(ns, name, lbls)
	if node != "" {
		_ = unstructured.SetNestedField(u.Object, node, "spec", "nodeName")
	}
	return u
}

func TestPodNodeIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  any
		want []string
	}{
		{"a pod on a node", onNodeObj("ns", "p", "n1", nil), []string{"ns/n1"}},
		{"a pod on no node yet", onNodeObj("ns", "p", "", nil), nil},
		{"the same node in another namespace", onNodeObj("other", "p", "n1", nil), []string{"other/n1"}},
		{"not an object of the informer", "ns/p", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podNodeOf(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("indexed under %q, want %q", got, tc.want)
			}
		})
	}
	if _, ok := indexersOf(podsResource)[nodeIndex]; !ok {
		t.Error("the pods informer has no node index")
	}
	if _, ok := indexersOf(jobsResource)[nodeIndex]; ok {
		t.Error("the jobs informer has a node index")
	}
}

// indexedInformer is a kind's informer, not started, holding objs.
func indexedInformer(t testing.TB, gvr schema.GroupVersionResource, objs []*unstructured.Unstructured) *kindInformer {
	t.Helper()
	inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, &unstructured.Unstructured{}, 0, indexersOf(gvr))
	for _, o := range objs {
		if err := inf.GetIndexer().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return &kindInformer{informer: inf}
}

// A same-node dependency reads the matching pods of its namespace on its node
// only; without a node, those of the whole namespace.
func TestSameNodeObjects(t *testing.T) {
	ki := indexedInformer(t, podsResource, []*unstructured.Unstructured{
		onNodeObj("ns", "ovs-n1", "n1", map[string]string{"app": "ovs"}),
		onNodeObj("ns", "ovs-n1-b", "n1", map[string]string{"app": "ovs"}),
		onNodeObj("ns", "web-n1", "n1", map[string]string{"app": "web"}),
		onNodeObj("ns", "ovs-n2", "n2", map[string]string{"app": "ovs"}),
		onNodeObj("ns", "ovs-pending", "", map[string]string{"app": "ovs"}),
		onNodeObj("other", "ovs-n1", "n1", map[string]string{"app": "ovs"}),
	})
	ovs := labels.SelectorFromSet(labels.Set{"app": "ovs"})
	for _, tc := range []struct {
		name string
		dep  dependency
		want []string
	}{
		{"matching pods on n1", dependency{gvr: podsResource, namespace: "ns", selector: ovs, node: "n1"}, []string{"ns/ovs-n1", "ns/ovs-n1-b"}},
		{"every pod on n1", dependency{gvr: podsResource, namespace: "ns", selector: labels.Everything(), node: "n1"}, []string{"ns/ovs-n1", "ns/ovs-n1-b", "ns/web-n1"}},
		{"a node with none", dependency{gvr: podsResource, namespace: "ns", selector: ovs, node: "n3"}, nil},
		{"no node: the whole namespace", dependency{gvr: podsResource, namespace: "ns", selector: ovs}, []string{"ns/ovs-n1", "ns/ovs-n1-b", "ns/ovs-n2", "ns/ovs-pending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, o := range tc.dep.objects(ki) {
				got = append(got, o.GetNamespace()+"/"+o.GetName())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("read %v, want %v", got, tc.want)
			}
		})
	}
}

// A pod's change on a node wakes the pods waiting for same-node dependencies
// on that node, and those waiting namespace-wide (a gated pod being placed),
// not those waiting on other nodes; one node's waiters forgotten leave the
// other's woken.
func TestWaitersByNode(t *testing.T) {
	w := newWaiters()
	ovs := labels.SelectorFromSet(labels.Set{"app": "ovs"})
	onN1 := types.NamespacedName{Namespace: "ns", Name: "on-n1"}
	onN2 := types.NamespacedName{Namespace: "ns", Name: "on-n2"}
	placing := types.NamespacedName{Namespace: "ns", Name: "placing"}
	w.set(onN1, []dependency{{gvr: podsResource, namespace: "ns", selector: ovs, node: "n1"}})
	w.set(onN2, []dependency{{gvr: podsResource, namespace: "ns", selector: ovs, node: "n2"}})
	w.set(placing, []dependency{{gvr: podsResource, namespace: "ns", selector: ovs}})

	woken := func(old, obj *unstructured.Unstructured) string {
		var out []string
		for _, p := range w.of(podsResource, old, obj) {
			out = append(out, p.Name)
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name     string
		old, obj *unstructured.Unstructured
		want     string
	}{
		{"a matching pod on n1", nil, onNodeObj("ns", "ovs-a", "n1", map[string]string{"app": "ovs"}), "on-n1,placing"},
		{"a matching pod on n2", nil, onNodeObj("ns", "ovs-b", "n2", map[string]string{"app": "ovs"}), "on-n2,placing"},
		{"a matching pod on no node", nil, onNodeObj("ns", "ovs-c", "", map[string]string{"app": "ovs"}), "placing"},
		{"a matching pod bound to n2", onNodeObj("ns", "ovs-c", "", map[string]string{"app": "ovs"}), onNodeObj("ns", "ovs-c", "n2", map[string]string{"app": "ovs"}), "on-n2,placing"},
		{"a pod on n1 that stopped matching", onNodeObj("ns", "ovs-a", "n1", map[string]string{"app": "ovs"}), onNodeObj("ns", "ovs-a", "n1", map[string]string{"app": "web"}), "on-n1,placing"},
		{"another pod on n1", nil, onNodeObj("ns", "web", "n1", map[string]string{"app": "web"}), ""},
		{"a matching pod on n1 of another namespace", nil, onNodeObj("other", "ovs-a", "n1", map[string]string{"app": "ovs"}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := woken(tc.old, tc.obj); got != tc.want {
				t.Errorf("woke %q, want %q", got, tc.want)
			}
		})
	}

	w.forget(onN1)
	w.forget(placing)
	if got := woken(nil, onNodeObj("ns", "ovs-b", "n2", map[string]string{"app": "ovs"})); got != "on-n2" {
		t.Errorf("after the others were forgotten, a pod on n2 woke %q, want on-n2", got)
	}
	w.forget(onN2)
	if len(w.selectors) != 0 || len(w.byKey) != 0 {
		t.Errorf("left after every pod was forgotten: selectors %v, keys %v", w.selectors, w.byKey)
	}
}

// BenchmarkSameNodeObjects reads, for one pod, the matching pods on its node
// among 5,000 pods of a namespace on 500 nodes: through the node index, and
// by a scan of the namespace as before the index.
func BenchmarkSameNodeObjects(b *testing.B) {
	const pods, nodes = 5000, 500
	objs := make([]*unstructured.Unstructured, 0, pods)
	for i := range pods {
		app := "web"
		if i < nodes { // one on each node
			app = "ovs"
		}
		objs = append(objs, onNodeObj("ns", fmt.Sprintf("p-%d", i), fmt.Sprintf("n%d", i%nodes), map[string]string{"app": app}))
	}
	ki := indexedInformer(b, podsResource, objs)
	ovs := labels.SelectorFromSet(labels.Set{"app": "ovs"})
	ready := func(objects []*unstructured.Unstructured) resolve.Status {
		return resolve.Status{Ready: len(objects) == 1}
	}
	b.Run("index", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			d := dependency{gvr: podsResource, namespace: "ns", selector: ovs, node: fmt.Sprintf("n%d", i%nodes)}
			if !ready(d.objects(ki)).Ready {
				b.Fatalf("node %s: want the one ovs pod", d.node)
			}
		}
	})
	b.Run("namespace-scan", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			node := fmt.Sprintf("n%d", i%nodes)
			var found []*unstructured.Unstructured
			for _, o := range ki.byIndex(toolscache.NamespaceIndex, "ns") {
				if ovs.Matches(labels.Set(o.GetLabels())) && nodeOf(o) == node {
					found = append(found, o)
				}
			}
			if !ready(found).Ready {
				b.Fatalf("node %s: want the one ovs pod", node)
			}
		}
	})
}
