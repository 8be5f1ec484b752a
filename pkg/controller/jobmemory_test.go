package controller

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
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

// succeededIn is a Job of namespace ns that succeeded, its uid its name.
func succeededIn(ns, name string) *unstructured.Unstructured {
	u := jobObj(name, name, nil, succeededAt(t0))
	u.SetNamespace(ns)
	return u
}

// observeMany has m observe n Jobs of namespace ns that succeeded, named
// prefix-0 to prefix-<n-1>.
func observeMany(m *jobMemory, ns, prefix string, n int) {
	for i := range n {
		m.observe(succeededIn(ns, prefix+"-"+strconv.Itoa(i)))
	}
}

// remembered lists the names m remembers in namespace ns, first remembered first.
func rememberedIn(m *jobMemory, ns string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	if jobs := m.namespaces[ns]; jobs != nil {
		for e := jobs.order.Front(); e != nil; e = e.Next() {
			names = append(names, e.Value.(*remembered).key.Name)
		}
	}
	return names
}

// checkJobMemory checks what m's bookkeeping must keep true: every completion
// listed once, by its name and in its namespace's order, no namespace past its
// bound nor empty, all within the bound, and the heap in order.
func checkJobMemory(t *testing.T, m *jobMemory) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	listed := 0
	for ns, jobs := range m.namespaces {
		if n := jobs.order.Len(); n == 0 || n > m.perNamespace {
			t.Errorf("namespace %s holds %d, want 1 to %d", ns, n, m.perNamespace)
		}
		if jobs.index < 0 || jobs.index >= len(m.fullest) || m.fullest[jobs.index] != jobs {
			t.Errorf("namespace %s is not at its index %d in the heap", ns, jobs.index)
		}
		last := uint64(0)
		for e := jobs.order.Front(); e != nil; e = e.Next() {
			r := e.Value.(*remembered)
			if r.key.Namespace != ns || m.byName[r.key] != e || r.seq <= last {
				t.Errorf("completion %s (seq %d) is out of place in namespace %s", r.key, r.seq, ns)
			}
			last = r.seq
			listed++
		}
	}
	if listed != m.size || len(m.byName) != m.size || len(m.fullest) != len(m.namespaces) || m.size > m.max {
		t.Errorf("%d listed, %d by name, size %d (bound %d), %d namespaces in the heap of %d", listed, len(m.byName), m.size, m.max, len(m.fullest), len(m.namespaces))
	}
	for i := 1; i < len(m.fullest); i++ {
		if m.fullest.Less(i, (i-1)/2) {
			t.Errorf("the heap is out of order at %d", i)
		}
	}
}

// One namespace cannot make the memory forget the Jobs of another: it is bounded
// on its own, and when all are full the namespace holding the most forgets.
func TestJobMemoryIsFairBetweenNamespaces(t *testing.T) {
	const victimJobs = 50
	names := func(prefix string, from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, prefix+"-"+strconv.Itoa(i))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		// flood fills m around the victim's Jobs (victim-0 ... victim-49): before
		// them, after them, or both.
		before, after func(m *jobMemory)
		size          int
		// attackers are the namespaces of the flood, with what each still remembers.
		attackers map[string][]string
	}{
		{
			name:      "20,000 Jobs of one namespace after the victim's",
			after:     func(m *jobMemory) { observeMany(m, "attacker", "job", 20_000) },
			size:      victimJobs + MaxRememberedJobsPerNamespace,
			attackers: map[string][]string{"attacker": names("job", 20_000-MaxRememberedJobsPerNamespace, 20_000)},
		},
		{
			name:      "20,000 Jobs of one namespace before the victim's",
			before:    func(m *jobMemory) { observeMany(m, "attacker", "job", 20_000) },
			size:      victimJobs + MaxRememberedJobsPerNamespace,
			attackers: map[string][]string{"attacker": names("job", 20_000-MaxRememberedJobsPerNamespace, 20_000)},
		},
		{
			// 20 namespaces of 1,000 Jobs each, 10 before and 10 after the victim's:
			// the bound of all is reached and the fullest forget.
			name: "20,000 Jobs of 20 namespaces around the victim's",
			before: func(m *jobMemory) {
				for i := range 10 {
					observeMany(m, "attacker-"+strconv.Itoa(i), "job", 1000)
				}
			},
			after: func(m *jobMemory) {
				for i := 10; i < 20; i++ {
					observeMany(m, "attacker-"+strconv.Itoa(i), "job", 1000)
				}
			},
			size: MaxRememberedJobs,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newJobMemory(MaxRememberedJobs, time.Now)
			if m.perNamespace != MaxRememberedJobsPerNamespace {
				t.Fatalf("a namespace may hold %d, want %d", m.perNamespace, MaxRememberedJobsPerNamespace)
			}
			if tc.before != nil {
				tc.before(m)
			}
			observeMany(m, "victim", "victim", victimJobs)
			if tc.after != nil {
				tc.after(m)
			}
			checkJobMemory(t, m)
			if got := rememberedIn(m, "victim"); !slices.Equal(got, names("victim", 0, victimJobs)) {
				t.Errorf("the victim's namespace remembers %d of its %d Jobs", len(got), victimJobs)
			}
			for i := range victimJobs {
				if _, ok := m.lookup("victim", "victim-"+strconv.Itoa(i)); !ok {
					t.Errorf("victim-%d is forgotten", i)
				}
			}
			if m.len() != tc.size {
				t.Errorf("%d remembered, want %d", m.len(), tc.size)
			}
			for ns, want := range tc.attackers {
				if got := rememberedIn(m, ns); !slices.Equal(got, want) {
					t.Errorf("namespace %s remembers %d Jobs, want its last %d", ns, len(got), len(want))
				}
			}
		})
	}
}

// The bounds at small scale: a namespace past its own bound forgets its own first
// remembered; past the bound of all, the namespace holding the most does, and of
// those holding as many, the one whose first remembered is oldest.
func TestJobMemoryBounds(t *testing.T) {
	type job struct{ ns, name string }
	for _, tc := range []struct {
		name              string
		bound, namespaces int // the bound of all, of one namespace
		observe           []job
		want              map[string][]string // remembered names by namespace, first remembered first
	}{
		{
			name: "a namespace at its bound forgets its own", bound: 10, namespaces: 3,
			observe: []job{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"a", "3"}, {"a", "4"}, {"a", "5"}},
			want:    map[string][]string{"a": {"3", "4", "5"}, "b": {"1"}},
		},
		{
			name: "past the bound of all, the namespace holding the most forgets", bound: 5, namespaces: 5,
			observe: []job{{"a", "1"}, {"a", "2"}, {"a", "3"}, {"b", "1"}, {"b", "2"}, {"c", "1"}},
			want:    map[string][]string{"a": {"2", "3"}, "b": {"1", "2"}, "c": {"1"}},
		},
		{
			name: "of namespaces holding as many, the one remembered first forgets", bound: 5, namespaces: 5,
			observe: []job{
				{"a", "1"}, {"a", "2"}, {"a", "3"}, {"b", "1"}, {"b", "2"}, {"c", "1"}, // a forgets 1: a 2, b 2, c 1
				{"c", "2"}, // a, b and c hold 2: a's 2 is the oldest
				{"d", "1"}, // b and c hold 2: b's 1 is older than c's
			},
			want: map[string][]string{"a": {"3"}, "b": {"2"}, "c": {"1", "2"}, "d": {"1"}},
		},
		{
			name: "the newcomer's namespace may be the one to forget", bound: 4, namespaces: 4,
			observe: []job{{"a", "1"}, {"b", "1"}, {"b", "2"}, {"c", "1"}, {"b", "3"}},
			want:    map[string][]string{"a": {"1"}, "b": {"2", "3"}, "c": {"1"}},
		},
		{
			name: "a namespace of one Job at the bound of one", bound: 3, namespaces: 1,
			observe: []job{{"a", "1"}, {"a", "2"}, {"b", "1"}},
			want:    map[string][]string{"a": {"2"}, "b": {"1"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newJobMemory(tc.bound, time.Now)
			m.perNamespace = tc.namespaces
			for _, j := range tc.observe {
				m.observe(succeededIn(j.ns, j.name))
				checkJobMemory(t, m)
			}
			got := map[string][]string{}
			for ns := range m.namespaces {
				got[ns] = rememberedIn(m, ns)
			}
			if !maps.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("remembered %v, want %v", got, tc.want)
			}
		})
	}
}

// A Job of a name remembered, seen again with another uid, replaces the entry:
// it is remembered once, as the last remembered.
func TestJobMemoryReplacesAReobservedJob(t *testing.T) {
	m := newJobMemory(2, time.Now)
	m.observe(succeededIn("ns", "x"))
	m.observe(succeededIn("ns", "y"))
	again := jobObj("x", "x-2", nil, succeededAt(t0.Add(time.Hour)))
	m.observe(again)
	checkJobMemory(t, m)
	if c, ok := m.lookup("ns", "x"); !ok || c.uid != "x-2" || !c.at.Equal(t0.Add(time.Hour)) || m.len() != 2 {
		t.Fatalf("x remembered as %+v (%v), %d remembered; want the new Job's completion, 2 remembered", c, ok, m.len())
	}
	m.observe(succeededIn("ns", "z")) // past the bound: y is now the first remembered
	checkJobMemory(t, m)
	if got := rememberedIn(m, "ns"); !slices.Equal(got, []string{"x", "z"}) {
		t.Errorf("remembered %v, want [x z]", got)
	}
}

// A long random mix of namespaces, names, replacements and Jobs still running
// keeps the bookkeeping right.
func TestJobMemoryRandomMix(t *testing.T) {
	m := newJobMemory(50, time.Now)
	m.perNamespace = 20
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20_000 {
		ns := "ns-" + strconv.Itoa(int(rng.ExpFloat64()*2)%12) // a few namespaces far busier than the rest
		name := "job-" + strconv.Itoa(rng.IntN(40))
		status := succeededAt(t0)
		if rng.IntN(10) == 0 {
			status = running
		}
		job := jobObj(name, strconv.Itoa(rng.IntN(3)), nil, status)
		job.SetNamespace(ns)
		m.observe(job)
		if i%97 == 0 {
			checkJobMemory(t, m)
		}
	}
	checkJobMemory(t, m)
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
	in := decisionInput{verdicts: make([]verdict, 2), deps: &spec.Spec{Sockets: []string{"/run/x.sock"}}}
	got := readyMessage(in, []string{"job ns/db-init succeeded at 2026-12-01T05:00:00Z (deleted since)"})
	want := "all 2 dependencies that need no node are ready; job ns/db-init succeeded at 2026-12-01T05:00:00Z (deleted since); the resolver in the pod checks socket /run/x.sock"
	if got != want {
		t.Errorf("readyMessage:\n got %q\nwant %q", got, want)
	}
}
