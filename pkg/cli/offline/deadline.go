package offline

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// DefaultProgressDeadline is a Deployment's spec.progressDeadlineSeconds when
// it sets none.
const DefaultProgressDeadline = 600 * time.Second

// progressDeadlineField is where a Deployment sets it.
const progressDeadlineField = "spec.progressDeadlineSeconds"

// progressDeadlines warns about each injected Deployment of results whose pods
// may wait for their dependencies longer than its progress deadline, after
// which the Deployment controller marks the rollout failed
// (ProgressDeadlineExceeded) and Argo CD and kubectl rollout status report it
// so, although the pods only wait. The rule is conservative, from what the
// manifests say; a Deployment may wait that long when:
//
//   - its optional-after (ENTRYPOINT_OPTIONAL_AFTER) is longer than the
//     deadline: it is meant to wait that long;
//   - its timeout (ENTRYPOINT_TIMEOUT) is longer, and no optional-after within
//     the deadline lets the pods start;
//   - it waits for a Job of the same manifests (applied together: the Job's
//     whole run counts against the deadline) whose activeDeadlineSeconds is
//     longer than the deadline, and no optional-after within the deadline
//     lets the pods start.
//
// A Job without activeDeadlineSeconds is not warned about: how long it runs
// is not in the manifests, and most (a schema migration) are short.
// StatefulSets and DaemonSets have no progress deadline (kubectl rollout
// status waits for them): they are not warned about. Neither is a wait for
// objects of other kinds, whose time nothing in the manifests bounds.
func progressDeadlines(docs []*manifest.Document, results []Result, namespace string) {
	jobs := map[string]*int64{} // namespace/name of the manifests' Jobs: their activeDeadlineSeconds
	for _, d := range docs {
		if d.Kind() != "Job" {
			continue
		}
		var ads *int64
		if v, found := intField(d.Object, "spec", "activeDeadlineSeconds"); found {
			ads = &v
		}
		jobs[namespaceOf(d, namespace)+"/"+d.Name()] = ads
	}
	for i := range results {
		r := &results[i]
		if r.Doc.Kind() != "Deployment" || r.Mutated == nil {
			continue
		}
		if f, ok := progressDeadline(r.Doc, r.Mutated, namespaceOf(r.Doc, namespace), jobs); ok {
			r.Findings = append(r.Findings, f)
		}
	}
}

func namespaceOf(d *manifest.Document, namespace string) string {
	if ns := d.Namespace(); ns != "" {
		return ns
	}
	return namespace
}

func progressDeadline(d *manifest.Document, mutated *corev1.Pod, namespace string, jobs map[string]*int64) (Finding, bool) {
	deadline, set := DefaultProgressDeadline, false
	if v, found := intField(d.Object, "spec", "progressDeadlineSeconds"); found {
		deadline, set = time.Duration(v)*time.Second, true
	}
	pod := mutated.DeepCopy()
	pod.Namespace = namespace
	deps, _, err := inject.Dependencies(pod)
	if err != nil || deps == nil {
		return Finding{}, false
	}
	startsInTime := deps.OptionalAfter > 0 && deps.OptionalAfter <= deadline
	var why []string
	longest := time.Duration(0)
	if deps.OptionalAfter > deadline {
		why = append(why, fmt.Sprintf("its optional-after is %s", deps.OptionalAfter))
		longest = deps.OptionalAfter
	}
	if timeout := timeoutOf(pod); timeout > deadline && !startsInTime {
		why = append(why, fmt.Sprintf("its timeout is %s", timeout))
		longest = max(longest, timeout)
	}
	if !startsInTime {
		var long []string
		for _, j := range deps.Jobs {
			ads, ok := jobs[j.Namespace+"/"+j.Name]
			if ok && j.Name != "" && ads != nil && time.Duration(*ads)*time.Second > deadline {
				long = append(long, fmt.Sprintf("%s (activeDeadlineSeconds %d)", j, *ads))
				longest = max(longest, time.Duration(*ads)*time.Second)
			}
		}
		if len(long) > 0 {
			why = append(why, "it waits for Job "+strings.Join(long, ", ")+" of these manifests, which may run that long: its whole run counts against the deadline")
		}
	}
	if len(why) == 0 {
		return Finding{}, false
	}
	of := "the default, as spec.progressDeadlineSeconds is not set"
	if set {
		of = progressDeadlineField
	}
	message := fmt.Sprintf("its pods may wait for their dependencies longer than its progress deadline (%ds, %s): %s; "+
		"the Deployment controller then marks the rollout failed (ProgressDeadlineExceeded), and Argo CD and kubectl rollout status report the Deployment as failed while its pods only wait: "+
		"set %s to more than %d (the longest wait above), or shorten the wait",
		int64(deadline/time.Second), of, strings.Join(why, "; "), progressDeadlineField, int64(longest/time.Second))
	f := finding(d, "", SeverityWarning, message)
	if set {
		f.Line, f.Field = d.ObjectLineOf(progressDeadlineField), progressDeadlineField
	}
	return f, true
}

// timeoutOf is the resolver's timeout in pod (ENTRYPOINT_TIMEOUT, which the
// webhook sets from entrypoint.io/timeout): the longest of its containers'.
func timeoutOf(pod *corev1.Pod) time.Duration {
	var longest time.Duration
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		for _, e := range c.Env {
			if e.Name != spec.EnvTimeout {
				continue
			}
			if d, err := time.ParseDuration(e.Value); err == nil {
				longest = max(longest, d)
			}
		}
	}
	return longest
}

// intField is the integer at path of a manifest's object, as its YAML or JSON
// reader made it (an int, an int64, or a float64 without a fraction).
func intField(obj map[string]any, path ...string) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !found {
		return 0, false
	}
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}
