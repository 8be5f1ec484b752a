package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// fakeNamespaces answers every namespace with labels, or fails with err, and
// counts the lookups.
type fakeNamespaces struct {
	labels map[string]string
	err    error
	mu     sync.Mutex
	asked  []string
}

func (f *fakeNamespaces) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	return f.labels, f.err
}

// gatedByPatch tells whether the response adds the scheduling gate.
func gatedByPatch(t *testing.T, resp admission.Response) bool {
	t.Helper()
	for _, p := range resp.Patches {
		if !strings.HasPrefix(p.Path, "/spec/schedulingGates") {
			continue
		}
		raw, err := json.Marshal(p.Value)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), inject.SchedulingGate) {
			return true
		}
	}
	return false
}

// The namespace label reaches Mutate through the handler's lookup, which is made
// only when it decides; a failed lookup never denies the pod, it warns.
func TestHandleNamespaceGate(t *testing.T) {
	gatedNS := map[string]string{inject.NamespaceLabelGate: "true"}
	service := map[string]string{"entrypoint.io/dependency-service": "mariadb"}
	tests := []struct {
		name        string
		annotations map[string]string
		namespaces  *fakeNamespaces
		config      func(*inject.Config)
		looksUp     bool
		gated       bool
		warning     string // a substring of the only warning, or "" for none
	}{
		{name: "gated namespace", annotations: service, namespaces: &fakeNamespaces{labels: gatedNS}, looksUp: true, gated: true},
		{name: "namespace label false", annotations: service, namespaces: &fakeNamespaces{labels: map[string]string{inject.NamespaceLabelGate: "false"}}, looksUp: true},
		{name: "plain namespace", annotations: service, namespaces: &fakeNamespaces{}, looksUp: true},
		{name: "pod opts out", annotations: map[string]string{"entrypoint.io/gate": "false", "entrypoint.io/dependency-service": "mariadb"},
			namespaces: &fakeNamespaces{labels: gatedNS}},
		{name: "pod opts in", annotations: map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-service": "mariadb"},
			namespaces: &fakeNamespaces{err: errors.New("not asked")}, gated: true},
		{name: "all namespaces gated", annotations: service, namespaces: &fakeNamespaces{err: errors.New("not asked")},
			config: func(c *inject.Config) { c.GateAllNamespaces = true }, gated: true},
		{name: "pod without annotations", namespaces: &fakeNamespaces{labels: gatedNS}},
		{name: "lookup fails", annotations: service, namespaces: &fakeNamespaces{err: errors.New("namespaces is forbidden")}, looksUp: true,
			warning: "the labels of namespace openstack could not be read, so its entrypoint.io/gate label was not honoured: the pod is not gated"},
		{name: "lookup fails, nothing to gate", annotations: map[string]string{"entrypoint.io/dependency-tcp": "db:5432"},
			namespaces: &fakeNamespaces{err: errors.New("namespaces is forbidden")}, looksUp: true},
		{name: "gated namespace, controller off", annotations: service, namespaces: &fakeNamespaces{labels: gatedNS},
			config: func(c *inject.Config) { c.Controller = false }, looksUp: true,
			warning: "namespace label entrypoint.io/gate=true asks for gate mode, which is ignored: the webhook runs with --controller=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newInjector(t)
			h.Config.Controller = true
			if tt.config != nil {
				tt.config(&h.Config)
			}
			h.Namespaces = tt.namespaces
			resp := h.Handle(context.Background(), request(t, typicalPod(tt.annotations)))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if looked := len(tt.namespaces.asked) > 0; looked != tt.looksUp {
				t.Errorf("namespace looked up: %v, want %v", looked, tt.looksUp)
			}
			if got := gatedByPatch(t, resp); got != tt.gated {
				t.Errorf("gated %v, want %v; patches %+v", got, tt.gated, resp.Patches)
			}
			switch {
			case tt.warning == "" && len(resp.Warnings) > 0:
				t.Errorf("warnings %q, want none", resp.Warnings)
			case tt.warning != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one containing %q", resp.Warnings, tt.warning)
			}
		})
	}
}

// With the controller off, the gate annotation is denied with a message that
// says why and how to turn it on.
func TestHandleGateWithoutController(t *testing.T) {
	h, _ := newInjector(t)
	resp := h.Handle(context.Background(), request(t, typicalPod(map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-service": "mariadb"})))
	if resp.Allowed {
		t.Fatal("allowed a gated pod without the controller")
	}
	for _, want := range []string{"entrypoint.io/gate", "--controller=false", "never be scheduled", "controller.enabled"} {
		if !strings.Contains(resp.Result.Message, want) {
			t.Errorf("denial %q lacks %q", resp.Result.Message, want)
		}
	}
}

// The Warn hook's warnings reach the response, bounded in number and length and
// cleaned for an HTTP header; it sees the mutated pod; its panic or its silence
// costs the warnings, not the pod.
func TestHandleWarnHook(t *testing.T) {
	long := strings.Repeat("w", 1<<20)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name string
		hook func(context.Context, *corev1.Pod) []string
		want []string
	}{
		{name: "one warning", hook: func(_ context.Context, pod *corev1.Pod) []string {
			return []string{"pod waits for service mariadb, whose pods wait for this pod's Deployment (a cycle); managed=" + pod.Labels[inject.LabelManaged]}
		}, want: []string{"pod waits for service mariadb, whose pods wait for this pod's Deployment (a cycle); managed=true"}},
		{name: "none", hook: func(context.Context, *corev1.Pod) []string { return nil }},
		{name: "many and long", hook: func(context.Context, *corev1.Pod) []string {
			return []string{"a\nb\x00c", "", long, "third", "fourth", "fifth"}
		}, want: []string{"a b c", strings.Repeat("w", 253) + "...", "third", "... and 2 more warnings"}},
		{name: "invalid UTF-8", hook: func(context.Context, *corev1.Pod) []string { return []string{"bad \xff byte"} },
			want: []string{"bad   byte"}},
		{name: "panics", hook: func(context.Context, *corev1.Pod) []string { panic("boom") }},
		{name: "never answers", hook: func(context.Context, *corev1.Pod) []string { <-release; return []string{"late"} }},
		{name: "answers when its context ends", hook: func(ctx context.Context, _ *corev1.Pod) []string { <-ctx.Done(); return []string{"late"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newInjector(t)
			h.Warn = tt.hook
			resp := h.Handle(context.Background(), request(t, typicalPod(typicalAnnotations)))
			if !resp.Allowed || len(resp.Patches) == 0 {
				t.Fatalf("not injected: %+v", resp.Result)
			}
			if strings.Join(resp.Warnings, "|") != strings.Join(tt.want, "|") {
				t.Errorf("warnings %q, want %q", resp.Warnings, tt.want)
			}
		})
	}
}

// The hook is not asked about pods that are not injected.
func TestHandleWarnHookOnlyForInjectedPods(t *testing.T) {
	h, _ := newInjector(t)
	asked := 0
	h.Warn = func(context.Context, *corev1.Pod) []string { asked++; return []string{"x"} }
	for _, annotations := range []map[string]string{nil, {"entrypoint.io/inject": "false"}, {"entrypoint.io/dependency-service": "a,,b"}} {
		resp := h.Handle(context.Background(), request(t, typicalPod(annotations)))
		if len(resp.Warnings) > 0 {
			t.Errorf("warnings %q for a pod not injected", resp.Warnings)
		}
	}
	if asked != 0 {
		t.Errorf("the hook was asked %d times", asked)
	}
}
