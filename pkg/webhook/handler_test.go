package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

func newInjector(t testing.TB) (*webhook.PodInjector, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := webhook.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &webhook.PodInjector{
		Config:  inject.Config{Image: "registry.example/kubernetes-entrypoint:1"},
		Decoder: admission.NewDecoder(runtime.NewScheme()),
		Log:     logr.Discard(),
		Metrics: m,
	}, reg
}

// typicalPod: two containers and three dependency annotations, as a Deployment
// of an openstack-helm chart would carry them.
func typicalPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "keystone-api-7d9f8b6c5-", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "keystone-api", Image: "keystone:2025.1", Command: []string{"/tmp/keystone-api.sh", "start"}},
			{Name: "metrics", Image: "exporter:1", Command: []string{"/exporter"}, Args: []string{"--port=9100"}},
		}},
	}
}

var typicalAnnotations = map[string]string{
	"entrypoint.io/dependency-service": "mariadb,memcached",
	"entrypoint.io/dependency-job":     "keystone-db-sync,keystone-fernet-setup",
	"entrypoint.io/dependency-pod":     `[{"labels":{"application":"rabbitmq"}}]`,
}

func request(t testing.TB, pod *corev1.Pod) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Namespace: "openstack", Operation: admissionv1.Create,
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
	}}
}

func TestHandle(t *testing.T) {
	cases := []struct {
		name        string
		annotations map[string]string
		raw         []byte // instead of the pod
		allowed     bool
		patched     bool
		code        int32
		message     string
		causes      []string // field paths of the denial's causes
		metric      [2]string
	}{
		{name: "injected", annotations: typicalAnnotations, allowed: true, patched: true, metric: [2]string{"injected", "injected"}},
		{name: "opted out", annotations: map[string]string{"entrypoint.io/inject": "false"}, allowed: true, metric: [2]string{"skipped", "opt-out"}},
		{name: "denied", annotations: map[string]string{"entrypoint.io/dependency-service": "a,,b"}, code: http.StatusForbidden,
			message: `annotation entrypoint.io/dependency-service: item 2 of "a,,b" is empty`, metric: [2]string{"denied", "invalid-annotation"},
			causes: []string{"metadata.annotations[entrypoint.io/dependency-service]"}},
		{name: "undecodable", raw: []byte("{not json"), code: http.StatusBadRequest, metric: [2]string{"error", "decode"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, reg := newInjector(t)
			req := request(t, typicalPod(tc.annotations))
			if tc.raw != nil {
				req.Object.Raw = tc.raw
			}
			resp := h.Handle(context.Background(), req)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %+v", resp.Allowed, tc.allowed, resp.Result)
			}
			if (len(resp.Patches) > 0) != tc.patched {
				t.Errorf("%d patches, want patched=%v", len(resp.Patches), tc.patched)
			}
			var result metav1.Status
			if resp.Result != nil {
				result = *resp.Result
			}
			if tc.code != 0 && result.Code != tc.code {
				t.Errorf("code %d, want %d (%s)", result.Code, tc.code, result.Message)
			}
			if !strings.Contains(result.Message, tc.message) {
				t.Errorf("message %q lacks %q", result.Message, tc.message)
			}
			var causes []string
			if result.Details != nil {
				for _, c := range result.Details.Causes {
					causes = append(causes, c.Field)
					if c.Type != metav1.CauseTypeFieldValueInvalid || !strings.Contains(result.Message, c.Message) {
						t.Errorf("cause %+v: want an invalid field, its message in the denial's", c)
					}
				}
			}
			if !slices.Equal(causes, tc.causes) {
				t.Errorf("causes at %q, want %q", causes, tc.causes)
			}
			want := `
# HELP kubernetes_entrypoint_injections_total Pod admission decisions of the entrypoint webhook, by result (injected, skipped, denied, error) and reason.
# TYPE kubernetes_entrypoint_injections_total counter
kubernetes_entrypoint_injections_total{reason="` + tc.metric[1] + `",result="` + tc.metric[0] + `"} 1
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubernetes_entrypoint_injections_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// The namespace of a pod created from a template comes from the request.
func TestHandleUsesTheRequestNamespace(t *testing.T) {
	h, _ := newInjector(t)
	resp := h.Handle(context.Background(), request(t, typicalPod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})))
	if !resp.Allowed {
		t.Fatal(resp.Result)
	}
	for _, p := range resp.Patches {
		raw, _ := json.Marshal(p.Value)
		if strings.Contains(string(raw), "openstack:mariadb") {
			return
		}
	}
	t.Errorf("no patch carries DEPENDENCY_SERVICE=openstack:mariadb: %+v", resp.Patches)
}

// BenchmarkHandle: decode, mutate, encode and diff one typical pod, as the server does.
func BenchmarkHandle(b *testing.B) {
	h, _ := newInjector(b)
	req := request(b, typicalPod(typicalAnnotations))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if resp := h.Handle(ctx, req); !resp.Allowed || len(resp.Patches) == 0 {
			b.Fatalf("not injected: %+v", resp.Result)
		}
	}
}

// recordingLookup answers every image with an ENTRYPOINT and records each lookup.
type recordingLookup struct {
	mu    sync.Mutex
	asked []inject.ImageRef
}

func (r *recordingLookup) ImageConfig(_ context.Context, ref inject.ImageRef) (inject.ImageConfig, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, ref)
	return inject.ImageConfig{Entrypoint: []string{"/app"}}, nil
}

// The request's namespace is the only one used: a pod object naming another one
// is denied before any registry lookup, so a direct caller cannot make the webhook
// read another namespace's pull secrets.
func TestHandleNamespaceIsTheRequests(t *testing.T) {
	cases := []struct {
		name         string
		podNamespace string
		reqNamespace string
		allowed      bool
		lookedUpIn   string // the namespace of the registry lookup, when one is made
	}{
		{name: "pod from a template", reqNamespace: "openstack", allowed: true, lookedUpIn: "openstack"},
		{name: "same namespace", podNamespace: "openstack", reqNamespace: "openstack", allowed: true, lookedUpIn: "openstack"},
		{name: "pod names another namespace", podNamespace: "kube-system", reqNamespace: "openstack"},
		{name: "request without a namespace", podNamespace: "kube-system"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newInjector(t)
			lookup := &recordingLookup{}
			h.Config.ImageConfig = lookup
			pod := typicalPod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})
			pod.Namespace = tc.podNamespace
			pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "private-registry"}}
			pod.Spec.Containers[0].Command = nil // its argv comes from the registry
			req := request(t, pod)
			req.Namespace = tc.reqNamespace
			resp := h.Handle(context.Background(), req)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %+v", resp.Allowed, tc.allowed, resp.Result)
			}
			var namespaces []string
			for _, ref := range lookup.asked {
				namespaces = append(namespaces, ref.Namespace)
			}
			var want []string
			if tc.lookedUpIn != "" {
				want = []string{tc.lookedUpIn}
			}
			if !slices.Equal(namespaces, want) {
				t.Errorf("registry lookups in namespaces %q, want %q", namespaces, want)
			}
			if !tc.allowed && !strings.Contains(resp.Result.Message, "is not the namespace of the admission request") {
				t.Errorf("denial %q does not say why", resp.Result.Message)
			}
		})
	}
}

// A request whose context has ended gets an error, not a decision.
func TestHandleCanceled(t *testing.T) {
	h, reg := newInjector(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := h.Handle(ctx, request(t, typicalPod(typicalAnnotations)))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("response %+v, want an error", resp.Result)
	}
	want := `
# HELP kubernetes_entrypoint_injections_total Pod admission decisions of the entrypoint webhook, by result (injected, skipped, denied, error) and reason.
# TYPE kubernetes_entrypoint_injections_total counter
kubernetes_entrypoint_injections_total{reason="canceled",result="error"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubernetes_entrypoint_injections_total"); err != nil {
		t.Error(err)
	}
}

// A pod's name is not validated when the webhook sees it: its log lines show at
// most a valid name's length of it.
func TestHandleLogsAShortName(t *testing.T) {
	h, _ := newInjector(t)
	var lines []string
	h.Log = funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	pod := typicalPod(map[string]string{"entrypoint.io/dependency-service": "a,,b"})
	pod.GenerateName = strings.Repeat("n", 100_000)
	h.Handle(context.Background(), request(t, pod))
	if len(lines) == 0 {
		t.Fatal("nothing logged")
	}
	for _, line := range lines {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: %.300s", len(line), line)
		}
	}
}
