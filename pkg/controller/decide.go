package controller

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/local"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// A reconcile is three steps: observe reads the pod and gathers what is known
// of each of its dependencies (the API server, the informers, the access
// reviews, the Job memory); decide, which reads nothing and writes nothing,
// turns that into what the pod should be; act writes it (gate, condition,
// Events, metrics, what the controller keeps of the pod).

// decisionInput is everything decide looks at.
type decisionInput struct {
	// gone: the pod no longer exists; finished: it is being deleted, or has
	// succeeded or failed.
	gone, finished bool
	// unreadable is why its dependencies could not be read (labelled by hand,
	// or injected by a webhook of another version).
	unreadable error

	// gateAt is the index of the scheduling gate among the pod's gates; -1:
	// it has none (any more).
	gateAt int
	// gateMode: the pod was injected gated (inject.Dependencies), so a Ready
	// condition without the gate means it was released.
	gateMode bool
	// current is the pod's condition as read; nil: it has none.
	current *corev1.PodCondition
	// created is the pod's creation time; ready: its Ready condition is true.
	created time.Time
	ready   bool

	// deps are the pod's dependencies, and limits why they are not looked up
	// (spec.CheckLimits).
	deps   *spec.Spec
	limits error
	// secrets: the controller watches Secrets (Options.SecretDependencies).
	secrets bool

	// verdicts are what was found of each node-free dependency, in order;
	// gathered only when lookups() says so.
	verdicts []verdict
	// node is the one node a gated pod's required node affinity admits
	// (kube.BoundNode): its same-node dependencies were judged there, among verdicts.
	node string
	// placing: the pod is gated, its node not known, and it has same-node
	// dependencies; places are where each is ready, nil while some of them
	// cannot be judged (the verdicts say why). required is the pod's required
	// node affinity, which a release narrows to where they all are.
	placing  bool
	places   []itemNodes
	required *corev1.NodeSelector
	// inCycle: the pod sits in the dependency cycle named by cycle; asked
	// only when some verdict blocks.
	inCycle bool
	cycle   string
	// deniedFor is how long a refusal of access stands (access.Checker.DeniedFor).
	deniedFor time.Duration
	// now is the clock, read only when the pod is gated with optional-after.
	now time.Time
}

// lookups tells whether the pod's dependencies are looked up at all: not for a
// pod that is not followed, that names too many, or that was released and runs.
func (in *decisionInput) lookups() bool {
	return !in.gone && !in.finished && in.unreadable == nil && in.limits == nil && !in.settled()
}

// settled: released and running, nothing left to explain.
func (in *decisionInput) settled() bool {
	return in.gateAt < 0 && in.current != nil && in.current.Status == corev1.ConditionTrue && in.ready
}

// verdict is what was found of one dependency, before anything is decided: at
// most one of problem, refused, pending, watchProblem and judged is set.
type verdict struct {
	// text names the dependency as the resolver does.
	text string
	// problem is why it cannot be looked up at all.
	problem string
	// refused is why the pod may not read it (or why that could not be told).
	refused string
	// pending: its kind is not watched yet.
	pending bool
	// watchProblem is why its kind's informer does not sync.
	watchProblem string
	// judged: its rule was applied to what the informer holds, giving status;
	// remembered is the verdict on the completion of a deleted Job of its
	// name, when one was judged.
	judged     bool
	status     resolve.Status
	remembered *rememberedVerdict
}

// blocking is why the dependency blocks the pod; ok false: it does not.
func (v verdict) blocking() (reason string, ok bool) {
	switch {
	case v.problem != "":
		return v.problem, true
	case v.refused != "":
		return v.refused, true
	case v.watchProblem != "":
		return v.watchProblem, true
	case v.judged && (v.remembered == nil || !v.remembered.ready) && !v.status.Ready:
		return v.status.Reason, true
	}
	return "", false
}

// blocked tells whether any of the verdicts blocks.
func blocked(verdicts []verdict) bool {
	for _, v := range verdicts {
		if _, ok := v.blocking(); ok {
			return true
		}
	}
	return false
}

// gateAction is what becomes of the scheduling gate.
type gateAction int

const (
	// keepGate: the gate, if any, stays.
	keepGate gateAction = iota
	// releaseReady: nothing blocks; the gate goes.
	releaseReady
	// releaseOptional: something blocks, but the dependencies are optional
	// after this long (entrypoint.io/optional-after); the gate goes, with a
	// Warning.
	releaseOptional
)

// decision is what decide says of one pod.
type decision struct {
	// forget: the pod is not followed (any more): what is kept of it goes.
	// ignored, then, is why its dependencies are not read, for the log.
	forget  bool
	ignored string
	// unwatch: its dependencies are not looked up (too many), so nothing of
	// them wakes it.
	unwatch bool

	// gate is what becomes of the scheduling gate; state, when it goes, is
	// the pod's reason in the metrics.
	gate  gateAction
	state string
	// narrow, when the gate goes, is the pod's required node affinity narrowed
	// to narrowedTo, the nodes where its same-node dependencies are ready,
	// written with the gate's removal.
	narrow     *corev1.NodeSelector
	narrowedTo []string
	// waitedFor, when the gate goes because nothing blocks, names the pod's
	// dependencies, for the Event that counts the pods released alike. still,
	// when it goes after optionalAfter (the pod's annotation), is what blocks,
	// for the log and the Warning Event.
	waitedFor     []string
	still         string
	optionalAfter time.Duration

	// write: the condition want is ensured (written unless the pod has it).
	// released: its Event says the gate was removed; gated: the pod keeps
	// its gate.
	write           bool
	want            corev1.PodCondition
	released, gated bool

	// requeue is how soon the pod is looked at again after the writes
	// succeed, unless sooner anyway; requeueOnError even when they fail. 0:
	// not for this reason.
	requeue, requeueOnError time.Duration
}

// pendingRecheck is how soon a pod is looked at again while a kind it waits for
// is not watched yet; the informer's sync wakes it sooner.
const pendingRecheck = 10 * time.Second

// decide is what the pod should be, from what was observed of it. It reads and
// writes nothing.
func decide(in decisionInput) decision {
	switch {
	case in.gone || in.finished:
		return decision{forget: true}
	case in.unreadable != nil:
		return decision{forget: true, ignored: in.unreadable.Error()}
	case in.limits != nil:
		// The webhook denies such a pod; this one came another way (created
		// with the label and a status of its own). Nothing of it is looked up.
		return decision{unwatch: true, write: true, gated: in.gateAt >= 0,
			want: corev1.PodCondition{Type: ConditionType, Status: corev1.ConditionFalse, Reason: ReasonTooManyDependencies,
				Message: shown(fmt.Sprintf("not checking the dependencies: %v (at most %d, %d of them selecting by labels); "+
					"split them among pods or annotations the webhook admits", in.limits, spec.MaxItems, spec.MaxSelectorItems), maxConditionBytes)}}
	case in.settled():
		return decision{forget: true}
	}

	var blockers, notes []string
	pending := false
	var recheck time.Duration // when a refusal ends, or a remembered Job's grace runs out
	for _, v := range in.verdicts {
		if v.pending {
			pending = true
			continue
		}
		if v.judged && v.remembered != nil && v.remembered.ready {
			notes = append(notes, v.remembered.note)
		}
		if reason, ok := v.blocking(); ok {
			blockers = append(blockers, blocker(v.text, reason))
		}
		if v.refused != "" && (recheck == 0 || in.deniedFor < recheck) {
			recheck = in.deniedFor
		}
		if v.judged && v.remembered != nil && v.remembered.recheck > 0 && (recheck == 0 || v.remembered.recheck < recheck) {
			recheck = v.remembered.recheck
		}
	}
	// Where the same-node dependencies are all ready, and what the pod's
	// affinity becomes; no node is a blocker of its own.
	var narrow *corev1.NodeSelector
	var narrowTo []string
	noNode := false
	if in.placing && in.places != nil {
		if narrow, narrowTo = narrowed(in.required, readyOnAll(in.places)); narrow == nil {
			noNode = true
			msg := noReadyNode(in.places)
			if all := readyOnAll(in.places); len(all) > 0 {
				msg = "the same-node dependencies are all ready on " + nodeList(all) +
					", none of which the pod's own required node affinity admits by name"
			}
			blockers = append(blockers, msg)
		}
	}
	if pending && len(blockers) == 0 {
		// Not all kinds are watched yet; their sync wakes the pod.
		return decision{requeue: pendingRecheck}
	}

	want := corev1.PodCondition{Type: ConditionType, Status: corev1.ConditionTrue, Reason: ReasonReady,
		Message: readyMessage(in, notes)}
	if len(blockers) > 0 {
		want.Status, want.Reason, want.Message = corev1.ConditionFalse, ReasonWaiting, "waiting for "+joinBlockers(blockers)
		switch {
		case in.inCycle:
			want.Reason, want.Message = ReasonCycle, "dependency cycle: "+in.cycle+"; waiting for "+joinBlockers(blockers)
		case noNode && len(blockers) == 1:
			want.Reason, want.Message = ReasonNoReadyNode, blockers[0]
		}
	}
	want.Message = shown(want.Message, maxConditionBytes)

	if in.gateAt >= 0 && len(blockers) == 0 && !pending {
		// The condition comes with the reconcile that the pod's update wakes:
		// when a thousand pods are released at once, every gate goes first.
		return decision{gate: releaseReady, state: ReasonReady, want: want, requeue: recheck, narrow: narrow, narrowedTo: narrowTo,
			waitedFor: waitedFor(in)}
	}
	var wait time.Duration
	if in.gateAt >= 0 && in.deps.OptionalAfter > 0 {
		// The dependencies are optional after this long from the pod's creation:
		// then the gate goes whatever still blocks, with a Warning.
		wait = in.created.Add(in.deps.OptionalAfter).Sub(in.now)
		if wait <= 0 {
			// Here something blocks: with nothing blocking the gate went above.
			still := joinBlockers(blockers)
			// Narrowed still where some node has them all; otherwise the pod
			// goes wherever it would have gone.
			return decision{gate: releaseOptional, state: want.Reason, want: want, requeue: recheck, narrow: narrow, narrowedTo: narrowTo,
				still: still, optionalAfter: in.deps.OptionalAfter}
		}
	}
	d := decision{write: true, want: want, released: in.gateMode && in.gateAt < 0, gated: in.gateAt >= 0,
		requeueOnError: wait}
	for _, after := range []time.Duration{recheck, wait} {
		if after > 0 && (d.requeue == 0 || after < d.requeue) {
			d.requeue = after
		}
	}
	if pending && (d.requeue == 0 || pendingRecheck < d.requeue) {
		d.requeue = pendingRecheck
	}
	return d
}

// waitedFor names what a pod released because nothing blocks waited for: its
// dependencies judged, and the same-node ones placed.
func waitedFor(in decisionInput) []string {
	var out []string
	for _, v := range in.verdicts {
		out = append(out, v.text)
	}
	for _, p := range in.places {
		out = append(out, p.text)
	}
	return out
}

// Bounds of what is written, whatever the annotations say: a condition message
// names the first blockers and counts the rest; an Event's note is cut (the
// events API allows 1 kB).
const (
	maxBlockersShown  = 5
	maxConditionBytes = 2048
	maxEventNote      = 1000
)

func joinBlockers(blockers []string) string {
	shown := blockers
	if len(shown) > maxBlockersShown {
		shown = shown[:maxBlockersShown]
	}
	s := strings.Join(shown, "; ")
	if n := len(blockers) - len(shown); n > 0 {
		s += fmt.Sprintf("; and %d more", n)
	}
	return safetext.Truncate(s, maxConditionBytes)
}

// shown is text as a condition or Event may carry it: control characters
// escaped (names and expressions come from whoever wrote the pod), then cut.
func shown(s string, n int) string { return safetext.Truncate(safetext.Escape(s), n) }

// readyMessage says what the Ready condition covers, and what it does not, and
// which dependencies only the memory of a deleted Job satisfied (notes).
func readyMessage(in decisionInput, notes []string) string {
	checked := len(in.verdicts)
	msg := fmt.Sprintf("all %d dependencies that need no node are ready", checked)
	switch {
	case in.node != "":
		msg = fmt.Sprintf("all %d dependencies are ready, those on the same node on node %s", checked, in.node)
	case checked == 0:
		msg = "no dependency that needs no node"
	case checked == 1:
		msg = "the dependency that needs no node is ready"
	}
	if in.placing && in.places != nil {
		where := nodeList(readyOnAll(in.places))
		if len(in.places) == 1 {
			msg += "; the one on the same node is ready on " + where
		} else {
			msg += fmt.Sprintf("; the %d on the same node are all ready on %s", len(in.places), where)
		}
	}
	if same := sameNodeSpec(in.deps); same != nil && in.gateMode && in.gateAt < 0 {
		// Released: the gate held them, and they were ready on the pod's node.
		msg += fmt.Sprintf("; the %d on the same node were ready when the gate went", len(same.DaemonSets)+len(same.Pods))
	}
	local := nodeLocal(in.deps, in.secrets, in.gateMode)
	if len(notes) > 0 {
		msg += "; " + joinBlockers(notes)
	}
	if len(local) > 0 {
		msg += "; the resolver in the pod checks " + joinBlockers(local)
	}
	return safetext.Truncate(msg, maxConditionBytes)
}

// nodeLocal names, as the resolver does, the dependencies only the resolver in the
// pod can check: Secrets among them unless the controller watches them, and the
// same-node ones unless the pod was gated (the gate held them).
func nodeLocal(deps *spec.Spec, secrets, gated bool) []string {
	var out []string
	if !secrets {
		for _, ref := range deps.Secrets {
			out = append(out, (&kube.Secret{Ref: ref}).String())
		}
	}
	if !gated {
		for _, ref := range deps.DaemonSets {
			out = append(out, (&kube.DaemonSet{Ref: ref}).String())
		}
		for _, ref := range deps.Pods {
			if ref.RequireSameNode {
				out = append(out, (&kube.Pod{Ref: ref}).String())
			}
		}
	}
	for _, name := range deps.Containers {
		out = append(out, (&kube.Container{Name: name}).String())
	}
	for _, path := range deps.Sockets {
		out = append(out, (&local.Socket{Path: path}).String())
	}
	for _, addr := range deps.TCP {
		out = append(out, (&local.TCP{Address: addr}).String())
	}
	for _, u := range deps.HTTP {
		out = append(out, (&local.HTTP{URL: u}).String())
	}
	return out
}

func gateIndex(pod *corev1.Pod) int {
	for i, g := range pod.Spec.SchedulingGates {
		if g.Name == inject.SchedulingGate {
			return i
		}
	}
	return -1
}

func findCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == ConditionType {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func podIsReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
