package inject

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// plan is what Mutate will do to a pod whose annotations are all valid.
type plan struct {
	// env is what every target container gets: DEPENDENCY_* in the order of the
	// environment contract (spec.Kinds), then ENTRYPOINT_TIMEOUT.
	env []corev1.EnvVar
	// targets are the containers to wrap, native sidecars first, each in pod order.
	targets []target
	// mode is how the resolver reaches the targets: the pod's annotation, else
	// the config's.
	mode InjectionMode
	// initIndex is where the install init container of ModeInitContainer goes
	// among the init containers: first, but after a service mesh's own.
	initIndex int
	// gated are the variables of node-free dependencies in gate mode, taken out of
	// env: the status annotation keeps them for the controller.
	gated []corev1.EnvVar
	// gateOnly: the gate holds the pod for every dependency, so no resolver is
	// injected and no container is changed; gated are all the variables, env
	// and targets' argv are empty.
	gateOnly bool
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

// planner checks a pod and collects every problem on the way, so a denial lists
// them all. It holds only newPlan's inputs, what is derived from them alone, and
// the problems: what one step finds and a later one needs is passed as an
// argument, so the order of the steps is in their signatures.
type planner struct {
	ctx       context.Context
	pod       *corev1.Pod
	ours      map[string]string // entrypoint.io/ annotations, by name without the prefix
	cfg       Config
	namespace string // default namespace of dependencies: the pod's
	problems  problems
	// kinds says what each container name is in the pod, built once: annotations
	// may name 100,000 containers.
	kinds map[string]containerKind
	// allowed is describeAllowed(runsAlongside), built when first needed.
	allowed string
}

// dependencies is what the dependency annotations and the timeout ask for.
type dependencies struct {
	// env are the resolver's variables, in the order of the environment contract,
	// then ENTRYPOINT_TIMEOUT; only those of valid annotations.
	env []corev1.EnvVar
	// source maps each variable in env to the annotation it comes from.
	source map[string]string
	// conflicts maps each variable a container must not set to the annotation it
	// conflicts with: those in source, and the variables a kind in source
	// supersedes or is superseded by (the resolver would read only one of them).
	conflicts map[string]string
	// waitedFor are the containers of the dependency-container annotation, once valid.
	waitedFor map[string]bool
}

// ctxCheckEvery is how many items of a list the planner handles between two looks
// at its context.
const ctxCheckEvery = 1024

// newPlan validates every annotation of pod and works out what to change. It
// returns the plan, or the problems found (every one counted), or the context's
// error when ctx ends first (the API server no longer waits for the answer).
//
// Each step takes what it needs of an earlier one as an argument (deps, targets,
// commands, images), so it cannot run before it; the order of the independent
// checks only decides the order in which a denial lists problems: unknown
// annotations, dependency annotations in the contract's order, the other
// annotations, then the containers. Gate mode is decided before the containers
// are looked at: a pod the gate holds for everything wraps none (gateOnlyPlan).
func newPlan(ctx context.Context, pod *corev1.Pod, ours map[string]string, cfg Config) (*plan, *problems, error) {
	pl := &planner{ctx: ctx, pod: pod, ours: ours, cfg: cfg, namespace: pod.Namespace, kinds: containerKinds(pod)}
	if pl.namespace == "" {
		pl.namespace = "default"
	}
	if err := pl.checkKeys(); err != nil {
		return nil, nil, err
	}
	deps := pl.dependencies()
	pl.checkInject()
	pl.checkGate()
	pl.checkInjectionMode()
	mode, modeWarnings := pl.injectionMode()
	kept, gated, gateWarnings := pl.gate(deps)
	if len(gated) > 0 && !needsResolver(kept) {
		return pl.gateOnlyPlan(deps)
	}
	p := &plan{env: kept, gated: gated, mode: mode, targets: pl.targets(true), initIndex: initContainerIndex(pod)}
	p.warnings = append(p.warnings, gateWarnings...)
	p.warnings = append(p.warnings, modeWarnings...)
	if err := pl.stopped(); err != nil {
		return nil, nil, err
	}
	commands := pl.commandAnnotations(p.targets)
	images := pl.lookUpImages(p.targets, commands)
	for i := range p.targets {
		if err := pl.stopped(); err != nil {
			return nil, nil, err
		}
		t := &p.targets[i]
		c := containerOf(pod, *t)
		t.argv = pl.originalArgv(c, *t, commands, images)
		pl.checkTarget(c, *t, p.initIndex, deps)
	}
	pl.checkNameClashes(mode)
	return pl.done(p)
}

// gateOnlyPlan is newPlan's end for a pod the gate holds for every dependency:
// no container is wrapped, so what only wrapping needs is neither checked nor
// looked up (a container's argv, its image's ENTRYPOINT, the names of the
// volume and init container, the injection mode). The annotations that choose
// the containers and their commands are still checked, so that a mistake in
// them shows now rather than when the pod gains a dependency the resolver
// checks; their commands are not used: each container runs its own argv.
func (pl *planner) gateOnlyPlan(deps dependencies) (*plan, *problems, error) {
	targets := pl.targets(false)
	if err := pl.stopped(); err != nil {
		return nil, nil, err
	}
	pl.commandAnnotations(targets)
	return pl.done(&plan{mode: ModeGateOnly, gated: deps.env, gateOnly: true})
}

// done returns p, or the problems found on the way, or the context's error.
func (pl *planner) done(p *plan) (*plan, *problems, error) {
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
	fixed := fixedKeys()
	for i, key := range sortedKeys(pl.ours) {
		if i%ctxCheckEvery == 0 {
			if err := pl.stopped(); err != nil {
				return err
			}
		}
		if isKnownKey(key, fixed) {
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

// dependencies parses every dependency annotation, kind by kind of spec.Kinds,
// the timeout, wait-for-failed-jobs and optional-after into the variables of the resolver's environment contract,
// values normalized by the kind's Format: every namespace spelled out, JSON compact
// with sorted keys.
func (pl *planner) dependencies() dependencies {
	d := dependencies{source: make(map[string]string, 4)}
	set := func(key, name, value string) {
		if value != "" {
			d.env = append(d.env, corev1.EnvVar{Name: name, Value: value})
			d.source[name] = key
		}
	}
	kinds := spec.Kinds()
	var tally itemTally
	for _, k := range kinds {
		pl.checkSuperseded(kinds, k)
		parsed, counts, ok := pl.parseKind(k, max(spec.MaxItems-tally.total.Items, 0))
		tally.add(k.Annotation, counts)
		if !ok {
			continue // its problems are reported
		}
		switch k.Env {
		case spec.EnvContainers:
			if len(parsed.Containers) == 0 {
				break
			}
			if !pl.checkNamesInPod(k.Annotation, "a container or native sidecar of this pod", runsAlongside) {
				continue // its problems are reported
			}
			d.waitedFor = make(map[string]bool, len(parsed.Containers))
			for _, name := range parsed.Containers {
				d.waitedFor[name] = true
			}
		case spec.EnvCEL:
			if !pl.checkCEL(k.Annotation, parsed.CEL) {
				continue // its problems are reported
			}
		}
		set(k.Annotation, k.Env, k.Format(parsed))
	}
	pl.checkLimits(tally)

	timeout, err := parseTimeout(pl.ours[keyTimeout])
	if err != nil {
		pl.invalidValue(keyTimeout, err)
	}
	set(keyTimeout, spec.EnvTimeout, timeout)
	waitFailed, err := parseBoolAnnotation(pl.ours[keyWaitFailed],
		`"true" to keep waiting on a failed Job in case it is re-run, or "false" (the default) to fail the wait`)
	if err != nil {
		pl.invalidValue(keyWaitFailed, err)
	}
	set(keyWaitFailed, spec.EnvWaitForFailedJobs, waitFailed)
	optionalAfter, err := parseTimeout(pl.ours[keyOptionalAfter])
	if err != nil {
		pl.invalidValue(keyOptionalAfter, err)
	}
	set(keyOptionalAfter, spec.EnvOptionalAfter, optionalAfter)

	d.conflicts = maps.Clone(d.source)
	for _, k := range kinds {
		if k.Supersedes == "" {
			continue
		}
		key, ok := d.source[k.Supersedes]
		if !ok {
			key, ok = d.source[k.Env]
		}
		if ok {
			d.conflicts[k.Supersedes], d.conflicts[k.Env] = key, key
		}
	}
	return d
}

// checkSuperseded reports annotating both kind k and a kind that supersedes it:
// the resolver would silently read only the superseding one.
func (pl *planner) checkSuperseded(kinds []spec.Kind, k spec.Kind) {
	if pl.ours[k.Annotation] == "" {
		return
	}
	for _, by := range kinds {
		if by.Supersedes == k.Env && pl.ours[by.Annotation] != "" {
			pl.invalid(annotationPath(by.Annotation), "annotations "+AnnotationPrefix+k.Annotation+" and "+
				AnnotationPrefix+by.Annotation+" are both set, and "+by.Conflict)
		}
	}
}

// parseKind parses the annotation of kind k, a long value in chunks (see
// parseChunked), into a Spec of its own, so that Format writes only this kind's
// items. It reports the problems and tells whether there were none.
//
// budget is how many more items the pod may have (see checkLimits): a long value
// is read only until its items are past it, which denies the pod whatever the
// rest holds. counts are the kind's items: those parsed, or, when the value was
// not read to its end, as many as it holds as written. They are zero when a
// value read to its end has problems: its items are not known.
func (pl *planner) parseKind(k spec.Kind, budget int) (*spec.Spec, spec.Counts, bool) {
	parsed := &spec.Spec{Namespace: pl.namespace}
	// Each chunk's items join the others as soon as they are parsed, duplicates
	// dropped, so that stop counts what the resolver would wait for.
	parse := func(value string) ([]struct{}, error) {
		part := &spec.Spec{Namespace: pl.namespace}
		err := k.Parse(part, value)
		if err == nil {
			k.Concat(parsed, []*spec.Spec{part})
		}
		return nil, err
	}
	stop := func() bool { return k.Count(parsed) > budget }
	var (
		ok      bool
		written int
	)
	if k.JSON {
		_, ok, written = parseJSONChunkedUntil(pl, k.Annotation, parse, stop)
	} else {
		_, ok, written = parseChunkedUntil(pl, k.Annotation, parse, stop)
	}
	switch {
	case written > 0:
		return nil, spec.Counts{Items: written, Selectors: countItems(parsed, k).Selectors}, false
	case !ok:
		return nil, spec.Counts{}, false
	}
	return parsed, countItems(parsed, k), true
}

// countItems is spec.Count of parsed, which holds items of kind k only, without
// going through the kinds table for each kind (TestCountItemsIsSpecCount keeps
// the two alike): the items that select by labels are the pods and the Jobs
// without a name.
func countItems(parsed *spec.Spec, k spec.Kind) spec.Counts {
	c := spec.Counts{Items: k.Count(parsed), Selectors: len(parsed.Pods)}
	for _, j := range parsed.Jobs {
		if j.Name == "" {
			c.Selectors++
		}
	}
	return c
}

// parseBoolAnnotation accepts "true" and "false"; "" when value is blank. expected
// tells the operator what each means.
func parseBoolAnnotation(value, expected string) (string, error) {
	switch value {
	case "", "true", "false":
		return value, nil
	}
	return "", &spec.ValueError{Value: value, Problem: `is neither "true" nor "false"`, Expected: expected}
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

// checkNameClashes reports what the pod already has under the names Mutate adds
// in mode: the volume in both, the init container in ModeInitContainer only.
// A pod injected before never gets here (it is skipped).
func (pl *planner) checkNameClashes(mode InjectionMode) {
	spec := field.NewPath("spec")
	if mode != ModeInitContainer {
		pl.checkVolumeClash(spec)
		return
	}
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
	pl.checkVolumeClash(spec)
}

// checkVolumeClash reports a volume of the pod named as the one Mutate adds.
func (pl *planner) checkVolumeClash(spec *field.Path) {
	for i := range pl.pod.Spec.Volumes {
		if pl.pod.Spec.Volumes[i].Name == VolumeName {
			pl.invalid(spec.Child("volumes").Index(i).Child("name"), "the pod already has a volume named "+quoted(VolumeName)+
				", the name of the volume the webhook adds, but its "+AnnotationStatus+
				" annotation does not say it was injected; rename that volume")
			break
		}
	}
}
