package inject

import (
	"encoding/json"
	"errors"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

const commandForm = `a JSON array of strings, the program first: ["/path/to/app", "arg", ...]`

// commandAnnotations parses every entrypoint.io/command.<container> annotation, by
// container name. Each must name a container being wrapped.
func (pl *planner) commandAnnotations(targets []target) map[string][]string {
	var commands map[string][]string
	for _, key := range sortedKeys(pl.ours) {
		name, ok := strings.CutPrefix(key, keyCommandPrefix)
		if !ok {
			continue
		}
		if !pl.checkCommandTarget(key, name, targets) {
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

// checkCommandTarget reports a command annotation for a container that is not in
// the pod, or not wrapped.
func (pl *planner) checkCommandTarget(key, name string, targets []target) bool {
	for _, t := range targets {
		if t.name == name {
			return true
		}
	}
	kind := kindOf(pl.pod, name)
	switch {
	case kind == notInPod:
		msg := annotationName(key) + ": this pod has no container " + quoted(name)
		if len(validation.IsDNS1123Label(name)) > 0 {
			msg += " (a container name is a DNS-1123 label)"
		}
		pl.invalid(msg + "; expected " + AnnotationPrefix + keyCommandPrefix + "<container> for one of " +
			describeAllowed(pl.pod, runsAlongside))
	case len(targets) > 0 || pl.ours[keyContainers] == "":
		// Not wrapped; stay quiet while entrypoint.io/containers itself is invalid,
		// since which containers are wrapped is unknown then.
		why := "it is not listed in annotation " + AnnotationPrefix + keyContainers
		if pl.ours[keyContainers] == "" {
			why = "only regular containers other than known sidecars are wrapped unless annotation " +
				AnnotationPrefix + keyContainers + " lists them"
		}
		pl.invalid(annotationName(key) + ": container " + quoted(name) + " is not wrapped (" + why +
			"), so this command would not be used; wrap it, or remove this annotation")
	}
	return false
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

// originalArgv is the argv container c ran before being wrapped, by Kubernetes'
// rules: its command and args; else the command annotation (standing for the
// image's ENTRYPOINT) and its args; else the image's ENTRYPOINT, followed by its
// args if it has any, by the image's CMD if not. It reports a container whose argv
// cannot be known.
//
// Argv items taken from the annotation or the image are escaped for Kubernetes'
// $(VAR) expansion, which applies to args but never applied to them.
func (pl *planner) originalArgv(c *corev1.Container, commands map[string][]string) []string {
	if len(c.Command) > 0 {
		return concat(c.Command, c.Args)
	}
	if annotated, ok := commands[c.Name]; ok {
		return concat(escapeExpansion(annotated), c.Args)
	}
	hint := "; add annotation " + AnnotationPrefix + keyCommandPrefix + c.Name + `: '["/path/to/app", "arg"]'`
	what := "has no command"
	if len(c.Args) > 0 {
		hint = "; add annotation " + AnnotationPrefix + keyCommandPrefix + c.Name + `: '["/path/to/app"]' (its args are appended)`
		what = "has args but no command"
	}
	if pl.cfg.ImageConfig == nil {
		pl.problems = append(pl.problems, problem{reason: ReasonNoCommand, message: "container " + quoted(c.Name) + " " + what +
			" and its image's entrypoint could not be read (registry lookup is off)" + hint})
		return nil
	}
	found := pl.imageConfig(c.Image)
	if found.err != nil {
		pl.problems = append(pl.problems, problem{reason: ReasonImageLookupFailed, message: "container " + quoted(c.Name) + " " + what +
			" and its image's entrypoint could not be read (image " + quoted(c.Image) + ": " + found.err.Error() + ")" + hint})
		return nil
	}
	argv := escapeExpansion(found.config.Entrypoint)
	if len(c.Args) > 0 {
		argv = concat(argv, c.Args)
	} else {
		argv = concat(argv, escapeExpansion(found.config.Cmd))
	}
	if len(argv) == 0 {
		pl.problems = append(pl.problems, problem{reason: ReasonNoCommand, message: "container " + quoted(c.Name) + " " + what +
			" and its image " + quoted(c.Image) + " has neither ENTRYPOINT nor CMD" + hint})
		return nil
	}
	return argv
}

// imageConfig reads the config of image once per pod.
func (pl *planner) imageConfig(image string) imageLookup {
	if found, ok := pl.images[image]; ok {
		return found
	}
	pullSecrets := make([]string, 0, len(pl.pod.Spec.ImagePullSecrets))
	for _, s := range pl.pod.Spec.ImagePullSecrets {
		pullSecrets = append(pullSecrets, s.Name)
	}
	serviceAccount := pl.pod.Spec.ServiceAccountName
	if serviceAccount == "" {
		serviceAccount = "default"
	}
	config, err := pl.cfg.ImageConfig.ImageConfig(pl.ctx, ImageRef{
		Image:            image,
		Namespace:        pl.namespace,
		ServiceAccount:   serviceAccount,
		ImagePullSecrets: pullSecrets,
	})
	found := imageLookup{config: config, err: err}
	if pl.images == nil {
		pl.images = make(map[string]imageLookup, 1)
	}
	pl.images[image] = found
	return found
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
