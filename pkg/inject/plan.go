package inject

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// envTimeout is the resolver's timeout variable (cmd/entrypoint, --timeout).
const envTimeout = "ENTRYPOINT_TIMEOUT"

// plan is what Mutate will do to a pod whose annotations are all valid.
type plan struct {
	// env is what every target container gets: DEPENDENCY_* in the order of the
	// environment contract, then ENTRYPOINT_TIMEOUT.
	env []corev1.EnvVar
	// targets are the containers to wrap, native sidecars first, each in pod order.
	targets []target
	// initIndex is where the install init container goes among the init containers:
	// first, but after a service mesh's own.
	initIndex int
}

// target is one container to wrap and the argv it ran before.
type target struct {
	name    string
	sidecar bool // a native sidecar, in spec.initContainers; else in spec.containers
	index   int
	argv    []string
}

func (p *plan) targetNames() []string {
	names := make([]string, len(p.targets))
	for i, t := range p.targets {
		names[i] = t.name
	}
	return names
}

// planner builds a plan from a pod and collects every problem on the way, so a
// denial lists them all.
type planner struct {
	ctx       context.Context
	pod       *corev1.Pod
	ours      map[string]string // entrypoint.io/ annotations, by name without the prefix
	cfg       Config
	namespace string // default namespace of dependencies: the pod's
	problems  []problem
	// envSource maps each variable the plan sets to the annotation it comes from.
	envSource map[string]string
	// images caches registry lookups by image, for pods running one image twice.
	images map[string]imageLookup
}

// newPlan validates every annotation of pod and works out what to change. It
// returns the plan, or every problem found.
func newPlan(ctx context.Context, pod *corev1.Pod, ours map[string]string, cfg Config) (*plan, []problem) {
	pl := &planner{ctx: ctx, pod: pod, ours: ours, cfg: cfg, namespace: pod.Namespace}
	if pl.namespace == "" {
		pl.namespace = "default"
	}
	pl.checkKeys()
	p := &plan{env: pl.dependencyEnv()}
	pl.checkInject()
	p.targets = pl.targets()
	p.initIndex = initContainerIndex(pod)
	commands := pl.commandAnnotations(p.targets)
	for i := range p.targets {
		t := &p.targets[i]
		c := containerOf(pod, *t)
		t.argv = pl.originalArgv(c, commands)
		pl.checkTarget(c, *t, p.initIndex)
	}
	pl.checkNameClashes()
	if len(pl.problems) > 0 {
		return nil, pl.problems
	}
	return p, nil
}

// invalid records a problem with the annotations.
func (pl *planner) invalid(message string) {
	pl.problems = append(pl.problems, problem{reason: ReasonInvalidAnnotation, message: message})
}

// invalidValue records every problem in err, which a spec parser returned for the
// value of annotation key.
func (pl *planner) invalidValue(key string, err error) {
	named := spec.WithName(annotationName(key), err)
	valueErrs := spec.ValueErrors(named)
	if len(valueErrs) == 0 {
		pl.invalid(named.Error())
		return
	}
	for _, ve := range valueErrs {
		pl.invalid(ve.Error())
	}
}

// checkKeys reports every entrypoint.io/ annotation this package does not know.
func (pl *planner) checkKeys() {
	var names []string
	for _, key := range sortedKeys(pl.ours) {
		if isKnownKey(key) {
			continue
		}
		if names == nil {
			names = containerNames(pl.pod)
		}
		pl.invalid(unknownKeyProblem(key, names))
	}
}

// checkInject accepts "true" and "false" ("false" never gets here: it skips the pod).
func (pl *planner) checkInject() {
	v, ok := pl.ours[keyInject]
	if !ok || v == "true" || v == "false" {
		return
	}
	pl.invalid((&spec.ValueError{
		Name:     annotationName(keyInject),
		Value:    v,
		Problem:  `is neither "true" nor "false"`,
		Expected: `"true", or "false" to opt the pod out`,
	}).Error())
}

// dependencyEnv parses every dependency annotation and the timeout into the
// variables of the resolver's environment contract, values normalized: services and
// other objects always as namespace:name, JSON compact with sorted keys.
func (pl *planner) dependencyEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	pl.envSource = make(map[string]string, 4)
	set := func(key, name, value string, err error) {
		if err != nil {
			pl.invalidValue(key, err)
			return
		}
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
			pl.envSource[name] = key
		}
	}
	ns := pl.namespace

	services, err := spec.ParseServiceList(pl.ours[keyService], ns)
	set(keyService, spec.EnvServices, joinObjectRefs(services), err)

	// The resolver reads only DEPENDENCY_JOBS_JSON when both job variables are set,
	// so both annotations at once would silently drop one of them.
	if pl.ours[keyJob] != "" && pl.ours[keyJobJSON] != "" {
		pl.invalid("annotations " + AnnotationPrefix + keyJob + " and " + AnnotationPrefix + keyJobJSON +
			" are both set, and the resolver would wait only for the jobs of the JSON one; " +
			`list every job in one of them (a named job in JSON is {"name":"..."})`)
	}
	jobs, err := spec.ParseObjectList(pl.ours[keyJob], ns)
	set(keyJob, spec.EnvJobs, joinObjectRefs(jobs), err)
	jobsJSON, err := spec.ParseJobsJSON(pl.ours[keyJobJSON], ns)
	set(keyJobJSON, spec.EnvJobsJSON, encodeJobs(jobsJSON), err)

	daemonSets, err := spec.ParseObjectList(pl.ours[keyDaemonSet], ns)
	set(keyDaemonSet, spec.EnvDaemonSets, joinObjectRefs(daemonSets), err)

	containers, err := spec.ParseNames(pl.ours[keyContainer])
	if err == nil && len(containers) > 0 {
		err = pl.checkNamesInPod(keyContainer, "a container or native sidecar of this pod", runsAlongside)
	}
	set(keyContainer, spec.EnvContainers, strings.Join(containers, ","), err)

	pods, err := spec.ParsePodsJSON(pl.ours[keyPod], ns)
	set(keyPod, spec.EnvPodsJSON, encodePods(pods), err)
	resources, err := spec.ParseCustomResourcesJSON(pl.ours[keyCustomResource], ns)
	set(keyCustomResource, spec.EnvCustomResources, encodeCustomResources(resources), err)

	configs, err := spec.ParsePaths(pl.ours[keyConfig])
	set(keyConfig, spec.EnvConfigs, strings.Join(configs, ","), err)
	sockets, err := spec.ParsePaths(pl.ours[keySocket])
	set(keySocket, spec.EnvSockets, strings.Join(sockets, ","), err)
	tcp, err := spec.ParseTCP(pl.ours[keyTCP])
	set(keyTCP, spec.EnvTCP, strings.Join(tcp, ","), err)
	http, err := spec.ParseHTTP(pl.ours[keyHTTP])
	set(keyHTTP, spec.EnvHTTP, strings.Join(http, ","), err)

	timeout, err := parseTimeout(pl.ours[keyTimeout])
	set(keyTimeout, envTimeout, timeout, err)
	return env
}

// parseTimeout parses a Go duration greater than zero; "" when value is blank.
func parseTimeout(value string) (string, error) {
	if value == "" {
		return "", nil
	}
	d, err := time.ParseDuration(value)
	problem := ""
	switch {
	case err != nil:
		problem = "is not a Go duration"
	case d <= 0:
		problem = "is not greater than zero"
	}
	if problem != "" {
		return "", &spec.ValueError{Value: value, Problem: problem, Expected: "a Go duration greater than zero, such as 90s, 10m or 1h30m"}
	}
	return d.String(), nil
}

// checkNamesInPod checks that every item of the annotation key, a list of container
// names that spec.ParseNames accepted, is what ok says it must be: what names it in
// messages. It returns the problems found as one error.
func (pl *planner) checkNamesInPod(key, what string, ok func(containerKind) bool) error {
	value := pl.ours[key]
	items := strings.Split(value, ",")
	var errs []error
	for i, item := range items {
		item = strings.TrimSpace(item)
		kind := kindOf(pl.pod, item)
		if ok(kind) {
			continue
		}
		ve := &spec.ValueError{
			Value:    value,
			Item:     i + 1,
			Problem:  "is not " + what + describeKind(kind),
			Expected: "names of " + describeAllowed(pl.pod, ok) + ", comma-separated",
		}
		if len(items) > 1 {
			ve.ItemText = item
		}
		errs = append(errs, ve)
	}
	return joinErrors(errs)
}

// describeKind adds what a rejected name is, when it is in the pod at all.
func describeKind(kind containerKind) string {
	switch kind {
	case plainInitContainer:
		return " (it is a plain init container, which runs to completion before the app starts)"
	case regularContainer:
		return " (it is a regular container)"
	case nativeSidecar:
		return " (it is a native sidecar)"
	}
	return ""
}

// describeAllowed lists the pod's containers that ok accepts: "this pod's containers (app, worker)".
func describeAllowed(pod *corev1.Pod, ok func(containerKind) bool) string {
	var names []string
	for _, name := range containerNames(pod) {
		if ok(kindOf(pod, name)) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "this pod's containers (none qualifies)"
	}
	return "this pod's containers (" + strings.Join(names, ", ") + ")"
}

// checkNameClashes reports what the pod already has under the names Mutate adds.
// A pod injected before never gets here (it is skipped).
func (pl *planner) checkNameClashes() {
	if kindOf(pl.pod, InitContainerName) != notInPod {
		pl.invalid("the pod already has a container named " + quoted(InitContainerName) +
			", the name of the init container the webhook adds, but its " + AnnotationStatus +
			" annotation does not say it was injected; rename that container")
	}
	for i := range pl.pod.Spec.EphemeralContainers {
		if pl.pod.Spec.EphemeralContainers[i].Name == InitContainerName {
			pl.invalid("the pod already has an ephemeral container named " + quoted(InitContainerName) +
				", the name of the init container the webhook adds; rename that container")
		}
	}
	if hasVolume(pl.pod, VolumeName) {
		pl.invalid("the pod already has a volume named " + quoted(VolumeName) +
			", the name of the volume the webhook adds, but its " + AnnotationStatus +
			" annotation does not say it was injected; rename that volume")
	}
}
