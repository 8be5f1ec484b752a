package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/openstackhelm"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

// keystoneAPIPod is the pod of openstack-helm's keystone-api Deployment, whose
// init container runs the original image with DEPENDENCY_SERVICE and
// DEPENDENCY_JOBS.
func keystoneAPIPod(t *testing.T) *corev1.Pod {
	t.Helper()
	workloads, err := openstackhelm.Workloads("keystone")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workloads {
		if w.Kind == "Deployment" && w.Name == "keystone-api" {
			pod := w.Pod.DeepCopy()
			pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
			return pod
		}
	}
	t.Fatal("no Deployment keystone-api in the rendered keystone chart")
	return nil
}

// adoptedByPatch tells whether the response adopts the pod: it gates it and
// writes a status of mode adopted.
func adoptedByPatch(t *testing.T, resp admission.Response) bool {
	t.Helper()
	status := false
	for _, p := range resp.Patches {
		raw, err := json.Marshal(p.Value)
		if err != nil {
			t.Fatal(err)
		}
		// The status annotation's JSON, as a string in the patch's JSON.
		status = status || strings.Contains(string(raw), `\"mode\":\"adopted\"`)
	}
	return status && gatedByPatch(t, resp)
}

// The namespace's label reaches adoption through the handler's lookup, made only
// for a pod adoption could take; a pod left as it was is allowed without a
// patch, with a warning when something stood in the way; the metric says which.
func TestHandleAdoption(t *testing.T) {
	adoptNS := map[string]string{inject.NamespaceLabelAdopt: "true"}
	unparsable := func(t *testing.T) *corev1.Pod {
		pod := keystoneAPIPod(t)
		for i, e := range pod.Spec.InitContainers[0].Env {
			if e.Name == "DEPENDENCY_SERVICE" {
				pod.Spec.InitContainers[0].Env[i].Value = "memcached,,mariadb"
			}
		}
		return pod
	}
	annotated := func(t *testing.T) *corev1.Pod {
		pod := keystoneAPIPod(t)
		pod.Annotations = map[string]string{"entrypoint.io/dependency-service": "mariadb"}
		return pod
	}
	tests := []struct {
		name       string
		pod        func(*testing.T) *corev1.Pod
		namespaces *fakeNamespaces
		config     func(*inject.Config)
		looksUp    bool
		adopted    bool
		patched    bool
		warning    string // a substring of the only warning, or "" for none
		metric     string // the labels, as the registry sorts them
	}{
		{name: "labelled namespace", pod: keystoneAPIPod, namespaces: &fakeNamespaces{labels: adoptNS}, looksUp: true,
			adopted: true, patched: true, metric: `reason="adopted",result="injected"`},
		{name: "namespace without the label", pod: keystoneAPIPod, namespaces: &fakeNamespaces{}, looksUp: true,
			metric: `reason="no-annotations",result="skipped"`},
		{name: "every namespace", pod: keystoneAPIPod, namespaces: &fakeNamespaces{err: errors.New("not asked")},
			config: func(c *inject.Config) { c.AdoptAllNamespaces = true }, adopted: true, patched: true, metric: `reason="adopted",result="injected"`},
		{name: "lookup fails", pod: keystoneAPIPod, namespaces: &fakeNamespaces{err: errors.New("namespaces is forbidden")}, looksUp: true,
			warning: "its entrypoint.io/adopt label was not honoured: the pod is not adopted", metric: `reason="no-annotations",result="skipped"`},
		{name: "values that do not parse", pod: unparsable, namespaces: &fakeNamespaces{labels: adoptNS}, looksUp: true,
			warning: "not adopted: init container \"init\": its variables do not parse", metric: `reason="adopt-unreadable",result="skipped"`},
		{name: "controller off", pod: keystoneAPIPod, namespaces: &fakeNamespaces{labels: adoptNS}, looksUp: true,
			config: func(c *inject.Config) { c.Controller = false }, warning: "--controller=false", metric: `reason="adopt-no-controller",result="skipped"`},
		{name: "annotated pod", pod: annotated, namespaces: &fakeNamespaces{labels: adoptNS}, looksUp: true,
			patched: true, metric: `reason="injected",result="injected"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, reg := newInjector(t)
			h.Config.Controller = true
			if tt.config != nil {
				tt.config(&h.Config)
			}
			h.Namespaces = tt.namespaces
			resp := h.Handle(context.Background(), request(t, tt.pod(t)))
			if !resp.Allowed {
				t.Fatalf("denied: %+v (adoption must never deny)", resp.Result)
			}
			if looked := len(tt.namespaces.asked) > 0; looked != tt.looksUp {
				t.Errorf("namespace looked up: %v, want %v", looked, tt.looksUp)
			}
			if got := adoptedByPatch(t, resp); got != tt.adopted {
				t.Errorf("adopted %v, want %v; patches %+v", got, tt.adopted, resp.Patches)
			}
			if patched := len(resp.Patches) > 0; patched != tt.patched {
				t.Errorf("patched %v, want %v: %+v", patched, tt.patched, resp.Patches)
			}
			switch {
			case tt.warning == "" && len(resp.Warnings) > 0:
				t.Errorf("warnings %q, want none", resp.Warnings)
			case tt.warning != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one containing %q", resp.Warnings, tt.warning)
			}
			want := "# HELP kubernetes_entrypoint_injections_total Pod admission decisions of the entrypoint webhook, by result (injected, skipped, denied, error) and reason.\n" +
				"# TYPE kubernetes_entrypoint_injections_total counter\n" +
				"kubernetes_entrypoint_injections_total{" + tt.metric + "} 1\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubernetes_entrypoint_injections_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// Against a real API server, through the webhook's cached namespace lookup: the
// pod of openstack-helm's keystone-api is adopted in a namespace labelled
// entrypoint.io/adopt=true and left untouched in one without the label.
func TestHandleAdoptionNamespaceLabel(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	live, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newInjector(t)
	h.Config.Controller = true
	h.Namespaces = webhook.CachedNamespaces{Cache: startCache(t, env.Config), Live: live}
	ctx := context.Background()
	for _, tt := range []struct {
		labels  map[string]string
		adopted bool
	}{
		{labels: map[string]string{inject.NamespaceLabelAdopt: "true"}, adopted: true},
		{labels: map[string]string{inject.NamespaceLabelAdopt: "false"}},
		{labels: nil},
	} {
		ns, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "adopt-", Labels: tt.labels,
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := keystoneAPIPod(t)
		pod.Namespace = "" // as a controller's pods arrive: the request names it
		req := request(t, pod)
		req.Namespace = ns.Name
		resp := h.Handle(ctx, req)
		if !resp.Allowed || adoptedByPatch(t, resp) != tt.adopted || (len(resp.Patches) > 0) != tt.adopted || len(resp.Warnings) > 0 {
			t.Errorf("namespace labelled %v: allowed %v, adopted %v, %d patches, warnings %q; want adopted %v without warnings",
				tt.labels, resp.Allowed, adoptedByPatch(t, resp), len(resp.Patches), resp.Warnings, tt.adopted)
		}
	}
}

// The Unjudged hook decides last: a pod with a gated dependency the controller
// would not judge, or no answer in time, or a panic, is left as it was, with a
// warning and its own metric reason; an empty answer adopts it.
func TestHandleAdoptionUnjudged(t *testing.T) {
	tests := []struct {
		name    string
		hook    func(context.Context, *corev1.Pod) []string
		adopted bool
		warning string
	}{
		{name: "all judged", hook: func(context.Context, *corev1.Pod) []string { return nil }, adopted: true},
		{name: "a kind not allowed", hook: func(_ context.Context, pod *corev1.Pod) []string {
			if pod.Annotations[inject.AnnotationStatus] == "" {
				return []string{"not the adopted pod"}
			}
			return []string{"connection openstack/nova-db: kind Connection is not one the dependency controller may read"}
		}, warning: "not adopted: the dependency controller would not judge connection openstack/nova-db"},
		{name: "no answer in time", hook: func(ctx context.Context, _ *corev1.Pod) []string { <-ctx.Done(); return nil },
			warning: "could not be checked in time"},
		{name: "a panic", hook: func(context.Context, *corev1.Pod) []string { panic("boom") }, warning: "could not be checked in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, reg := newInjector(t)
			h.Config.Controller, h.Config.AdoptAllNamespaces = true, true
			h.Unjudged = tt.hook
			resp := h.Handle(context.Background(), request(t, keystoneAPIPod(t)))
			if !resp.Allowed || adoptedByPatch(t, resp) != tt.adopted || (len(resp.Patches) > 0) != tt.adopted {
				t.Fatalf("allowed %v, adopted %v, %d patches; want adopted %v", resp.Allowed, adoptedByPatch(t, resp), len(resp.Patches), tt.adopted)
			}
			switch {
			case tt.warning == "" && len(resp.Warnings) > 0:
				t.Errorf("warnings %q, want none", resp.Warnings)
			case tt.warning != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one containing %q", resp.Warnings, tt.warning)
			}
			labels := `reason="adopted",result="injected"`
			if !tt.adopted {
				labels = `reason="adopt-not-judged",result="skipped"`
			}
			want := "# HELP kubernetes_entrypoint_injections_total Pod admission decisions of the entrypoint webhook, by result (injected, skipped, denied, error) and reason.\n" +
				"# TYPE kubernetes_entrypoint_injections_total counter\n" +
				"kubernetes_entrypoint_injections_total{" + labels + "} 1\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubernetes_entrypoint_injections_total"); err != nil {
				t.Error(err)
			}
		})
	}
}
