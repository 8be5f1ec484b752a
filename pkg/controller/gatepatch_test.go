package controller

import (
	"encoding/json"
	"slices"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The exported patch, applied to the pod as stored: it takes away our gate and
// nothing else, and refuses a pod that is not the one read.
func TestGateRemovalPatch(t *testing.T) {
	ours := corev1.PodSchedulingGate{Name: inject.SchedulingGate}
	other := corev1.PodSchedulingGate{Name: "example.com/other"}
	pod := func(uid string, gates ...corev1.PodSchedulingGate) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", UID: types.UID("uid-" + uid)}, Spec: corev1.PodSpec{SchedulingGates: gates}}
	}
	cases := []struct {
		name      string
		read      *corev1.Pod // what the controller read
		stored    *corev1.Pod // what the API server holds when the patch arrives
		wantGates []string    // after the patch; nil with wantFail
		wantFail  bool
	}{
		{"our gate only", pod("1", ours), pod("1", ours), []string{}, false},
		{"another controller's gate stays", pod("1", other, ours), pod("1", other, ours), []string{other.Name}, false},
		{"the other gate was removed since the read", pod("1", other, ours), pod("1", ours), nil, true},
		{"our gate was removed since the read", pod("1", ours), pod("1"), nil, true},
		{"the pod was replaced under the same name", pod("1", ours), pod("2", ours), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := GateRemovalPatch(tc.read)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := jsonpatch.DecodePatch(patch)
			if err != nil {
				t.Fatalf("the patch is no JSON patch: %v\n%s", err, patch)
			}
			stored, err := json.Marshal(tc.stored)
			if err != nil {
				t.Fatal(err)
			}
			out, err := decoded.Apply(stored)
			if tc.wantFail {
				if err == nil {
					t.Fatalf("the patch applied to a pod that changed since the read; got %s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("applying the patch: %v\n%s", err, patch)
			}
			var got corev1.Pod
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, g := range got.Spec.SchedulingGates {
				names = append(names, g.Name)
			}
			if !slices.Equal(names, tc.wantGates) || got.Name != "app" || got.UID != tc.stored.UID {
				t.Errorf("after the patch: %s/%s gates %v; want gates %v and the pod otherwise unchanged", got.Name, got.UID, names, tc.wantGates)
			}
		})
	}
}
