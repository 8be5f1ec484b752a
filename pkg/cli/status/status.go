// Package status finds the workloads whose pods wait for their dependencies, as
// the dependency controller published it on each pod: its condition
// entrypoint.io/DependenciesReady (pkg/api.ConditionType) and the scheduling
// gate of gate mode. Pods are grouped by the workload that owns them (a
// ReplicaSet's pods under their Deployment, a Job's under its CronJob).
package status

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// NotJudged is the reason of a pod the scheduling gate holds before the
// controller has set its condition.
const NotJudged = "-"

// Workload is one workload with pods waiting.
type Workload struct {
	Namespace string `json:"namespace"`
	// Name is kind/name, the kind in lower case ("deployment/web"), or
	// pod/NAME for a pod no workload owns.
	Name string `json:"workload"`
	// Waiting of Pods: the workload's pods the webhook manages that are not
	// finished, and how many of them wait.
	Waiting int `json:"waiting"`
	Pods    int `json:"pods"`
	// Reasons are the condition's reasons on the waiting pods, sorted
	// (NotJudged for a gated pod without the condition).
	Reasons []string `json:"reasons"`
	// Blockers are what the conditions' messages name, those that hold the
	// most pods first.
	Blockers []Blocker `json:"blockers"`
	// Unnamed is how many blockers a message did not name ("and 3 more"),
	// the most of any one pod.
	Unnamed int `json:"unnamed,omitempty"`
}

// Blocker is one dependency a condition names, and how many waiting pods it holds.
type Blocker struct {
	Name string `json:"name"`
	Pods int    `json:"pods"`
}

// Waiting tells whether pod waits for its dependencies: it is not finished nor
// being deleted, and the scheduling gate holds it or the controller's
// condition is not True. A pod without the condition and the gate has not
// been judged (or the controller does not run): it does not count.
func Waiting(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if c := condition(pod); c != nil && c.Status != corev1.ConditionTrue {
		return true
	}
	return slices.ContainsFunc(pod.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == inject.SchedulingGate })
}

func condition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == api.ConditionType {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// blockerItem is one "what: why" of a condition's message: what is a
// dependency as the controller writes it (pkg/resolve/kube's items), a kind
// then its name ("service ns/db", "cel apps/v1 Deployment ns/api"), up to the
// first ": ".
var blockerItem = regexp.MustCompile(`^((?:service|job|daemonset|container|pod|rollout|cel|cr|configmap|secret|pvc|crd|socket|tcp|http|https) \S.*?): `)

var andMore = regexp.MustCompile(`^and ([0-9]+) more$`)

// Blockers reads the dependencies a condition message names ("waiting for
// service ns/db: no endpoints; job ns/m: 0 active; and 2 more", or a cycle's
// "dependency cycle: ...; waiting for ..."), and how many it leaves unnamed.
// Text between the items that names none (a reason holding "; ") is skipped.
func Blockers(message string) (names []string, unnamed int) {
	_, rest, ok := strings.Cut(message, "waiting for ")
	if !ok {
		return nil, 0
	}
	for _, part := range strings.Split(rest, "; ") {
		if m := andMore.FindStringSubmatch(part); m != nil {
			unnamed, _ = strconv.Atoi(m[1])
			continue
		}
		if m := blockerItem.FindStringSubmatch(part); m != nil && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names, unnamed
}

// Options say where to look.
type Options struct {
	// Namespace is the namespace to read; "" reads every namespace.
	Namespace string
}

// owner is the controller of a pod or of its ReplicaSet or Job.
type owner struct {
	namespace, kind, name string
}

// List reads the pods the webhook manages (label entrypoint.io/managed=true),
// one LIST, and the ReplicaSets and Jobs that own pods in the namespaces where
// one waits, a GET each, and returns the workloads with waiting pods, by
// namespace and name.
func List(ctx context.Context, cs kubernetes.Interface, opts Options) ([]Workload, error) {
	sel := labels.SelectorFromSet(labels.Set{inject.LabelManaged: "true"}).String()
	pods, err := cs.CoreV1().Pods(opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		where := "namespace " + opts.Namespace
		if opts.Namespace == "" {
			where = "every namespace"
		}
		return nil, fmt.Errorf("listing the pods of %s labelled %s: %w", where, sel, err)
	}
	// The pods by their own controller. Only the owners in namespaces with a
	// waiting pod are read: all of them there, so that a Deployment in the
	// middle of a rollout counts the pods of both its ReplicaSets.
	type group struct {
		direct owner
		pods   []*corev1.Pod
	}
	groups := map[types.UID]*group{}
	var order []types.UID
	waitingIn := map[string]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		key, direct := p.UID, owner{p.Namespace, "Pod", p.Name}
		if ref := metav1.GetControllerOf(p); ref != nil {
			key, direct = ref.UID, owner{p.Namespace, ref.Kind, ref.Name}
		}
		g, ok := groups[key]
		if !ok {
			g = &group{direct: direct}
			groups[key] = g
			order = append(order, key)
		}
		g.pods = append(g.pods, p)
		waitingIn[p.Namespace] = waitingIn[p.Namespace] || Waiting(p)
	}
	byWorkload := map[owner]*Workload{}
	blockerPods := map[owner]map[string]int{}
	for _, key := range order {
		g := groups[key]
		if !waitingIn[g.direct.namespace] {
			continue
		}
		o, err := workloadOf(ctx, cs, g.direct)
		if err != nil {
			return nil, err
		}
		w, ok := byWorkload[o]
		if !ok {
			w = &Workload{Namespace: o.namespace, Name: strings.ToLower(o.kind) + "/" + o.name}
			byWorkload[o] = w
			blockerPods[o] = map[string]int{}
		}
		for _, p := range g.pods {
			w.Pods++
			if !Waiting(p) {
				continue
			}
			w.Waiting++
			reason := NotJudged
			if c := condition(p); c != nil {
				reason = c.Reason
				names, unnamed := Blockers(c.Message)
				for _, n := range names {
					blockerPods[o][n]++
				}
				w.Unnamed = max(w.Unnamed, unnamed)
			}
			if !slices.Contains(w.Reasons, reason) {
				w.Reasons = append(w.Reasons, reason)
			}
		}
	}
	out := make([]Workload, 0, len(byWorkload))
	for o, w := range byWorkload {
		if w.Waiting == 0 {
			continue
		}
		slices.Sort(w.Reasons)
		w.Blockers = []Blocker{}
		for name, n := range blockerPods[o] {
			w.Blockers = append(w.Blockers, Blocker{Name: name, Pods: n})
		}
		slices.SortFunc(w.Blockers, func(a, b Blocker) int {
			return cmp.Or(cmp.Compare(b.Pods, a.Pods), strings.Compare(a.Name, b.Name))
		})
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Workload) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

// workloadOf is the workload a pod's controller belongs to: a ReplicaSet's
// Deployment and a Job's CronJob, when they have one; the controller itself
// otherwise. An owner already deleted leaves the pod under the owner it names.
func workloadOf(ctx context.Context, cs kubernetes.Interface, o owner) (owner, error) {
	var meta metav1.Object
	var err error
	switch o.kind {
	case "ReplicaSet":
		meta, err = cs.AppsV1().ReplicaSets(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
	case "Job":
		meta, err = cs.BatchV1().Jobs(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
	default:
		return o, nil
	}
	switch {
	case apierrors.IsNotFound(err):
		return o, nil
	case err != nil:
		return o, fmt.Errorf("reading %s %s/%s, the owner of waiting pods: %w", strings.ToLower(o.kind), o.namespace, o.name, err)
	}
	if ref := metav1.GetControllerOf(meta); ref != nil && (ref.Kind == "Deployment" || ref.Kind == "CronJob") {
		return owner{o.namespace, ref.Kind, ref.Name}, nil
	}
	return o, nil
}
