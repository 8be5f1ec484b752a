//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// oshWaitedAfter is how long a pod must have been held to count as one that
// waited: longer than one poll of a resolver whose dependencies were ready at once.
const oshWaitedAfter = 2 * time.Second

// oshConditionBound is the bound: a gated pod carries the condition within
// 2 s of its creation, both read from the API objects.
const oshConditionBound = 2 * time.Second

// podAdopted tells whether the webhook adopted p: its status annotation says so.
func podAdopted(p *corev1.Pod) bool {
	st, ok := podStatus(p)
	return ok && st.Mode == string(inject.ModeAdopted)
}

func podStatus(p *corev1.Pod) (oshStatus, bool) {
	raw, ok := p.Annotations[inject.AnnotationStatus]
	if !ok {
		return oshStatus{}, false
	}
	var st oshStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return oshStatus{}, false
	}
	return st, true
}

// places counts the items of deps judged from the API alone (node-free) and those
// judged on the pod's node.
func places(deps *spec.Spec) (nodeFree, sameNode int) {
	if deps == nil {
		return 0, 0
	}
	for _, it := range kube.Items(deps, kube.LookupOptions{}) {
		switch it.Place {
		case kube.InAPI:
			nodeFree++
		case kube.OnNode:
			sameNode++
		}
	}
	return nodeFree, sameNode
}

// gatedDeps parses the variables the status annotation says were moved into the gate.
func gatedDeps(p *corev1.Pod, st oshStatus) (*spec.Spec, error) {
	if len(st.Gated) == 0 {
		return nil, nil
	}
	env := map[string]string{spec.EnvNamespace: p.Namespace, spec.EnvPodName: p.Name, spec.EnvNodeName: p.Spec.NodeName}
	for _, g := range st.Gated {
		env[g.Name] = g.Value
	}
	return spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

// admittedResolverDeps parses what the pod's kubernetes-entrypoint init container
// still waits for itself, after admission (adoption blanks what it gated).
func admittedResolverDeps(p *corev1.Pod) (*spec.Spec, error) {
	for _, c := range p.Spec.InitContainers {
		if !slices.Equal(c.Command, []string{oshResolverName}) {
			continue
		}
		env := map[string]string{spec.EnvNamespace: p.Namespace, spec.EnvPodName: p.Name, spec.EnvNodeName: p.Spec.NodeName}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
		return spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
	return nil, nil
}

// measure fills r from the run's pods and audit log, and asserts what the run
// promises (see TestOpenstackHelm).
func measure(t *testing.T, r *oshResult, plan *oshPlan, pods []corev1.Pod, requests map[string]int, rec *podRecorder, o oshRunOptions) {
	t.Helper()
	ctx := context.Background()
	owners, err := replicaSetOwners(ctx)
	must(t, err)
	ready, err := newReadiness(ctx, pods, rec)
	must(t, err)
	for _, n := range requests {
		r.requests += n
	}
	for i := range pods {
		p := &pods[i]
		key := workloadOf(p, owners)
		w, ok := plan.workload(key)
		if !ok {
			t.Errorf("pod %s belongs to no workload of the plan (%q)", p.Name, key)
			continue
		}
		r.pods++
		nodeFree, sameNode := places(w.Deps)
		r.nodeFree += nodeFree
		r.sameNode += sameNode
		if nodeFree+sameNode > 0 {
			r.withDeps++
		}
		st, hasStatus := podStatus(p)
		adopted := hasStatus && st.Mode == string(inject.ModeAdopted)
		if adopted {
			r.adopted++
			r.requestsAdopted += requests[p.Name]
		}
		gated, err := gatedDeps(p, st)
		if err != nil {
			t.Errorf("pod %s: the gated variables of its status annotation do not parse: %v", p.Name, err)
		}
		gf, gs := places(gated)
		r.nodeFreeGated += gf
		r.sameNodeGated += gs
		if !slices.Contains(r.during, p.Name) {
			r.nodeFreeServed += nodeFree
			r.nodeFreeServedGated += gf
			r.sameNodeServed += sameNode
		}
		left, err := admittedResolverDeps(p)
		if err != nil {
			t.Errorf("pod %s: its resolver's environment does not parse: %v", p.Name, err)
		}
		if !readsAPI(left) {
			r.requestsNoAPI += requests[p.Name]
			if n := requests[p.Name]; n > 0 {
				t.Errorf("pod %s: its resolver had nothing to read from the API, yet the pod's ServiceAccount made %d requests", p.Name, n)
			}
		}

		// Held: in the gate, until the condition turned Ready; in the resolver,
		// while its init container ran.
		var held time.Duration
		if c := podCondition(p, api.ConditionType); len(st.Gated) > 0 && c != nil && c.Status == corev1.ConditionTrue {
			held = c.LastTransitionTime.Sub(p.CreationTimestamp.Time)
		}
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == resolverContainerName(p) && s.State.Terminated != nil {
				held = max(held, s.State.Terminated.FinishedAt.Sub(s.State.Terminated.StartedAt.Time))
			}
		}
		if held > oshWaitedAfter {
			r.waited++
		}

		if len(st.Gated) > 0 {
			r.gatedPods++
			first, seen := rec.get(p.Name)
			switch {
			case !seen || first.firstCondition == nil:
				t.Errorf("gated pod %s: the watch never saw its condition %s", p.Name, api.ConditionType)
			case first.firstCondition.LastTransitionTime.Sub(p.CreationTimestamp.Time) > oshConditionBound:
				t.Errorf("gated pod %s: created %s, its condition %s first written at %s, more than %s later",
					p.Name, p.CreationTimestamp.UTC().Format(time.TimeOnly), api.ConditionType, first.firstCondition.LastTransitionTime.UTC().Format(time.TimeOnly), oshConditionBound)
			default:
				r.inTime++
			}
			if seen && first.firstCondition != nil {
				r.maxCondition = max(r.maxCondition, first.firstCondition.LastTransitionTime.Sub(p.CreationTimestamp.Time))
			}
		}
		if o.adopt {
			if problem := rewritten(p, w); problem != "" {
				t.Errorf("pod %s: %s", p.Name, problem)
			}
		}
		if !o.adopt && (hasStatus || p.Labels[inject.LabelManaged] != "" || hasGate(p)) {
			t.Errorf("pod %s in a namespace without %s was touched by the webhook: status %q, labels %v, gates %v",
				p.Name, inject.NamespaceLabelAdopt, p.Annotations[inject.AnnotationStatus], p.Labels, p.Spec.SchedulingGates)
		}
		checked, early := ready.earlyStarts(p, w.Deps)
		r.orderChecked += checked
		if len(early) > 0 {
			r.early += len(early)
			for _, e := range early {
				t.Errorf("pod %s started before its dependency: %s", p.Name, e)
			}
		}
	}
	if o.adopt {
		if r.adopted == 0 {
			t.Errorf("the webhook adopted none of the %d pods in a namespace labelled %s=true", r.pods, inject.NamespaceLabelAdopt)
		}
		if o.outage && r.notAdopted == 0 {
			t.Errorf("no pod was created unadopted during the webhook's outage: the outage did not cover the install")
		}
		if r.gatedPods == 0 {
			t.Errorf("no pod was gated in the adopted run")
		}
		// Node-aware gates: the Open vSwitch agent's pod waits for the
		// openvswitch server's pod on its node; adopted, that item is the gate's.
		if r.sameNodeServed > 0 && r.sameNodeGated == 0 {
			t.Errorf("none of the %d same-node items of the pods created while the webhook served was gated", r.sameNodeServed)
		}
	}
	if r.pods == 0 {
		t.Errorf("no pod in namespace %s after convergence", oshNamespace)
	}
}

// resolverContainerName is the name of p's kubernetes-entrypoint init container.
func resolverContainerName(p *corev1.Pod) string {
	for _, c := range p.Spec.InitContainers {
		if slices.Equal(c.Command, []string{oshResolverName}) {
			return c.Name
		}
	}
	return ""
}

// rewritten says how adoption changed more of p than it may: it may blank the
// gated variables and add its label, annotation and gate, nothing else of the
// containers: no container added (no kubernetes-entrypoint-install), no image,
// command or args changed, no volume of the injection.
func rewritten(p *corev1.Pod, w oshWorkload) string {
	var problems []string
	names := func(cs []corev1.Container) []string {
		var n []string
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return n
	}
	if got, want := names(p.Spec.InitContainers), names(w.Runnable.InitContainers); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("init containers %v, created with %v", got, want))
	}
	if got, want := names(p.Spec.Containers), names(w.Runnable.Containers); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("containers %v, created with %v", got, want))
	}
	compare := func(kind string, got, want []corev1.Container) {
		for i := range min(len(got), len(want)) {
			g, c := got[i], want[i]
			if g.Image != c.Image || !slices.Equal(g.Command, c.Command) || !slices.Equal(g.Args, c.Args) {
				problems = append(problems, fmt.Sprintf("%s %s runs %s %q %q, created with %s %q %q", kind, g.Name, g.Image, g.Command, g.Args, c.Image, c.Command, c.Args))
			}
		}
	}
	compare("init container", p.Spec.InitContainers, w.Runnable.InitContainers)
	compare("container", p.Spec.Containers, w.Runnable.Containers)
	for _, c := range p.Spec.InitContainers {
		if c.Name == inject.InitContainerName {
			problems = append(problems, "the resolver was injected ("+inject.InitContainerName+")")
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == inject.VolumeName {
			problems = append(problems, "the injection's volume "+inject.VolumeName+" was added")
		}
	}
	return strings.Join(problems, "; ")
}

// readiness knows, from the objects, since when each dependency of the scenario
// was ready: a Service since its first selected pod turned Ready, a Job since its
// first succeeded pod finished, pods by labels since the first of them turned Ready
// (Ready as the watch first saw it, so that a probe failing later moves nothing).
// Each is a lower bound of when the resolver or the controller could see it ready.
type readiness struct {
	pods     []corev1.Pod
	rec      *podRecorder
	services map[string]klabels.Selector
}

func newReadiness(ctx context.Context, pods []corev1.Pod, rec *podRecorder) (*readiness, error) {
	svcs, err := cs.CoreV1().Services(oshNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	r := &readiness{pods: pods, rec: rec, services: map[string]klabels.Selector{}}
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) > 0 {
			r.services[s.Name] = klabels.SelectorFromSet(s.Spec.Selector)
		}
	}
	return r, nil
}

func (r *readiness) readySince(sel klabels.Selector) time.Time { return r.rec.readySince(sel) }

// jobDoneSince is when the first succeeded pod of job finished.
func (r *readiness) jobDoneSince(job string) time.Time {
	var since time.Time
	for _, p := range r.pods {
		if p.Labels[batchv1.JobNameLabel] != job || p.Status.Phase != corev1.PodSucceeded {
			continue
		}
		var done time.Time
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Terminated != nil && s.State.Terminated.FinishedAt.After(done) {
				done = s.State.Terminated.FinishedAt.Time
			}
		}
		if since.IsZero() || done.Before(since) {
			since = done
		}
	}
	return since
}

// earlyStarts lists the dependencies of deps that p's application containers
// started before (timestamps in seconds: equal seconds are not early), and counts
// the dependencies checked.
func (r *readiness) earlyStarts(p *corev1.Pod, deps *spec.Spec) (checked int, early []string) {
	if deps == nil {
		return 0, nil
	}
	var started time.Time
	for _, s := range p.Status.ContainerStatuses {
		for _, st := range []corev1.ContainerState{s.State, s.LastTerminationState} {
			var at time.Time
			switch {
			case st.Running != nil:
				at = st.Running.StartedAt.Time
			case st.Terminated != nil:
				at = st.Terminated.StartedAt.Time
			}
			if !at.IsZero() && (started.IsZero() || at.Before(started)) {
				started = at
			}
		}
	}
	if started.IsZero() {
		return 0, nil // never started: nothing started early
	}
	check := func(what string, since time.Time) {
		checked++
		switch {
		case since.IsZero():
			early = append(early, what+" never became ready, yet the application started at "+started.UTC().Format(time.TimeOnly))
		case started.Before(since):
			early = append(early, fmt.Sprintf("%s ready at %s, the application started at %s", what, since.UTC().Format(time.TimeOnly), started.UTC().Format(time.TimeOnly)))
		}
	}
	for _, s := range deps.Services {
		if s.Namespace != oshNamespace {
			continue
		}
		if sel, ok := r.services[s.Name]; ok {
			check("service "+s.Name, r.readySince(sel))
		}
	}
	for _, j := range deps.Jobs {
		if j.Name != "" && j.Namespace == oshNamespace {
			check("job "+j.Name, r.jobDoneSince(j.Name))
		}
	}
	for _, pr := range deps.Pods {
		if pr.Namespace == oshNamespace {
			check("pods "+klabels.Set(pr.Labels).String(), r.readySince(klabels.SelectorFromSet(pr.Labels)))
		}
	}
	return checked, early
}

// auditRequests counts the requests in kube-apiserver's audit log, from byte
// offset from, made by users whose name starts with prefix (the scenario's
// ServiceAccounts), by the pod their token was bound to. A request is counted once
// (by its audit ID) whatever its stages. With no audit log (a cluster started
// without Options.AuditServiceAccountsIn) it is an error: the figure would be a lie.
// kinds sums them up by verb and resource, most first.
func auditRequests(path string, from int64, prefix string) (byPod map[string]int, kinds string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("the API server's audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, "", fmt.Errorf("the API server's audit log: %w", err)
	}
	type event struct {
		AuditID string `json:"auditID"`
		User    struct {
			Username string              `json:"username"`
			Extra    map[string][]string `json:"extra"`
		} `json:"user"`
		Verb      string `json:"verb"`
		ObjectRef *struct {
			Resource string `json:"resource"`
		} `json:"objectRef"`
	}
	seen := map[string]bool{}
	byPod = map[string]int{}
	byKind := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // the last line may be half written
		}
		if !strings.HasPrefix(e.User.Username, prefix) || seen[e.AuditID] {
			continue
		}
		seen[e.AuditID] = true
		pod := "(no pod)"
		if names := e.User.Extra["authentication.kubernetes.io/pod-name"]; len(names) > 0 {
			pod = names[0]
		}
		byPod[pod]++
		kind := e.Verb
		if e.ObjectRef != nil {
			kind += " " + e.ObjectRef.Resource
		}
		byKind[kind]++
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, "", fmt.Errorf("reading the API server's audit log: %w", err)
	}
	keys := make([]string, 0, len(byKind))
	for k := range byKind {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if byKind[keys[i]] != byKind[keys[j]] {
			return byKind[keys[i]] > byKind[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, byKind[k]))
	}
	if len(parts) == 0 {
		return byPod, "none", nil
	}
	return byPod, strings.Join(parts, ", "), nil
}

// oshTable is the runs side by side.
func oshTable(results []*oshResult) string {
	rows := [][]string{{""}}
	for _, r := range results {
		rows[0] = append(rows[0], r.name)
	}
	add := func(label string, cell func(r *oshResult) string) {
		row := []string{label}
		for _, r := range results {
			row = append(row, cell(r))
		}
		rows = append(rows, row)
	}
	pct := func(n, of int) string {
		if of == 0 {
			return fmt.Sprintf("%d/%d", n, of)
		}
		return fmt.Sprintf("%d/%d (%d%%)", n, of, 100*n/of)
	}
	add("converged in", func(r *oshResult) string { return r.converged.Round(100 * time.Millisecond).String() })
	add("pods (with deps, waited > 2 s)", func(r *oshResult) string { return fmt.Sprintf("%d (%d, %d)", r.pods, r.withDeps, r.waited) })
	add("pods adopted", func(r *oshResult) string { return fmt.Sprint(r.adopted) })
	add("node-free items gated", func(r *oshResult) string { return pct(r.nodeFreeGated, r.nodeFree) })
	add("  of pods created, webhook up", func(r *oshResult) string { return pct(r.nodeFreeServedGated, r.nodeFreeServed) })
	add("same-node items gated", func(r *oshResult) string { return pct(r.sameNodeGated, r.sameNode) })
	add("API requests of the resolvers", func(r *oshResult) string { return fmt.Sprint(r.requests) })
	add("  of adopted pods", func(r *oshResult) string { return fmt.Sprint(r.requestsAdopted) })
	add("  of pods left nothing to read", func(r *oshResult) string { return fmt.Sprint(r.requestsNoAPI) })
	add("gated pods, condition ≤ 2 s (max)", func(r *oshResult) string {
		if r.gatedPods == 0 {
			return "-"
		}
		return fmt.Sprintf("%d of %d (%s)", r.inTime, r.gatedPods, r.maxCondition)
	})
	add("webhook outage (pods not adopted)", func(r *oshResult) string {
		if r.outage == 0 {
			return "-"
		}
		return fmt.Sprintf("%s (%d)", r.outage.Round(100*time.Millisecond), r.notAdopted)
	})
	add("apps started before a dependency", func(r *oshResult) string { return fmt.Sprintf("%d of %d checked", r.early, r.orderChecked) })
	return columns(rows)
}
