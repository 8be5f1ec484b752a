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

	// Node-aware gates: a pod bound to n1, and pods whose node is not known.
	ovs := &spec.Spec{Services: []spec.ObjectRef{{Namespace: "ns", Name: "db"}},
		Pods: []spec.PodRef{{Namespace: "ns", Labels: map[string]string{"app": "ovs"}, RequireSameNode: true}}}
	ovsText := "pods in ns with labels app=ovs on this node"
	bound := func(vs ...verdict) decisionInput {
		in := gatedPod(ovs, vs...)
		in.node = "n1"
		return in
	}
	placing := func(required *corev1.NodeSelector, places []itemNodes, vs ...verdict) decisionInput {
		in := gatedPod(ovs, vs...)
		in.placing, in.places, in.required = true, places, required
		return in
	}
	ovsOn := func(nodes ...string) itemNodes { return itemNodes{text: ovsText, nodes: nodes} }
	libvirtOn := func(nodes ...string) itemNodes {
		return itemNodes{text: "pods in ns with labels app=libvirt on this node", nodes: nodes}
	}
	terms := func(nodes ...string) *corev1.NodeSelector {
		var out corev1.NodeSelector
		for _, n := range nodes {
			out.NodeSelectorTerms = append(out.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{nameIs(n)}})
		}
		return &out
	}
	zone := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
		MatchFields:      []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"n2"}}}}}}
	zoneN3 := zone.DeepCopy()
	zoneN3.NodeSelectorTerms[0].MatchFields = append(zoneN3.NodeSelectorTerms[0].MatchFields, nameIs("n3"))
	onlyN2 := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{nameIs("n2")}}}}
	noNodeOptional := placing(nil, []itemNodes{ovsOn()}, ready)
	noNodeOptional.deps = &spec.Spec{Pods: ovs.Pods, OptionalAfter: time.Minute}
	noNodeOptional.now = created.Add(2 * time.Minute)

	for _, tc := range []struct {
		name string
		in   decisionInput
		want decision
	}{
		{"bound to n1, ready there: released, nothing narrowed",
			bound(ready, verdict{text: ovsText, judged: true, status: resolve.Status{Ready: true}}),
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db", ovsText}, want: condition(corev1.ConditionTrue, ReasonReady,
				"all 2 dependencies are ready, those on the same node on node n1")}},
		{"bound to n1, not ready there: Waiting, naming the node",
			bound(ready, verdict{text: ovsText, judged: true, status: resolve.Status{Reason: "0 of 1 matching pods ready on node n1"}}),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonWaiting,
				"waiting for "+ovsText+": 0 of 1 matching pods ready on node n1")}},
		{"ready on n1 and n2, and n2 and n3: released, narrowed to n2 in the same write",
			placing(nil, []itemNodes{ovsOn("n1", "n2"), libvirtOn("n2", "n3")}, ready),
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db", ovsText, "pods in ns with labels app=libvirt on this node"}, narrow: terms("n2"), narrowedTo: []string{"n2"},
				want: condition(corev1.ConditionTrue, ReasonReady,
					"the dependency that needs no node is ready; the 2 on the same node are all ready on node n2")}},
		{"ready on several nodes, no terms of its own: one term per node",
			placing(nil, []itemNodes{ovsOn("n1", "n2", "n3")}, ready),
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db", ovsText}, narrow: terms("n1", "n2", "n3"), narrowedTo: []string{"n1", "n2", "n3"},
				want: condition(corev1.ConditionTrue, ReasonReady,
					"the dependency that needs no node is ready; the one on the same node is ready on nodes n1, n2, n3")}},
		{"terms of its own: each gains one node, the first its node-name requirements admit",
			placing(zone, []itemNodes{ovsOn("n2", "n3", "n4")}, ready),
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db", ovsText}, narrow: zoneN3, narrowedTo: []string{"n3"},
				want: condition(corev1.ConditionTrue, ReasonReady,
					"the dependency that needs no node is ready; the one on the same node is ready on nodes n2, n3, n4")}},
		{"released by node-aware gates: Ready says the same-node ones were ready then",
			decisionInput{gateAt: -1, gateMode: true, deps: ovs, verdicts: []verdict{ready}},
			decision{write: true, released: true, want: condition(corev1.ConditionTrue, ReasonReady,
				"the dependency that needs no node is ready; the 1 on the same node were ready when the gate went")}},
		{"no node where both are ready: NoReadyNode, gate kept",
			placing(nil, []itemNodes{ovsOn("n1"), libvirtOn()}, ready),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonNoReadyNode,
				"no node where every same-node dependency is ready ("+ovsText+": ready on node n1; "+
					"pods in ns with labels app=libvirt on this node: ready on no node)")}},
		{"ready only where its own affinity refuses: NoReadyNode",
			placing(onlyN2, []itemNodes{ovsOn("n1")}, ready),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonNoReadyNode,
				"the same-node dependencies are all ready on node n1, none of which the pod's own required node affinity admits by name")}},
		{"no node and something else blocking: Waiting, naming both",
			placing(nil, []itemNodes{ovsOn()}, unready("db")),
			decision{write: true, gated: true, want: condition(corev1.ConditionFalse, ReasonWaiting,
				"waiting for service ns/db: no ready endpoints; no node where the same-node dependency is ready ("+ovsText+": ready on no node)")}},
		{"same-node lookups refused: Waiting with the RBAC it lacks, nothing placed",
			placing(nil, nil, ready, verdict{text: "pods in other with labels app=ovs on this node", refused: denied}),
			decision{write: true, gated: true, requeue: time.Minute, want: condition(corev1.ConditionFalse, ReasonWaiting,
				"waiting for pods in other with labels app=ovs on this node: "+denied)}},
		{"optional-after up with no node: released, not narrowed", noNodeOptional,
			decision{gate: releaseOptional, state: ReasonNoReadyNode, optionalAfter: time.Minute,
				want:  condition(corev1.ConditionFalse, ReasonNoReadyNode, "no node where the same-node dependency is ready ("+ovsText+": ready on no node)"),
				still: "no node where the same-node dependency is ready (" + ovsText + ": ready on no node)"}},

		{"gone: forgotten", decisionInput{gone: true}, decision{forget: true}},
		{"finished: forgotten", decisionInput{finished: true, gateAt: 0}, decision{forget: true}},
		{"dependencies unreadable: forgotten, with why", decisionInput{unreadable: errors.New("no version label")},
			decision{forget: true, ignored: "no version label"}},
		{"released and running: forgotten", running, decision{forget: true}},
		{"released, not running: the condition kept", notRunning, decision{write: true, released: true, want: readyOne}},

		{"nothing blocks, gated: released", gatedPod(oneService, ready),
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db"}, want: readyOne}},
		{"no dependency needing no node, gated: released", gatedPod(&spec.Spec{}),
			decision{gate: releaseReady, state: ReasonReady, want: condition(corev1.ConditionTrue, ReasonReady, "no dependency that needs no node")}},
		{"nothing blocks, not gated: Ready naming what the resolver checks",
			decisionInput{gateAt: -1, deps: withSocket, verdicts: []verdict{ready}},
			decision{write: true, want: condition(corev1.ConditionTrue, ReasonReady,
				"the dependency that needs no node is ready; the resolver in the pod checks socket /run/db.sock")}},
		{"nothing blocks, in a cycle: released all the same", cycleUnblocked,
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db"}, want: readyOne}},

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
				still: "service ns/db: no ready endpoints"}},
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
			decision{gate: releaseReady, state: ReasonReady, waitedFor: []string{"service ns/db", "job ns/migrate"}, want: condition(corev1.ConditionTrue, ReasonReady,
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
			if tc.in.lookups() && got.want.Reason != "" && got.gate != releaseOptional && got.want.Reason != ReasonNoReadyNode &&
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
	g := releaseGroup{key: releaseOptionalKey("ns", d.optionalAfter, d.still), count: 1, pods: []podRef{{name: "app"}}}
	warning := g.note()
	if d.gate != releaseOptional || len(d.want.Message) > maxConditionBytes || len(warning) > maxEventNote ||
		!strings.HasSuffix(d.want.Message, "...") || !strings.HasSuffix(warning, "...") || strings.Contains(warning, "\x01") {
		t.Errorf("gate %v, message %d bytes, warning %d bytes: %q", d.gate, len(d.want.Message), len(warning), warning)
	}
	in.gateAt = -1
	if d := decide(in); !d.write || len(d.want.Message) > maxConditionBytes || !strings.HasPrefix(d.want.Message, `waiting for service ns/db: \x01`) {
		t.Errorf("not gated: %+v", d)
	}
}
