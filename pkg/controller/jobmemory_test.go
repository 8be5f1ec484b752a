package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)

// jobObj is a Job as the informer holds it: metadata and status.
func jobObj(name, uid string, lbls map[string]string, status map[string]any) *unstructured.Unstructured {
	u := obj("ns", name, lbls)
	u.SetUID(types.UID(uid))
	if status != nil {
		u.Object["status"] = status
	}
	return u
}

func succeededAt(at time.Time) map[string]any {
	return map[string]any{"succeeded": int64(1), "completionTime": at.Format(time.RFC3339),
		"conditions": []any{map[string]any{"type": "Complete", "status": "True", "lastTransitionTime": at.Format(time.RFC3339)}}}
}

var running = map[string]any{"active": int64(1)}

func TestJobMemoryObserve(t *testing.T) {
	release := map[string]string{"app.kubernetes.io/instance": "r1", "helm.sh/chart": "db-1.0.0", "component": "init"}
	type step struct {
		job *unstructured.Unstructured
		// then: the uid remembered under ns/db-init, "" for none.
		then string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		// at is the remembered completion's time after the last step.
		at time.Time
	}{
		{name: "running is not remembered", steps: []step{{jobObj("db-init", "a", nil, running), ""}}},
		{name: "succeeded, then deleted (the last state again)", at: t0, steps: []step{
			{jobObj("db-init", "a", nil, running), ""},
			{jobObj("db-init", "a", release, succeededAt(t0)), "a"},
			{jobObj("db-init", "a", release, succeededAt(t0)), "a"},
		}},
		{name: "deleted as soon as it succeeded: the deletion's final state", at: t0, steps: []step{
			{jobObj("db-init", "a", nil, succeededAt(t0)), "a"},
		}},
		{name: "a tombstone older than the completion keeps it", at: t0, steps: []step{
			{jobObj("db-init", "a", nil, succeededAt(t0)), "a"},
			{jobObj("db-init", "a", nil, running), "a"},
		}},
		{name: "a new Job of that name replaces it while it runs, and once it succeeded", at: t0.Add(time.Hour), steps: []step{
			{jobObj("db-init", "a", nil, succeededAt(t0)), "a"},
			{jobObj("db-init", "b", nil, running), ""},
			{jobObj("db-init", "b", nil, succeededAt(t0.Add(time.Hour))), "b"},
		}},
		{name: "a new Job deleted before it succeeded leaves nothing", steps: []step{
			{jobObj("db-init", "a", nil, succeededAt(t0)), "a"},
			{jobObj("db-init", "b", nil, map[string]any{"failed": int64(1)}), ""},
		}},
		{name: "Complete without succeeded, time from the condition", at: t0.Add(time.Minute), steps: []step{
			{jobObj("db-init", "a", nil, map[string]any{"conditions": []any{
				map[string]any{"type": "Complete", "status": "True", "lastTransitionTime": t0.Add(time.Minute).Format(time.RFC3339)}}}), "a"},
		}},
		{name: "succeeded without any time: when seen", at: t0.Add(2 * time.Hour), steps: []step{
			{jobObj("db-init", "a", nil, map[string]any{"succeeded": int64(1)}), "a"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newJobMemory(10, func() time.Time { return t0.Add(2 * time.Hour) })
			for i, s := range tc.steps {
				m.observe(s.job)
				c, ok := m.lookup("ns", "db-init")
				if got := string(c.uid); got != s.then || ok != (s.then != "") {
					t.Fatalf("after step %d: remembered %q (%v); want %q", i+1, got, ok, s.then)
				}
			}
			c, ok := m.lookup("ns", "db-init")
			if ok && !c.at.Equal(tc.at) {
				t.Errorf("completion time %s; want %s", c.at, tc.at)
			}
		})
	}

	m := newJobMemory(10, time.Now)
	m.observe(jobObj("db-init", "a", release, succeededAt(t0)))
	c, _ := m.lookup("ns", "db-init")
	if len(c.release) != 2 || c.release["app.kubernetes.io/instance"] != "r1" || c.release["helm.sh/chart"] != "db-1.0.0" {
		t.Errorf("release labels remembered: %v; want only instance and chart", c.release)
	}
	if _, ok := m.lookup("other", "db-init"); ok {
		t.Error("a Job of another namespace was found")
	}
}

func TestJobMemoryIsBounded(t *testing.T) {
	m := newJobMemory(3, time.Now)
	for _, name := range []string{"a", "b", "c"} {
		m.observe(jobObj(name, name, nil, succeededAt(t0)))
	}
	m.observe(jobObj("a", "a", nil, succeededAt(t0))) // seen again: does not move
	m.observe(jobObj("d", "d", nil, succeededAt(t0)))
	m.observe(jobObj("e", "e", nil, succeededAt(t0)))
	if n := m.len(); n != 3 {
		t.Fatalf("%d remembered; want the bound, 3", n)
	}
	for name, want := range map[string]bool{"a": false, "b": false, "c": true, "d": true, "e": true} {
		if _, ok := m.lookup("ns", name); ok != want {
			t.Errorf("job %s remembered: %v; want %v (the first remembered go first)", name, ok, want)
		}
	}
}

func TestJudgeRemembered(t *testing.T) {
	r1 := map[string]string{"app.kubernetes.io/instance": "keystone", "helm.sh/chart": "keystone-0.3.1"}
	osh := map[string]string{"release_group": "keystone", "application": "keystone", "component": "api"}
	created := t0.Add(time.Hour)
	grace := 30 * time.Second
	for _, tc := range []struct {
		name      string
		job, pod  map[string]string
		now       time.Time
		ready     bool
		reason    string
		recheck   time.Duration
		wantInMsg string
	}{
		{name: "same release", job: r1, pod: merged(r1, map[string]string{"pod-template-hash": "x"}), now: created.Add(time.Minute),
			ready: true, wantInMsg: "job ns/db-init succeeded at 2026-12-01T05:00:00Z (deleted since)"},
		{name: "openstack-helm's release_group", job: map[string]string{"release_group": "keystone"}, pod: osh, now: created.Add(time.Minute), ready: true},
		{name: "neither labelled: the name decides", now: created.Add(time.Minute), ready: true},
		{name: "an older chart version", job: merged(r1, map[string]string{"helm.sh/chart": "keystone-0.3.0"}), pod: r1, now: created.Add(time.Minute),
			reason: `of another release: helm.sh/chart is "keystone-0.3.0" on the job, "keystone-0.3.1" on this pod`},
		{name: "another instance", job: map[string]string{"app.kubernetes.io/instance": "old"}, pod: map[string]string{"app.kubernetes.io/instance": "new"},
			now: created.Add(time.Minute), reason: `app.kubernetes.io/instance is "old" on the job, "new" on this pod`},
		{name: "labelled Job, unlabelled pod", job: map[string]string{"release_group": "keystone"}, now: created.Add(time.Minute),
			reason: `release_group is "keystone" on the job, unset on this pod`},
		{name: "unlabelled Job, labelled pod", pod: r1, now: created.Add(time.Minute),
			reason: `app.kubernetes.io/instance is unset on the job, "keystone" on this pod`},
		{name: "another application version", job: merged(r1, map[string]string{"app.kubernetes.io/version": "1"}),
			pod: merged(r1, map[string]string{"app.kubernetes.io/version": "2"}), now: created.Add(time.Minute), reason: "app.kubernetes.io/version"},
		{name: "a young pod waits out the grace", job: r1, pod: r1, now: created.Add(10 * time.Second), recheck: 20 * time.Second,
			reason: "succeeded at 2026-12-01T05:00:00Z (deleted since); that counts from 2026-12-01T06:00:30Z (the pod's creation + 30s) unless a new job of that name appears first"},
		{name: "at the end of the grace", job: r1, pod: r1, now: created.Add(grace), ready: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := completion{key: types.NamespacedName{Namespace: "ns", Name: "db-init"}, uid: "a", release: releaseOf(tc.job), at: t0}
			v := judgeRemembered(c, tc.pod, created, tc.now, grace)
			if v.ready != tc.ready || v.recheck != tc.recheck || !strings.Contains(v.reason, tc.reason) || !strings.Contains(v.note, tc.wantInMsg) {
				t.Errorf("verdict %+v; want ready %v, recheck %s, reason containing %q, note containing %q", v, tc.ready, tc.recheck, tc.reason, tc.wantInMsg)
			}
			if !v.ready && v.reason == "" {
				t.Error("not ready without a reason")
			}
		})
	}
}

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestReadyMessageNamesRememberedJobs(t *testing.T) {
	got := readyMessage(2, []string{"socket /run/x.sock"}, []string{"job ns/db-init succeeded at 2026-12-01T05:00:00Z (deleted since)"})
	want := "all 2 dependencies that need no node are ready; job ns/db-init succeeded at 2026-12-01T05:00:00Z (deleted since); the resolver in the pod checks socket /run/x.sock"
	if got != want {
		t.Errorf("readyMessage:\n got %q\nwant %q", got, want)
	}
}
