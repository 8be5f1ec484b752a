package kube_test

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// obj decodes a JSON object as the API server would hand it over.
func obj(t *testing.T, js string) []*unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(js), &u.Object); err != nil {
		t.Fatalf("bad test object %s: %v", js, err)
	}
	return []*unstructured.Unstructured{u}
}

// readinessCase is one object and what the rule must say of it: "" for ready,
// else a reason it must contain.
type readinessCase struct {
	name, object, want string
}

func checkReadiness(t *testing.T, tests []readinessCase, rule func([]*unstructured.Unstructured) (ready bool, reason string)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objects []*unstructured.Unstructured
			if tt.object != "" {
				objects = obj(t, tt.object)
			}
			ready, reason := rule(objects)
			switch {
			case tt.want == "" && !ready:
				t.Errorf("not ready (%q), want ready", reason)
			case tt.want != "" && ready:
				t.Errorf("ready, want waiting with %q", tt.want)
			case tt.want != "" && !strings.Contains(reason, tt.want):
				t.Errorf("reason %q, want it to contain %q", reason, tt.want)
			}
		})
	}
}

// The rules of kubectl rollout status, case by case (k8s.io/kubectl
// pkg/polymorphichelpers/rollout_status.go), and what differs: a Deployment past
// its deadline keeps waiting, and OnDelete workloads are judged by readiness.
func TestRolloutReadiness(t *testing.T) {
	rule := func(kind string) func([]*unstructured.Unstructured) (bool, string) {
		return func(o []*unstructured.Unstructured) (bool, string) {
			st := kube.RolloutReadiness(o, kind)
			return st.Ready, st.Reason
		}
	}
	t.Run("deployment", func(t *testing.T) {
		checkReadiness(t, []readinessCase{
			{"absent", "", "not found"},
			{"spec not observed", `{"metadata":{"generation":3},"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":3}}`,
				"spec update not observed yet (generation 3, observed 2)"},
			{"no status yet", `{"metadata":{"generation":1},"spec":{"replicas":1}}`, "spec update not observed yet (generation 1, observed 0)"},
			{"updating", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":4,"updatedReplicas":1,"availableReplicas":3}}`,
				"1 of 3 replicas updated"},
			{"old pending termination", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":4,"updatedReplicas":3,"availableReplicas":3}}`,
				"1 old replicas pending termination"},
			{"updated not available", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":2}}`,
				"2 of 3 updated replicas available"},
			{"deadline exceeded", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":3,
				"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet \"api-1\" has timed out progressing."}]}}`,
				`exceeded its progress deadline: ReplicaSet "api-1" has timed out progressing.`},
			{"complete", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":3}}`, ""},
			{"observed ahead", `{"metadata":{"generation":2},"spec":{"replicas":1},"status":{"observedGeneration":3,"replicas":1,"updatedReplicas":1,"availableReplicas":1}}`, ""},
			{"scaled to zero", `{"metadata":{"generation":4},"spec":{"replicas":0},"status":{"observedGeneration":4}}`, ""},
			{"scaling down", `{"metadata":{"generation":4},"spec":{"replicas":0},"status":{"observedGeneration":4,"replicas":1}}`, "1 old replicas pending termination"},
		}, rule(spec.WorkloadDeployment))
	})
	t.Run("statefulset", func(t *testing.T) {
		checkReadiness(t, []readinessCase{
			{"absent", "", "not found"},
			{"observed 0", `{"metadata":{"generation":0},"spec":{"replicas":0},"status":{"observedGeneration":0}}`, "spec update not observed yet"},
			{"spec not observed", `{"metadata":{"generation":2},"spec":{"replicas":1},"status":{"observedGeneration":1,"readyReplicas":1}}`,
				"(generation 2, observed 1)"},
			{"not ready", `{"metadata":{"generation":1},"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}}},
				"status":{"observedGeneration":1,"readyReplicas":1,"updatedReplicas":3}}`, "1 of 3 replicas ready"},
			{"partition 0 not updated", `{"metadata":{"generation":2},"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}}},
				"status":{"observedGeneration":2,"readyReplicas":3,"updatedReplicas":1}}`, "1 of 3 replicas updated (partition 0)"},
			{"partition 2 updated above it", `{"metadata":{"generation":2},"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}},
				"status":{"observedGeneration":2,"readyReplicas":3,"updatedReplicas":1,"currentRevision":"db-1","updateRevision":"db-2"}}`, ""},
			{"partition 1 one missing", `{"metadata":{"generation":2},"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}},
				"status":{"observedGeneration":2,"readyReplicas":3,"updatedReplicas":1}}`, "1 of 2 replicas updated (partition 1)"},
			{"partition above replicas", `{"metadata":{"generation":2},"spec":{"replicas":2,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":5}}},
				"status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":0}}`, ""},
			{"rolling without partition, revisions differ", `{"metadata":{"generation":2},"spec":{"replicas":2,"updateStrategy":{"type":"RollingUpdate"}},
				"status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":1,"currentRevision":"db-1","updateRevision":"db-2"}}`,
				"1 replicas at revision db-2, rolling update not complete"},
			{"rolling without partition, done", `{"metadata":{"generation":2},"spec":{"replicas":2,"updateStrategy":{"type":"RollingUpdate"}},
				"status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":2,"currentRevision":"db-2","updateRevision":"db-2"}}`, ""},
			{"OnDelete ready with old pods", `{"metadata":{"generation":2},"spec":{"replicas":2,"updateStrategy":{"type":"OnDelete"}},
				"status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":0,"currentRevision":"db-1","updateRevision":"db-2"}}`, ""},
			{"OnDelete not ready", `{"metadata":{"generation":2},"spec":{"replicas":2,"updateStrategy":{"type":"OnDelete"}},
				"status":{"observedGeneration":2,"readyReplicas":1}}`, "1 of 2 replicas ready"},
		}, rule(spec.WorkloadStatefulSet))
	})
	t.Run("daemonset", func(t *testing.T) {
		checkReadiness(t, []readinessCase{
			{"absent", "", "not found"},
			{"spec not observed", `{"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"RollingUpdate"}},"status":{"observedGeneration":1}}`,
				"spec update not observed yet (generation 2, observed 1)"},
			{"updating", `{"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"RollingUpdate"}},
				"status":{"observedGeneration":2,"desiredNumberScheduled":3,"updatedNumberScheduled":1,"numberAvailable":3}}`, "1 of 3 pods updated"},
			{"updated not available", `{"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"RollingUpdate"}},
				"status":{"observedGeneration":2,"desiredNumberScheduled":3,"updatedNumberScheduled":3,"numberAvailable":2}}`, "2 of 3 updated pods available"},
			{"complete", `{"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"RollingUpdate"}},
				"status":{"observedGeneration":2,"desiredNumberScheduled":3,"updatedNumberScheduled":3,"numberAvailable":3}}`, ""},
			{"no node to run on", `{"metadata":{"generation":1},"spec":{"updateStrategy":{"type":"RollingUpdate"}},
				"status":{"observedGeneration":1,"desiredNumberScheduled":0}}`, ""},
			{"OnDelete old pods available", `{"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"OnDelete"}},
				"status":{"observedGeneration":2,"desiredNumberScheduled":3,"updatedNumberScheduled":0,"numberAvailable":3}}`, ""},
			{"OnDelete not available", `{"metadata":{"generation":2},"spec":{"updateStrategy":{"type":"OnDelete"}},
				"status":{"observedGeneration":2,"desiredNumberScheduled":3,"numberAvailable":1}}`, "1 of 3 pods available"},
		}, rule(spec.WorkloadDaemonSet))
	})
}

func TestClaimReadiness(t *testing.T) {
	checkReadiness(t, []readinessCase{
		{"absent", "", "not found"},
		{"no status", `{"metadata":{"name":"data"}}`, "phase unset, not Bound"},
		{"pending", `{"status":{"phase":"Pending"}}`, "phase Pending, not Bound"},
		{"lost", `{"status":{"phase":"Lost"}}`, "phase Lost, not Bound"},
		{"bound", `{"status":{"phase":"Bound"}}`, ""},
	}, func(o []*unstructured.Unstructured) (bool, string) {
		st := kube.ClaimReadiness(o)
		return st.Ready, st.Reason
	})
}

func TestKeyReadiness(t *testing.T) {
	for _, tt := range []struct {
		readinessCase
		key string
	}{
		{readinessCase{"absent", "", "not found"}, ""},
		{readinessCase{"absent with key", "", "not found"}, "region"},
		{readinessCase{"exists, no key asked", `{"metadata":{"name":"s"}}`, ""}, ""},
		{readinessCase{"key in data", `{"data":{"region":"eu"}}`, ""}, "region"},
		{readinessCase{"key with empty value", `{"data":{"region":""}}`, ""}, "region"},
		{readinessCase{"key in binaryData", `{"binaryData":{"region":"ZXU="}}`, ""}, "region"},
		{readinessCase{"other keys", `{"data":{"zone":"a"},"binaryData":{"x":"eA=="}}`, "no key region"}, "region"},
		{readinessCase{"no data", `{"metadata":{"name":"s"}}`, "no key region"}, "region"},
	} {
		checkReadiness(t, []readinessCase{tt.readinessCase}, func(o []*unstructured.Unstructured) (bool, string) {
			st := kube.KeyReadiness(o, tt.key)
			return st.Ready, st.Reason
		})
	}
}

// KeysOnly keeps what KeyReadiness reads and nothing of the values, the
// last-applied copy included.
func TestKeysOnlyDropsValues(t *testing.T) {
	o := obj(t, `{"kind":"Secret","metadata":{"name":"db","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"c2VjcmV0\"}}","keep":"me"},
		"managedFields":[{"manager":"kubectl"}]},"data":{"password":"c2VjcmV0"},"stringData":{"user":"admin"},"binaryData":{"blob":"c2VjcmV0"}}`)[0]
	kube.KeysOnly(o)
	raw, err := json.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"c2VjcmV0", "admin", "last-applied", "managedFields"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("%s still holds %q", raw, leak)
		}
	}
	for _, key := range []string{"password", "blob"} {
		if st := kube.KeyReadiness([]*unstructured.Unstructured{o}, key); !st.Ready {
			t.Errorf("key %s: %s after KeysOnly", key, st.Reason)
		}
	}
	if o.GetAnnotations()["keep"] != "me" {
		t.Errorf("other annotations dropped: %v", o.GetAnnotations())
	}
}

func TestCRDReadiness(t *testing.T) {
	checkReadiness(t, []readinessCase{
		{"absent", "", "not found"},
		{"no conditions", `{"metadata":{"name":"certificates.cert-manager.io"}}`, "not established yet"},
		{"names not accepted", `{"status":{"conditions":[{"type":"NamesAccepted","status":"False","reason":"KindConflict","message":"kind Certificate is already in use"},
			{"type":"Established","status":"False","reason":"NotAccepted","message":"not all names are accepted"}]}}`,
			"not established: NotAccepted: not all names are accepted"},
		{"established", `{"status":{"conditions":[{"type":"Established","status":"True"}]}}`, ""},
	}, func(o []*unstructured.Unstructured) (bool, string) {
		st := kube.CRDReadiness(o)
		return st.Ready, st.Reason
	})

	services := func(t *testing.T, list ...string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, s := range list {
			out = append(out, obj(t, s)...)
		}
		return out
	}
	available := `{"metadata":{"name":"v1.cert-manager.io"},"spec":{"group":"cert-manager.io","version":"v1"},"status":{"conditions":[{"type":"Available","status":"True"}]}}`
	down := `{"metadata":{"name":"v1beta1.cert-manager.io"},"spec":{"group":"cert-manager.io","version":"v1beta1"},
		"status":{"conditions":[{"type":"Available","status":"False","reason":"FailedDiscoveryCheck","message":"no response"}]}}`
	other := `{"metadata":{"name":"v1.metrics.k8s.io"},"spec":{"group":"metrics.k8s.io"},"status":{"conditions":[{"type":"Available","status":"False"}]}}`
	fresh := `{"metadata":{"name":"v1alpha1.cert-manager.io"},"spec":{"group":"cert-manager.io"}}`
	for _, tt := range []struct {
		name string
		list []string
		want string
	}{
		{"none of the group", []string{other}, ""},
		{"available", []string{available, other}, ""},
		{"one down", []string{available, down}, "apiservice v1beta1.cert-manager.io not available: FailedDiscoveryCheck: no response"},
		{"no status yet", []string{fresh}, "apiservice v1alpha1.cert-manager.io not available yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := kube.APIServicesReadiness(services(t, tt.list...), "cert-manager.io")
			if st.Ready != (tt.want == "") || !strings.Contains(st.Reason, tt.want) {
				t.Errorf("got %+v, want reason %q", st, tt.want)
			}
		})
	}
	if g := kube.CRDGroup("certificates.cert-manager.io"); g != "cert-manager.io" {
		t.Errorf("CRDGroup = %q", g)
	}
}

// The Service rule counts distinct ready endpoints across slices: by targetRef
// (a dual-stack pod is in two slices), else by addresses.
func TestServiceReadinessCountsDistinctEndpoints(t *testing.T) {
	slice := func(eps string) *unstructured.Unstructured {
		return obj(t, `{"kind":"EndpointSlice","endpoints":[`+eps+`]}`)[0]
	}
	pod := func(name, ip string, ready bool) string {
		r := "true"
		if !ready {
			r = "false"
		}
		return `{"addresses":["` + ip + `"],"conditions":{"ready":` + r + `},"targetRef":{"kind":"Pod","namespace":"ns","name":"` + name + `"}}`
	}
	for _, tc := range []struct {
		name     string
		slices   []*unstructured.Unstructured
		minReady int
		want     string // "" for ready
	}{
		{"no slices", nil, 0, "no endpoints"},
		{"one ready, default rule", []*unstructured.Unstructured{slice(pod("a", "10.0.0.1", true))}, 0, ""},
		{"one ready, #1", []*unstructured.Unstructured{slice(pod("a", "10.0.0.1", true))}, 1, ""},
		{"none ready, default rule", []*unstructured.Unstructured{slice(pod("a", "10.0.0.1", false))}, 0, "0 of 1 endpoints ready"},
		{"none at all, #3", nil, 3, "0 of 3 required endpoints ready"},
		{"one of three", []*unstructured.Unstructured{slice(pod("a", "10.0.0.1", true) + "," + pod("b", "10.0.0.2", false))}, 3,
			"1 of 3 required endpoints ready"},
		{"three across slices", []*unstructured.Unstructured{
			slice(pod("a", "10.0.0.1", true)), slice(pod("b", "10.0.0.2", true) + "," + pod("c", "10.0.0.3", true))}, 3, ""},
		{"dual-stack pod counts once", []*unstructured.Unstructured{
			slice(pod("a", "10.0.0.1", true) + "," + pod("b", "10.0.0.2", true)),
			slice(pod("a", "fd00::1", true) + "," + pod("b", "fd00::2", true))}, 3, "2 of 3 required endpoints ready"},
		{"same endpoint in two slices counts once", []*unstructured.Unstructured{
			slice(`{"addresses":["10.0.0.1"]}`), slice(`{"addresses":["10.0.0.1"]},{"addresses":["10.0.0.2"]}`)}, 2, ""},
		{"same address twice, no targetRef", []*unstructured.Unstructured{
			slice(`{"addresses":["10.0.0.1"]}`), slice(`{"addresses":["10.0.0.1"]}`)}, 2, "1 of 2 required endpoints ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := kube.ServiceReadiness(tc.slices, tc.minReady)
			switch {
			case tc.want == "" && !st.Ready:
				t.Errorf("not ready: %q", st.Reason)
			case tc.want != "" && st.Ready:
				t.Errorf("ready, want %q", tc.want)
			case tc.want != "" && st.Reason != tc.want:
				t.Errorf("reason %q, want %q", st.Reason, tc.want)
			}
		})
	}
}
