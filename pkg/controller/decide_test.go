package controller

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// decide, table-tested: no API server, no informer, no clock; each case is a
// pod as observed and what should become of it.
func TestDecide(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	oneService := &spec.Spec{Services: []spec.ObjectRef{{Namespace: "ns", Name: "db"}}}
	withSocket := &spec.Spec{Services: []spec.ObjectRef{{Namespace: "ns", Name: "db"}}, Sockets: []string{"/run/db.sock"}}
	optional := &spec.Spec{Services: []spec.ObjectRef{{Namespace: "ns", Name: "db"}}, OptionalAfter: 5 * time.Minute}
	var tooMany spec.Spec
	for i := range spec.MaxItems + 1 {
		tooMany.Services = append(tooMany.Services, spec.ObjectRef{Namespace: "ns", Name: fmt.Sprintf("s%d", i)})
	}
	limits := spec.CheckLimits(&tooMany)
	if limits == nil {
		t.Fatalf("%d services pass spec.CheckLimits", len(tooMany.Services))
	}

	ready := verdict{text: "service ns/db", judged: true, status: resolve.Status{Ready: true}}
	unready := func(name string) verdict {
		return verdict{text: "service ns/" + name, judged: true, status: resolve.Status{Reason: "no ready endpoints"}}
	}
	denied := access.Request{PodNamespace: "ns", ServiceAccount: "app", Verb: "list",
		Resource: schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}, Namespace: "other"}.Denied()
	gatedPod := func(deps *spec.Spec, vs ...verdict) decisionInput {
		return decisionInput{gateAt: 0, gateMode: true, created: created, deps: deps, verdicts: vs, deniedFor: time.Minute, now: created.Add(time.Minute)}
	}
	condition := func(status corev1.ConditionStatus, reason, message string) corev1.PodCondition {
		return corev1.PodCondition{Type: ConditionType, Status: status, Reason: reason, Message: message}
	}
	readyOne := condition(corev1.ConditionTrue, ReasonReady, "the dependency that needs no node is ready")
	waitingDB := condition(corev1.ConditionFalse, ReasonWaiting, "waiting for service ns/db: no ready endpoints")

	var seven []verdict
	for i := range 7 {
		seven = append(seven, unready(fmt.Sprintf("s%d", i)))
	}
	cycle := gatedPod(oneService, unready("db"))
	cycle.inCycle, cycle.cycle = true, "ns/a -> ns/b -> ns/a"
	cycleUnblocked := gatedPod(oneService, ready)
	cycleUnblocked.inCycle, cycleUnblocked.cycle = true, "ns/a -> ns/b -> ns/a"
	elapsed := gatedPod(optional, unready("db"))
	elapsed.now = created.Add(5 * time.Minute)
	notYet := gatedPod(optional, unready("db"))
	notYet.now = created.Add(3 * time.Minute)
	notYetPending := gatedPod(optional, unready("db"), verdict{text: "job ns/migrate", pending: true})
	notYetPending.now = created.Add(4*time.Minute + 55*time.Second)
	releasedEarlier := gatedPod(oneService, unready("db"))
	releasedEarlier.gateAt = -1
	runningReady := condition(corev1.ConditionTrue, ReasonReady, "x")
	running := decisionInput{gateAt: -1, gateMode: true, current: &runningReady, ready: true, deps: oneService, limits: nil}
	notRunning := running
	notRunning.ready = false
	notRunning.verdicts = []verdict{ready}
	tooManyGated := gatedPod(&tooMany)
	tooManyGated.limits = limits
	remembered := rememberedVerdict{ready: true, note: "job ns/migrate succeeded at 2026-01-01T00:00:00Z (deleted since)"}
	inGrace := rememberedVerdict{reason: "succeeded at 2026-01-01T00:00:00Z (deleted since); that counts from later", recheck: 90 * time.Second}

	for _, tc := range []struct {
		name string
		in   decisionInput
		want decision
	}{
		{"gone: forgotten", decisionInput{gone: true}, decision{forget: true}},
		{"finished: forgotten", decisionInput{finished: true, gateAt: 0}, decision{forget: true}},
		{"dependencies unreadable: forgotten, with why", decisionInput{unreadable: errors.New("no version label")},
			decision{forget: true, ignored: "no version label"}},
		{"released and running: forgotten", running, decision{forget: true}},
		{"released, not running: the condition kept", notRunning, decision{write: true, released: true, want: readyOne}},

		{"nothing blocks, gated: released", gatedPod(oneService, ready),
			decision{gate: releaseReady, state: ReasonReady, want: readyOne}},
		{"no dependency needing no node, gated: released", gatedPod(&spec.Spec{}),
			decision{gate: releaseReady, state: ReasonReady, want: condition(corev1.ConditionTrue, ReasonReady, "no dependency that needs no node")}},
		{"nothing blocks, not gated: Ready naming what the resolver checks",
			decisionInput{gateAt: -1, deps: withSocket, verdicts: []verdict{ready}},
			decision{write: true, want: condition(corev1.ConditionTrue, ReasonReady,
				"the dependency that needs no node is ready; the resolver in the pod checks socket /run/db.sock")}},
		{"nothing blocks, in a cycle: released all the same", cycleUnblocked,
			decision{gate: releaseReady, state: ReasonReady, want: readyOne}},

		{"blocked: Waiting", gatedPod(oneService, unready("db")), decision{write: true, gated: true, want: waitingDB}},
		{"blocked by more than 5: the first 5 and a count", gatedPod(oneService, seven...),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonWaiting, "waiting for "+
				"service ns/s0: no ready endpoints; service ns/s1: no ready endpoints; service ns/s2: no ready endpoints; "+
				"service ns/s3: no ready endpoints; service ns/s4: no ready endpoints; and 2 more")}},
		{"blocked, released earlier: the Event says so", releasedEarlier,
			decision{write: true, released: true, want: waitingDB}},
		{"a problem, a watch problem and an unready one, in order",
			gatedPod(oneService, verdict{text: "cr ns/x", problem: "kind X of v1 is not served (yet)"}, ready,
				verdict{text: "pvc ns/data", watchProblem: "forbidden "}, unready("db")),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonWaiting, "waiting for "+
				"cr ns/x: kind X of v1 is not served (yet); pvc ns/data: forbidden; service ns/db: no ready endpoints")}},
		{"a cycle: reason Cycle", cycle, decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonCycle,
			"dependency cycle: ns/a -> ns/b -> ns/a; waiting for service ns/db: no ready endpoints")}},

		{"kinds not watched yet only: no write, back soon", gatedPod(oneService, ready, verdict{text: "job ns/migrate", pending: true}),
			decision{requeue: pendingRecheck}},
		{"not watched yet and blocked: Waiting, back soon", gatedPod(oneService, unready("db"), verdict{text: "job ns/migrate", pending: true}),
			decision{write: true, gated: true, want: waitingDB, requeue: pendingRecheck}},

		{"access refused: Waiting with the RBAC it lacks, back when the refusal ends",
			gatedPod(oneService, verdict{text: "service other/db", refused: denied}),
			decision{write: true, gated: true, requeue: time.Minute,
				want: condition(corev1.ConditionFalse, ReasonWaiting, "waiting for service other/db: "+denied)}},

		{"optional-after up, blocked: released with a Warning", elapsed,
			decision{gate: releaseOptional, state: ReasonWaiting, want: waitingDB, optionalAfter: 5 * time.Minute,
				still: "service ns/db: no ready endpoints",
				warning: "removed scheduling gate entrypoint.io/dependencies after 5m0s (entrypoint.io/optional-after) " +
					"without service ns/db: no ready endpoints"}},
		{"optional-after not up: back when it is, even if the write fails", notYet,
			decision{write: true, gated: true, want: waitingDB, requeue: 2 * time.Minute, requeueOnError: 2 * time.Minute}},
		{"optional-after up sooner than the pending recheck", notYetPending,
			decision{write: true, gated: true, want: waitingDB, requeue: 5 * time.Second, requeueOnError: 5 * time.Second}},

		{"too many dependencies: TooManyDependencies, nothing watched", tooManyGated,
			decision{unwatch: true, write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonTooManyDependencies,
				"not checking the dependencies: 101 dependency items, more than 100 (at most 100, 20 of them selecting by labels); "+
					"split them among pods or annotations the webhook admits")}},

		{"control characters escaped", gatedPod(oneService, verdict{text: "service ns/db\x1b[2J", judged: true,
			status: resolve.Status{Reason: "reason\nforged: line\u202e"}}),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonWaiting,
				`waiting for service ns/db\x1b[2J: reason\nforged: line\u202e`)}},

		{"remembered Job: Ready with a note", gatedPod(oneService, ready,
			verdict{text: "job ns/migrate", judged: true, status: resolve.Status{Ready: true}, remembered: &remembered}),
			decision{gate: releaseReady, state: ReasonReady, want: condition(corev1.ConditionTrue, ReasonReady,
				"all 2 dependencies that need no node are ready; job ns/migrate succeeded at 2026-01-01T00:00:00Z (deleted since)")}},
		{"remembered Job in its grace: Waiting, back when it ends", gatedPod(oneService, ready,
			verdict{text: "job ns/migrate", judged: true, status: resolve.Status{Reason: inGrace.reason}, remembered: &inGrace}),
			decision{write: true, gated: true, requeue: 90 * time.Second, want: condition(corev1.ConditionFalse, ReasonWaiting,
				"waiting for job ns/migrate: "+inGrace.reason)}},
		{"refusal and grace: back at the sooner", gatedPod(oneService, verdict{text: "service other/db", refused: "no"},
			verdict{text: "job ns/migrate", judged: true, status: resolve.Status{Reason: inGrace.reason}, remembered: &inGrace}),
			decision{write: true, gated: true, requeue: time.Minute, want: condition(corev1.ConditionFalse, ReasonWaiting,
				"waiting for service other/db: no; job ns/migrate: "+inGrace.reason)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decide:\n got %+v\nwant %+v", got, tc.want)
			}
			if got.want.Message != "" && (strings.ContainsAny(got.want.Message, "\x1b\n\u202e") || len(got.want.Message) > maxConditionBytes) {
				t.Errorf("message not escaped or not cut: %q", got.want.Message)
			}
			// observe asks for the cycle only when decide will name blockers.
			if tc.in.lookups() && got.want.Reason != "" && got.gate != releaseOptional &&
				blocked(tc.in.verdicts) != (got.want.Status == corev1.ConditionFalse) {
				t.Errorf("blocked %v, but the condition is %s", blocked(tc.in.verdicts), got.want.Status)
			}
		})
	}
}

// A huge blocker is cut in the condition and in the Warning of an optional
// release, and stays valid text.
func TestDecideCutsLongMessages(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := decisionInput{gateAt: 0, created: created, now: created.Add(time.Hour),
		deps:     &spec.Spec{OptionalAfter: time.Minute},
		verdicts: []verdict{{text: "service ns/db", judged: true, status: resolve.Status{Reason: strings.Repeat("\x01", 5000)}}}}
	d := decide(in)
	if d.gate != releaseOptional || len(d.want.Message) > maxConditionBytes || len(d.warning) > maxEventNote ||
		!strings.HasSuffix(d.want.Message, "...") || !strings.HasSuffix(d.warning, "...") || strings.Contains(d.warning, "\x01") {
		t.Errorf("gate %v, message %d bytes, warning %d bytes: %q", d.gate, len(d.want.Message), len(d.warning), d.warning)
	}
	in.gateAt = -1
	if d := decide(in); !d.write || len(d.want.Message) > maxConditionBytes || !strings.HasPrefix(d.want.Message, `waiting for service ns/db: \x01`) {
		t.Errorf("not gated: %+v", d)
	}
}
