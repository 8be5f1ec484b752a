package controller

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestWaitingHeld(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	waiting := corev1.PodCondition{Type: ConditionType, Status: corev1.ConditionFalse, Reason: ReasonWaiting}
	ready := corev1.PodCondition{Type: ConditionType, Status: corev1.ConditionTrue, Reason: ReasonReady}
	for _, tc := range []struct {
		name    string
		current *corev1.PodCondition
		want    corev1.PodCondition
		gated   bool
		now     time.Time
		grace   time.Duration
		held    time.Duration
	}{
		{"gated, first Waiting, within the grace: held for the rest", nil, waiting, true, t0.Add(300 * time.Millisecond), time.Second, 700 * time.Millisecond},
		{"gated, first Waiting, grace over: written", nil, waiting, true, t0.Add(time.Second), time.Second, 0},
		{"gated, first Waiting, long over: written", nil, waiting, true, t0.Add(time.Hour), time.Second, 0},
		{"a Cycle is held alike", nil, corev1.PodCondition{Status: corev1.ConditionFalse, Reason: ReasonCycle}, true, t0, time.Second, time.Second},
		{"not gated: a resolver's wait is written at once", nil, waiting, false, t0, time.Second, 0},
		{"a condition already there: its change is written at once", &waiting, corev1.PodCondition{Status: corev1.ConditionFalse, Reason: ReasonWaiting, Message: "other"}, true, t0, time.Second, 0},
		{"Ready is never held", nil, ready, true, t0, time.Second, 0},
		{"no grace", nil, waiting, true, t0, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := waitingHeld(tc.current, tc.want, tc.gated, t0, tc.now, tc.grace); got != tc.held {
				t.Errorf("held %s; want %s", got, tc.held)
			}
		})
	}
}

func TestDeferredAfterRelease(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   corev1.ConditionStatus
		released bool
		want     bool
	}{
		{"Ready of a released pod: after the burst", corev1.ConditionTrue, true, true},
		{"Waiting again after the release: at once", corev1.ConditionFalse, true, false},
		{"Ready of a resolver-mode pod: at once", corev1.ConditionTrue, false, false},
		{"Waiting of a gated pod: at once (after its grace)", corev1.ConditionFalse, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deferredAfterRelease(corev1.PodCondition{Status: tc.status}, tc.released); got != tc.want {
				t.Errorf("deferred %v; want %v", got, tc.want)
			}
		})
	}
}

func TestDeferredConditionsTake(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pod := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }
	fill := func() *deferredConditions {
		d := newDeferredConditions()
		d.add(pod("c"), t0.Add(2*time.Second))
		d.add(pod("a"), t0)
		d.add(pod("b"), t0.Add(time.Second))
		d.add(pod("a"), t0.Add(3*time.Second)) // deferred again: keeps its first time
		return d
	}
	for _, tc := range []struct {
		name string
		n    int
		now  time.Time
		idle bool
		want []types.NamespacedName
		left int
	}{
		{"idle: oldest first, bounded", 2, t0.Add(5 * time.Second), true, []types.NamespacedName{pod("a"), pod("b")}, 1},
		{"idle: all", 10, t0.Add(5 * time.Second), true, []types.NamespacedName{pod("a"), pod("b"), pod("c")}, 0},
		{"busy: only those deferred too long", 10, t0.Add(31 * time.Second), false, []types.NamespacedName{pod("a"), pod("b")}, 1},
		{"busy, none too old: none", 10, t0.Add(5 * time.Second), false, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fill()
			got := d.take(tc.n, tc.now, tc.idle, 30*time.Second)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("took %v; want %v", got, tc.want)
			}
			if d.len() != tc.left {
				t.Errorf("%d left; want %d", d.len(), tc.left)
			}
		})
	}
	d := fill()
	d.remove(pod("a"))
	if got := d.take(10, t0, true, time.Minute); !reflect.DeepEqual(got, []types.NamespacedName{pod("b"), pod("c")}) {
		t.Errorf("after removing a: took %v", got)
	}
}

func TestReleaseLogCoalesces(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db := releaseReadyKey("a", []string{"service a/db"})
	for _, tc := range []struct {
		name string
		add  func(l *releaseLog)
		now  time.Time
		idle bool
		want []string // regarding: note, oldest group first
		left int
	}{
		{"one per namespace and dependencies, naming the first pods and counting the rest",
			func(l *releaseLog) {
				for i := range 200 {
					l.add(db, podRef{name: fmt.Sprintf("app-%d", i)}, t0)
				}
				l.add(releaseReadyKey("b", []string{"service a/db"}), podRef{name: "other"}, t0.Add(time.Second))
				l.add(releaseReadyKey("a", []string{"service a/db", "job a/migrate"}), podRef{name: "both"}, t0.Add(2*time.Second))
			}, t0.Add(3 * time.Second), true,
			[]string{
				"a/app-0 Normal DependenciesReady: released 200 pods waiting for service a/db (removed scheduling gate entrypoint.io/dependencies): app-0, app-1, app-2, app-3, app-4 and 195 more",
				"b/other Normal DependenciesReady: released 1 pod waiting for service a/db (removed scheduling gate entrypoint.io/dependencies): other",
				"a/both Normal DependenciesReady: released 1 pod waiting for service a/db; job a/migrate (removed scheduling gate entrypoint.io/dependencies): both",
			}, 0},
		{"optional releases: a Warning per what still blocked",
			func(l *releaseLog) {
				l.add(releaseOptionalKey("a", 5*time.Minute, "service a/db: no ready endpoints"), podRef{name: "x"}, t0)
				l.add(releaseOptionalKey("a", 5*time.Minute, "service a/db: no ready endpoints"), podRef{name: "y"}, t0)
				l.add(releaseReadyKey("a", nil), podRef{name: "z"}, t0.Add(time.Second))
			}, t0.Add(time.Second), true,
			[]string{
				"a/x Warning StartedWithoutDependencies: released 2 pods after 5m0s (entrypoint.io/optional-after) without service a/db: no ready endpoints (removed scheduling gate entrypoint.io/dependencies): x, y",
				"a/z Normal DependenciesReady: released 1 pod with no dependency that needs no node (removed scheduling gate entrypoint.io/dependencies): z",
			}, 0},
		{"busy: only the groups begun long ago",
			func(l *releaseLog) {
				l.add(db, podRef{name: "old"}, t0)
				l.add(releaseReadyKey("b", []string{"service b/db"}), podRef{name: "new"}, t0.Add(20*time.Second))
			}, t0.Add(30 * time.Second), false,
			[]string{"a/old Normal DependenciesReady: released 1 pod waiting for service a/db (removed scheduling gate entrypoint.io/dependencies): old"}, 1},
		{"control characters of a dependency's name escaped",
			func(l *releaseLog) {
				l.add(releaseReadyKey("a", []string{"service a/db\x1b[2J"}), podRef{name: "p"}, t0)
			},
			t0, true,
			[]string{`a/p Normal DependenciesReady: released 1 pod waiting for service a/db\x1b[2J (removed scheduling gate entrypoint.io/dependencies): p`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newReleaseLog()
			tc.add(l)
			var got []string
			for _, g := range l.take(tc.now, tc.idle, 30*time.Second) {
				got = append(got, g.key.namespace+"/"+g.pods[0].name+" "+g.key.eventType+" "+g.key.reason+": "+g.note())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tc.want)
			}
			// What was taken is gone; what was not stays for the next time.
			if rest := l.take(tc.now, true, 0); len(rest) != tc.left {
				t.Errorf("%d groups left; want %d", len(rest), tc.left)
			}
		})
	}
	// However many pods, the note stays within what the events API takes.
	l := newReleaseLog()
	long := releaseReadyKey("a", []string{strings.Repeat("x", 3000)})
	l.add(long, podRef{name: "p"}, t0)
	if n := len(l.take(t0, true, 0)[0].note()); n > maxEventNote {
		t.Errorf("note of %d bytes", n)
	}
}
