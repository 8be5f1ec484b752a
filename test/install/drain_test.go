package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The webhook Deployment can be restarted one pod at a time with no moment of
// fewer ready replicas, and a stopping pod keeps serving until the API server has
// stopped calling it: through a Service, a new pod first (maxSurge 1,
// maxUnavailable 0); a preStop sleep of webhook.drainSeconds; a grace period that
// covers the sleep and the webhook's own drain (15 s); a PodDisruptionBudget that
// lets one of two replicas go. On the host network the old pod must go first.
func TestDeploymentDrains(t *testing.T) {
	for _, tc := range []struct {
		values                 string
		maxSurge, maxUnavail   int64
		drainSeconds, minGrace int64
		wantPDBMinAvailable    int64
	}{
		{"default", 1, 0, 5, 5 + 15, 1},
		{"self-signed", 1, 0, 5, 5 + 15, 1},
		{"single-node", 0, 1, 5, 5 + 15, -1},
	} {
		t.Run(tc.values, func(t *testing.T) {
			objs := parseObjects(t, mustRender(t, releaseNamespace, readValues(t, tc.values)).Manifest)
			deploy := deployment(objs, "-webhook")
			surge, _, _ := nestedNumber(deploy.Object, "spec", "strategy", "rollingUpdate", "maxSurge")
			unavail, _, _ := nestedNumber(deploy.Object, "spec", "strategy", "rollingUpdate", "maxUnavailable")
			if surge != tc.maxSurge || unavail != tc.maxUnavail {
				t.Errorf("rolling update maxSurge %d maxUnavailable %d, want %d and %d", surge, unavail, tc.maxSurge, tc.maxUnavail)
			}
			containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
			sleep, found, _ := nestedNumber(containers[0].(map[string]any), "lifecycle", "preStop", "sleep", "seconds")
			if !found || sleep != tc.drainSeconds {
				t.Errorf("preStop sleep %d (found %v), want %d seconds", sleep, found, tc.drainSeconds)
			}
			grace, _, _ := nestedNumber(deploy.Object, "spec", "template", "spec", "terminationGracePeriodSeconds")
			if grace <= tc.minGrace {
				t.Errorf("terminationGracePeriodSeconds %d, want more than %d (preStop sleep and drain)", grace, tc.minGrace)
			}
			if tc.wantPDBMinAvailable < 0 {
				return
			}
			replicas, _, _ := nestedNumber(deploy.Object, "spec", "replicas")
			minAvailable, _, _ := nestedNumber(find(t, objs, "PodDisruptionBudget").Object, "spec", "minAvailable")
			if minAvailable != tc.wantPDBMinAvailable || replicas-minAvailable < 1 {
				t.Errorf("PodDisruptionBudget minAvailable %d with %d replicas: want one replica free to go", minAvailable, replicas)
			}
		})
	}
	noDrain := parseObjects(t, mustRender(t, releaseNamespace, map[string]any{"webhook": map[string]any{"drainSeconds": 0}}).Manifest)
	containers, _, _ := unstructured.NestedSlice(deployment(noDrain, "-webhook").Object, "spec", "template", "spec", "containers")
	if _, found, _ := unstructured.NestedMap(containers[0].(map[string]any), "lifecycle"); found {
		t.Error("webhook.drainSeconds=0 still renders a preStop hook")
	}
}

// nestedNumber reads a number whichever way the YAML decoder typed it.
func nestedNumber(obj map[string]any, fields ...string) (int64, bool, error) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, fields...)
	switch n := v.(type) {
	case int64:
		return n, found, err
	case float64:
		return int64(n), found, err
	}
	return 0, false, err
}
