package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

const commandForm = `a JSON array of strings, the program first: ["/path/to/app", "arg", ...]`

// commandAnnotations parses every entrypoint.io/command.<container> annotation, by
// container name. Each must name a container being wrapped.
func (pl *planner) commandAnnotations(targets []target) map[string][]string {
	var commands map[string][]string
	wrapped := make(map[string]bool, len(targets))
	for _, t := range targets {
		wrapped[t.name] = true
	}
	for _, key := range sortedKeys(pl.ours) {
		name, ok := strings.CutPrefix(key, keyCommandPrefix)
		if !ok {
			continue
		}
		if !wrapped[name] {
			pl.badCommandTarget(key, name, len(targets) > 0)
			continue
		}
		argv, err := parseCommand(pl.ours[key])
		if err != nil {
			pl.invalidValue(key, err)
			continue
		}
		if commands == nil {
			commands = make(map[string][]string, 1)
		}
		commands[name] = argv
	}
	return commands
}

// badCommandTarget reports a command annotation for a container that is not in
// the pod, or not wrapped; anyWrapped tells whether any container is.
func (pl *planner) badCommandTarget(key, name string, anyWrapped bool) {
	if pl.problems.full() {
		// Not shown: only count it, without the work of the message.
		if pl.kinds[name] == notInPod || anyWrapped || pl.ours[keyContainers] == "" {
			pl.problems.count(ReasonInvalidAnnotation)
		}
		return
	}
	kind := pl.kinds[name]
	switch {
	case kind == notInPod:
		msg := annotationName(key) + ": this pod has no container " + quoted(name)
		if len(validation.IsDNS1123Label(name)) > 0 {
			msg += " (a container name is a DNS-1123 label)"
		}
		pl.invalid(annotationPath(key), msg+"; expected "+AnnotationPrefix+keyCommandPrefix+"<container> for one of "+
			pl.allowedTargets())
	case anyWrapped || pl.ours[keyContainers] == "":
		// Not wrapped; stay quiet while entrypoint.io/containers itself is invalid,
		// since which containers are wrapped is unknown then.
		why := "it is not listed in annotation " + AnnotationPrefix + keyContainers
		if pl.ours[keyContainers] == "" {
			why = "only regular containers other than known sidecars are wrapped unless annotation " +
				AnnotationPrefix + keyContainers + " lists them"
		}
		pl.invalid(annotationPath(key), annotationName(key)+": container "+quoted(name)+" is not wrapped ("+why+
			"), so this command would not be used; wrap it, or remove this annotation")
	}
}

// parseCommand parses the value of a command annotation: a non-empty JSON array of
// strings whose first item, the program, is not empty.
func parseCommand(value string) ([]string, error) {
	bad := func(problem string) error {
		return &spec.ValueError{Value: value, Problem: problem, Expected: commandForm}
	}
	if !strings.HasPrefix(value, "[") {
		return nil, bad("is not a JSON array")
	}
	dec := json.NewDecoder(strings.NewReader(value))
	var argv []string
	if err := dec.Decode(&argv); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, bad("holds a JSON " + typeErr.Value + " where only strings are allowed")
		}
		return nil, bad("is not valid JSON (" + strings.TrimPrefix(err.Error(), "json: ") + ")")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("has more after the closing ']' of the JSON array")
	}
	switch {
	case len(argv) == 0:
		return nil, bad("is an empty array")
	case argv[0] == "":
		return nil, bad("has an empty program name as its first item")
	}
	return argv, nil
}

// imageLookup is the result of reading one image's config.
type imageLookup struct {
	config ImageConfig
	err    error
}

// originalArgv is the argv container c, target t, ran before being wrapped, by
// Kubernetes' rules: its command and args; else the command annotation (standing
// for the image's ENTRYPOINT) and its args; else the image's ENTRYPOINT, followed by
// its args if it has any, by the image's CMD if not. It reports a container whose
// argv cannot be known.
//
// Argv items taken from the annotation or the image are escaped for Kubernetes'
// $(VAR) expansion, which applies to args but never applied to them.
func (pl *planner) originalArgv(c *corev1.Container, t target, commands map[string][]string, images map[string]imageLookup) []string {
	if len(c.Command) > 0 {
		return concat(c.Command, c.Args)
	}
	if annotated, ok := commands[c.Name]; ok {
		return concat(escapeExpansion(annotated), c.Args)
	}
	found, looked := images[c.Image]
	reason := ReasonNoCommand
	switch {
	case pl.cfg.ImageConfig == nil || !looked:
	case found.err != nil:
		reason = ReasonImageLookupFailed
	default:
		argv := escapeExpansion(found.config.Entrypoint)
		if len(c.Args) > 0 {
			argv = concat(argv, c.Args)
		} else {
			argv = concat(argv, escapeExpansion(found.config.Cmd))
		}
		if len(argv) > 0 {
			return argv
		}
	}
	if pl.problems.full() {
		pl.problems.count(reason) // not shown: spare the message
		return nil
	}
	name := truncate(c.Name, maxQuotedBytes)
	hint := "; add annotation " + AnnotationPrefix + keyCommandPrefix + name + `: '["/path/to/app", "arg"]'`
	what := "has no command"
	if len(c.Args) > 0 {
		hint = "; add annotation " + AnnotationPrefix + keyCommandPrefix + name + `: '["/path/to/app"]' (its args are appended)`
		what = "has args but no command"
	}
	var why string
	switch {
	case pl.cfg.ImageConfig == nil || !looked:
		why = " and its image's entrypoint could not be read (registry lookup is off)"
	case found.err != nil:
		why = " and its image's entrypoint could not be read (image " + quoted(c.Image) + ": " +
			truncate(found.err.Error(), maxLookupErrorBytes) + ")"
	default:
		why = " and its image " + quoted(c.Image) + " has neither ENTRYPOINT nor CMD"
	}
	pl.problems.add(reason, containerPath(t).Child("command"), "container "+quoted(c.Name)+" "+what+why+hint)
	return nil
}

// maxLookupErrorBytes bounds what a denial repeats of a registry lookup's error.
const maxLookupErrorBytes = 300

// maxLookupsInFlight bounds the registry lookups of one pod made at once.
const maxLookupsInFlight = 4

// lookUpImages reads, at most maxLookupsInFlight at a time and all within
// Config.LookupBudget, the config of every image whose ENTRYPOINT decides the argv
// of a target: one without a command in its spec or a command annotation. Each
// image is read once. It returns the results by image; what was not read when the
// budget ran out, or the request's context ended, has the context's error. nil
// when nothing was looked up.
func (pl *planner) lookUpImages(targets []target, commands map[string][]string) map[string]imageLookup {
	if pl.cfg.ImageConfig == nil {
		return nil
	}
	var images []string
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		c := containerOf(pl.pod, t)
		if _, annotated := commands[c.Name]; len(c.Command) > 0 || annotated || seen[c.Image] {
			continue
		}
		seen[c.Image] = true
		images = append(images, c.Image)
	}
	if len(images) == 0 {
		return nil
	}
	ref := ImageRef{Namespace: pl.namespace, ServiceAccount: pl.pod.Spec.ServiceAccountName}
	if ref.ServiceAccount == "" {
		ref.ServiceAccount = "default"
	}
	for _, s := range pl.pod.Spec.ImagePullSecrets {
		ref.ImagePullSecrets = append(ref.ImagePullSecrets, s.Name)
	}

	ctx, cancel := context.WithTimeoutCause(pl.ctx, pl.cfg.LookupBudget,
		fmt.Errorf("the registry lookups of this pod took longer than %s in all", pl.cfg.LookupBudget))
	defer cancel()
	results := make([]imageLookup, len(images))
	slots := make(chan struct{}, maxLookupsInFlight)
	var wg sync.WaitGroup
	for i, image := range images {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			for j := i; j < len(images); j++ {
				results[j].err = fmt.Errorf("not looked up: %w", context.Cause(ctx))
			}
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r := ref
			r.Image = image
			config, err := pl.cfg.ImageConfig.ImageConfig(ctx, r)
			if err != nil && ctx.Err() != nil && !errors.Is(err, context.Cause(ctx)) {
				err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
			}
			results[i] = imageLookup{config: config, err: err}
		})
	}
	wg.Wait()
	byImage := make(map[string]imageLookup, len(images))
	for i, image := range images {
		byImage[image] = results[i]
	}
	return byImage
}

// escapeExpansion returns argv with every "$" doubled, so that Kubernetes' $(VAR)
// expansion of args gives back argv exactly.
func escapeExpansion(argv []string) []string {
	out := argv
	copied := false
	for i, a := range argv {
		if !strings.Contains(a, "$") {
			continue
		}
		if !copied {
			out = append([]string(nil), argv...)
			copied = true
		}
		out[i] = strings.ReplaceAll(a, "$", "$$")
	}
	return out
}

// concat returns a new slice holding a, then b.
func concat(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}
