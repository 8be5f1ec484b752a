package inject

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

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
	// gated are the variables of node-free dependencies in gate mode, taken out of
	// env: the status annotation keeps them for the controller.
	gated []corev1.EnvVar
	// warnings are what was asked and not done, for Outcome.Warnings.
	warnings []string
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
	problems  problems
	// envSource maps each variable the plan sets to the annotation it comes from.
	envSource map[string]string
	// kinds says what each container name is in the pod, built once: annotations
	// may name 100,000 containers.
	kinds map[string]containerKind
	// waitedFor are the containers of entrypoint.io/dependency-container, once valid.
	waitedFor map[string]bool
	// allowed is describeAllowed(runsAlongside), built when first needed.
	allowed string
	// images are the registry lookups of the pod, by image, made once each.
	images map[string]imageLookup
	// pods are the parsed items of entrypoint.io/dependency-pod, which gate mode
	// splits by requireSameNode.
	pods []spec.PodRef
}

// ctxCheckEvery is how many items of a list the planner handles between two looks
// at its context.
const ctxCheckEvery = 1024

// newPlan validates every annotation of pod and works out what to change. It
// returns the plan, or the problems found (every one counted), or the context's
// error when ctx ends first (the API server no longer waits for the answer).
func newPlan(ctx context.Context, pod *corev1.Pod, ours map[string]string, cfg Config) (*plan, *problems, error) {
	pl := &planner{ctx: ctx, pod: pod, ours: ours, cfg: cfg, namespace: pod.Namespace, kinds: containerKinds(pod)}
	if pl.namespace == "" {
		pl.namespace = "default"
	}
	if err := pl.checkKeys(); err != nil {
		return nil, nil, err
	}
	p := &plan{env: pl.dependencyEnv()}
	pl.checkInject()
	pl.checkGate()
	p.targets = pl.targets()
	p.initIndex = initContainerIndex(pod)
	if err := pl.stopped(); err != nil {
		return nil, nil, err
	}
	commands := pl.commandAnnotations(p.targets)
	pl.lookUpImages(p.targets, commands)
	for i := range p.targets {
		if err := pl.stopped(); err != nil {
			return nil, nil, err
		}
		t := &p.targets[i]
		c := containerOf(pod, *t)
		t.argv = pl.originalArgv(c, *t, commands)
		pl.checkTarget(c, *t, p.initIndex)
	}
	pl.checkNameClashes()
	pl.gate(p)
	if err := pl.stopped(); err != nil {
		return nil, nil, err
	}
	if pl.problems.any() {
		return nil, &pl.problems, nil
	}
	return p, nil, nil
}

// stopped returns, wrapped, the error of the planner's context once it is done.
func (pl *planner) stopped() error {
	if err := pl.ctx.Err(); err != nil {
		return fmt.Errorf("stopped checking the pod before the end: %w", err)
	}
	return nil
}

// annotationPath is where annotation key (without the prefix) is in a pod, for
// field errors; a long key is cut.
func annotationPath(key string) *field.Path {
	return field.NewPath("metadata", "annotations").Key(AnnotationPrefix + truncate(key, maxQuotedBytes))
}

// containerPath is where target t is in the pod.
func containerPath(t target) *field.Path {
	if t.sidecar {
		return field.NewPath("spec", "initContainers").Index(t.index)
	}
	return field.NewPath("spec", "containers").Index(t.index)
}

// invalid records a problem with the annotations, at path.
func (pl *planner) invalid(path *field.Path, message string) {
	pl.problems.add(ReasonInvalidAnnotation, path, message)
}

// invalidValue records every problem in err, which a spec parser returned for the
// value of annotation key. Only problems that will be shown are rendered.
func (pl *planner) invalidValue(key string, err error) {
	path := annotationPath(key)
	valueErrs := spec.ValueErrors(err)
	if len(valueErrs) == 0 {
		pl.invalid(path, spec.WithName(annotationName(key), err).Error())
		return
	}
	for _, ve := range valueErrs {
		if pl.problems.full() {
			pl.problems.count(ReasonInvalidAnnotation)
			continue
		}
		named := *ve
		named.Name = annotationName(key)
		pl.invalid(path, named.Error())
	}
}

// checkKeys reports every entrypoint.io/ annotation this package does not know.
func (pl *planner) checkKeys() error {
	var names []string
	for i, key := range sortedKeys(pl.ours) {
		if i%ctxCheckEvery == 0 {
			if err := pl.stopped(); err != nil {
				return err
			}
		}
		if isKnownKey(key) {
			continue
		}
		// Only a shown problem is worth the search for a suggestion.
		if pl.problems.full() {
			pl.problems.count(ReasonInvalidAnnotation)
			continue
		}
		if names == nil {
			names = containerNames(pl.pod)
		}
		pl.invalid(annotationPath(key), unknownKeyProblem(key, names))
	}
	return nil
}

// checkInject accepts "true" and "false" ("false" never gets here: it skips the pod).
func (pl *planner) checkInject() {
	v, ok := pl.ours[keyInject]
	if !ok || v == "true" || v == "false" {
		return
	}
	pl.invalid(annotationPath(keyInject), (&spec.ValueError{
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

	objects := func(parse func(string, string) ([]spec.ObjectRef, error)) func(string) ([]spec.ObjectRef, error) {
		return func(v string) ([]spec.ObjectRef, error) { return parse(v, ns) }
	}
	services, _ := parseChunked(pl, keyService, objects(spec.ParseServiceList))
	set(keyService, spec.EnvServices, joinObjectRefs(services), nil)

	// The resolver reads only DEPENDENCY_JOBS_JSON when both job variables are set,
	// so both annotations at once would silently drop one of them.
	if pl.ours[keyJob] != "" && pl.ours[keyJobJSON] != "" {
		pl.invalid(annotationPath(keyJobJSON), "annotations "+AnnotationPrefix+keyJob+" and "+AnnotationPrefix+keyJobJSON+
			" are both set, and the resolver would wait only for the jobs of the JSON one; "+
			`list every job in one of them (a named job in JSON is {"name":"..."})`)
	}
	jobs, _ := parseChunked(pl, keyJob, objects(spec.ParseObjectList))
	set(keyJob, spec.EnvJobs, joinObjectRefs(jobs), nil)
	jobsJSON, _ := parseJSONChunked(pl, keyJobJSON, func(v string) ([]spec.JobRef, error) { return spec.ParseJobsJSON(v, ns) })
	set(keyJobJSON, spec.EnvJobsJSON, encodeJobs(jobsJSON), nil)

	daemonSets, _ := parseChunked(pl, keyDaemonSet, objects(spec.ParseObjectList))
	set(keyDaemonSet, spec.EnvDaemonSets, joinObjectRefs(daemonSets), nil)

	containers, _ := parseChunked(pl, keyContainer, spec.ParseNames)
	if len(containers) > 0 {
		if pl.checkNamesInPod(keyContainer, "a container or native sidecar of this pod", runsAlongside) {
			pl.waitedFor = make(map[string]bool, len(containers))
			for _, name := range containers {
				pl.waitedFor[name] = true
			}
		} else {
			containers = nil // its problems are reported
		}
	}
	set(keyContainer, spec.EnvContainers, strings.Join(containers, ","), nil)

	pods, _ := parseJSONChunked(pl, keyPod, func(v string) ([]spec.PodRef, error) { return spec.ParsePodsJSON(v, ns) })
	set(keyPod, spec.EnvPodsJSON, encodePods(pods), nil)
	pl.pods = pods
	resources, _ := parseJSONChunked(pl, keyCustomResource, func(v string) ([]spec.CustomResourceRef, error) {
		return spec.ParseCustomResourcesJSON(v, ns)
	})
	set(keyCustomResource, spec.EnvCustomResources, encodeCustomResources(resources), nil)

	configs, _ := parseChunked(pl, keyConfig, spec.ParsePaths)
	set(keyConfig, spec.EnvConfigs, strings.Join(configs, ","), nil)
	sockets, _ := parseChunked(pl, keySocket, spec.ParsePaths)
	set(keySocket, spec.EnvSockets, strings.Join(sockets, ","), nil)
	tcp, _ := parseChunked(pl, keyTCP, spec.ParseTCP)
	set(keyTCP, spec.EnvTCP, strings.Join(tcp, ","), nil)
	http, _ := parseChunked(pl, keyHTTP, spec.ParseHTTP)
	set(keyHTTP, spec.EnvHTTP, strings.Join(http, ","), nil)

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
// messages. It reports each item that is not, and tells whether all are.
func (pl *planner) checkNamesInPod(key, what string, ok func(containerKind) bool) bool {
	value := pl.ours[key]
	multiple := strings.Contains(value, ",")
	var expected string // rendered for the first problem shown only
	good := true
	i := 0
	for item := range strings.SplitSeq(value, ",") {
		i++
		if i%ctxCheckEvery == 0 && pl.ctx.Err() != nil {
			return false // newPlan reports why
		}
		item = strings.TrimSpace(item)
		kind := pl.kinds[item]
		if ok(kind) {
			continue
		}
		good = false
		if pl.problems.full() {
			pl.problems.count(ReasonInvalidAnnotation)
			continue
		}
		if expected == "" {
			expected = "names of " + pl.describeAllowed(ok) + ", comma-separated"
		}
		ve := &spec.ValueError{
			Name:     annotationName(key),
			Value:    value,
			Item:     i,
			Problem:  "is not " + what + describeKind(kind),
			Expected: expected,
		}
		if multiple {
			ve.ItemText = item
		}
		pl.invalid(annotationPath(key), ve.Error())
	}
	return good
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

// maxListedNames is how many container names a message lists before "and N more".
const maxListedNames = 10

// describeAllowed lists the pod's containers that ok accepts: "this pod's containers (app, worker)".
// Only runsAlongside is asked for more than once per pod, so that one is kept.
func (pl *planner) describeAllowed(ok func(containerKind) bool) string {
	var names []string
	for _, name := range containerNames(pl.pod) {
		if ok(pl.kinds[name]) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "this pod's containers (none qualifies)"
	}
	return "this pod's containers (" + listNames(names) + ")"
}

// allowedTargets is describeAllowed(runsAlongside), computed once.
func (pl *planner) allowedTargets() string {
	if pl.allowed == "" {
		pl.allowed = pl.describeAllowed(runsAlongside)
	}
	return pl.allowed
}

// listNames joins names with ", ", each cut to a sane length, at most
// maxListedNames of them: the API server has not validated names yet when the
// webhook sees them.
func listNames(names []string) string {
	var b strings.Builder
	for i, name := range names {
		if i == maxListedNames {
			b.WriteString(", ... and " + thousands(len(names)-i) + " more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(truncate(name, maxQuotedBytes))
	}
	return b.String()
}

// checkNameClashes reports what the pod already has under the names Mutate adds.
// A pod injected before never gets here (it is skipped).
func (pl *planner) checkNameClashes() {
	spec := field.NewPath("spec")
	if pl.kinds[InitContainerName] != notInPod {
		path := containerNamed(pl.pod, InitContainerName)
		pl.invalid(path.Child("name"), "the pod already has a container named "+quoted(InitContainerName)+
			", the name of the init container the webhook adds, but its "+AnnotationStatus+
			" annotation does not say it was injected; rename that container")
	}
	for i := range pl.pod.Spec.EphemeralContainers {
		if pl.pod.Spec.EphemeralContainers[i].Name == InitContainerName {
			pl.invalid(spec.Child("ephemeralContainers").Index(i).Child("name"), "the pod already has an ephemeral container named "+
				quoted(InitContainerName)+", the name of the init container the webhook adds; rename that container")
		}
	}
	for i := range pl.pod.Spec.Volumes {
		if pl.pod.Spec.Volumes[i].Name == VolumeName {
			pl.invalid(spec.Child("volumes").Index(i).Child("name"), "the pod already has a volume named "+quoted(VolumeName)+
				", the name of the volume the webhook adds, but its "+AnnotationStatus+
				" annotation does not say it was injected; rename that volume")
			break
		}
	}
}
