package openstackhelm

import "testing"

func TestEveryChartDecodes(t *testing.T) {
	kinds := map[string]int{}
	withDeps := 0
	for _, chart := range Charts() {
		ws, err := Workloads(chart)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 0 {
			t.Errorf("chart %s has no workload", chart)
		}
		for _, w := range ws {
			kinds[w.Kind]++
			for _, c := range w.Pod.Spec.InitContainers {
				for _, e := range c.Env {
					if e.Name == "DEPENDENCY_SERVICE" {
						withDeps++
					}
				}
			}
		}
	}
	// What the rendered files hold (grep -c '^kind: X' testdata/*.yaml).
	want := map[string]int{"Deployment": 11, "StatefulSet": 3, "DaemonSet": 6, "Job": 39, "CronJob": 4, "Pod": 6}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d pod templates of kind %s, want %d", kinds[k], k, n)
		}
	}
	if withDeps < 40 {
		t.Errorf("only %d init containers carry DEPENDENCY_SERVICE", withDeps)
	}
}
