// Package offline runs the entrypoint webhook's own mutation and validation
// (pkg/inject, the code the webhook calls for each pod) on manifests, without a
// cluster: lint reports its denials at their lines in the files, inject prints
// the objects as the webhook would change their pods.
package offline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Severities of a Finding.
const (
	// SeverityError is a denial by the webhook: the pod would not be created.
	SeverityError = "error"
	// SeverityNote is something the webhook decides and this offline run could not.
	SeverityNote = "note"
	// SeverityWarning is something the webhook admits that is likely to go
	// wrong in the cluster (a Deployment's progress deadline).
	SeverityWarning = "warning"
)

// Finding is one problem or note about one object, at a line of its file.
type Finding struct {
	Source    string `json:"file"`
	Line      int    `json:"line"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Field is the path in the object (for a workload, below its pod template).
	Field    string `json:"field,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// String is the finding as compilers print theirs: file:line: what: message.
// The file, kind and names are escaped (safetext.Escape): written by whoever
// wrote the manifest, none can break the line. The message is as the webhook
// wrote it; the caller escapes it (it may span lines).
func (f Finding) String() string {
	what := f.Kind
	if f.Name != "" {
		what += " " + f.Name
		if f.Namespace != "" {
			what = f.Kind + " " + f.Namespace + "/" + f.Name
		}
	}
	sev := ""
	if f.Severity == SeverityNote || f.Severity == SeverityWarning {
		sev = f.Severity + ": "
	}
	return fmt.Sprintf("%s:%d: %s%s: %s", safetext.Escape(f.Source), f.Line, sev, safetext.Escape(what), f.Message)
}

// Options are how the webhook is deployed, as far as its decision about a pod
// goes, and what stands in for what only a cluster knows.
type Options struct {
	// Config is the webhook's (entrypoint-webhook's flags --image,
	// --controller, --gate-all-namespaces ...). Config.NamespaceGated and
	// Config.NamespaceAdopted apply to every object. With Config.ImageConfig nil, containers without a command
	// are handled as Lint and Inject say.
	Config inject.Config
	// Namespace is the namespace of objects that name none (kubectl's -n).
	Namespace string
}

// Result is what the webhook would do with one document's pod.
type Result struct {
	Doc      *manifest.Document
	Outcome  inject.Outcome
	Mutated  *corev1.Pod // nil unless injected
	Findings []Finding
}

// Lint runs the webhook's validation on each document that holds a pod. Without
// a registry lookup in opts, containers that set no command are given an argv
// from their image as the webhook's lookup would, and each gets a note saying the
// registry was not read: only then do the other problems of such a pod show.
//
// Lint also warns about Deployments whose pods may wait longer than their
// progress deadline (progressDeadlines).
func Lint(ctx context.Context, docs []*manifest.Document, opts Options) ([]Result, error) {
	results, err := run(ctx, docs, opts, opts.Config.ImageConfig == nil)
	if err != nil {
		return nil, err
	}
	progressDeadlines(docs, results, opts.Namespace)
	return results, nil
}

// Inject runs the webhook's mutation on each document that holds a pod and puts
// the mutated pod back into the document (for a workload, into its template).
// Without a registry lookup, containers without command are denied as the
// webhook with --registry-lookup=false denies them.
func Inject(ctx context.Context, docs []*manifest.Document, opts Options) ([]Result, error) {
	results, err := run(ctx, docs, opts, false)
	if err != nil {
		return nil, err
	}
	for i := range results {
		r := &results[i]
		if r.Mutated == nil {
			continue
		}
		if err := r.Doc.SetPod(r.Mutated); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", r.Doc.Source, r.Doc.Line, err)
		}
	}
	return results, nil
}

func run(ctx context.Context, docs []*manifest.Document, opts Options, assumeImageArgv bool) ([]Result, error) {
	var results []Result
	for _, d := range docs {
		pod, ok, err := d.Pod()
		if !ok {
			continue
		}
		r := Result{Doc: d}
		r.Findings = append(r.Findings, misplaced(d)...)
		if err != nil {
			r.Outcome = inject.Outcome{Result: inject.ResultDenied, Reason: inject.ReasonInvalidAnnotation, Message: err.Error()}
			r.Findings = append(r.Findings, finding(d, "", SeverityError, err.Error()))
			results = append(results, r)
			continue
		}
		cfg := opts.Config
		var assumed *assumedImages
		if assumeImageArgv {
			assumed = &assumedImages{}
			cfg.ImageConfig = assumed
		}
		// The pod's namespace decides that of dependencies without one: a
		// template's pods are in the workload's namespace, and objects without
		// one go where kubectl would put them (-n).
		original := pod.Namespace
		switch {
		case pod.Namespace != "":
		case d.Namespace() != "":
			pod.Namespace = d.Namespace()
		default:
			pod.Namespace = opts.Namespace
		}
		mutated, outcome, err := inject.Mutate(ctx, pod, cfg)
		r.Outcome = outcome
		var denied *inject.DeniedError
		switch {
		case outcome.Result == inject.ResultInjected:
			mutated.Namespace = original
			r.Mutated = mutated
		case errors.As(err, &denied):
			for _, p := range denied.Problems {
				f := finding(d, p.Field, SeverityError, p.Detail)
				r.Findings = append(r.Findings, f)
			}
			if more := denied.Total - len(denied.Problems); more > 0 {
				r.Findings = append(r.Findings, finding(d, "", SeverityError, fmt.Sprintf("... and %d more problems, which the webhook counts but does not show", more)))
			}
		case outcome.Reason == inject.ReasonInvalidConfig:
			return nil, fmt.Errorf("the webhook configuration given by the flags is invalid: %w", err)
		case err != nil:
			return nil, fmt.Errorf("%s:%d: %w", d.Source, d.Line, err)
		}
		for _, w := range outcome.Warnings {
			r.Findings = append(r.Findings, finding(d, "", SeverityNote, "the webhook would warn: "+w))
		}
		if adoptionNote(outcome) {
			message := outcome.Message
			if outcome.Reason != inject.ReasonAdopted {
				message = "not adopted: " + message
			}
			r.Findings = append(r.Findings, finding(d, "", SeverityNote, message))
		}
		if outcome.Reason == inject.ReasonAdopted {
			r.Findings = append(r.Findings, allowListNotes(d, r.Mutated)...)
		}
		if assumed != nil && outcome.Result != inject.ResultSkipped {
			r.Findings = append(r.Findings, assumed.notes(d, pod)...)
		}
		results = append(results, r)
	}
	return results, nil
}

// adoptionNote tells whether outcome says what adoption did with a pod, or why
// it did not, and no warning says it already: lint shows, per workload, what
// would move to the scheduling gate and what would stay in the pod.
func adoptionNote(o inject.Outcome) bool {
	if len(o.Warnings) > 0 {
		return false
	}
	return o.Reason == inject.ReasonAdopted || o.Reason == inject.ReasonAdoptNothingToGate
}

// allowListNotes notes each custom resource an adopted pod's gate would wait
// for: the webhook adopts the pod only if the dependency controller's allow-list
// (chart value controller.customResourceRules) has its kind, which offline is
// not known.
func allowListNotes(d *manifest.Document, adopted *corev1.Pod) []Finding {
	named := adopted.DeepCopy()
	named.Name = "pod" // Dependencies wants the created pod's name, which only the pod's own checks use
	deps, _, err := inject.Dependencies(named)
	if err != nil {
		return []Finding{finding(d, "", SeverityError, "the adopted pod does not read back: "+err.Error())}
	}
	var kinds []string
	for _, r := range deps.CustomResources {
		if strings.Contains(r.APIVersion, "/") {
			kinds = append(kinds, r.Kind+" "+r.APIVersion)
		}
	}
	for _, r := range deps.CEL {
		if strings.Contains(r.APIVersion, "/") {
			kinds = append(kinds, r.Kind+" "+r.APIVersion)
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	return []Finding{finding(d, "", SeverityNote, "the webhook adopts it only if the dependency controller may read "+strings.Join(slices.Compact(slices.Sorted(slices.Values(kinds))), ", ")+
		" (chart value controller.customResourceRules); otherwise it leaves the pod as it is")}
}

// misplaced notes entrypoint.io/ annotations on a workload's own metadata: the
// webhook sees pods, made from the template, so it never reads them.
func misplaced(d *manifest.Document) []Finding {
	tp := d.TemplatePath()
	if tp == nil {
		return nil
	}
	var out []Finding
	annotations := d.Annotations()
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		if !strings.HasPrefix(k, inject.AnnotationPrefix) {
			continue
		}
		path := "metadata.annotations[" + k + "]"
		f := finding(d, "", SeverityNote, fmt.Sprintf("annotation %s is on the %s itself, which the webhook never sees: it reads the annotations of the pod template (%s.metadata.annotations)",
			k, d.Kind(), strings.Join(tp, ".")))
		f.Line, f.Field = d.ObjectLineOf(path), path
		out = append(out, f)
	}
	return out
}

// finding is a finding about d at fieldPath of its pod ("" for the object).
func finding(d *manifest.Document, fieldPath, severity, message string) Finding {
	f := Finding{Source: d.Source, Line: d.Line, Kind: d.Kind(), Namespace: d.Namespace(), Name: d.Name(), Severity: severity, Message: message}
	if fieldPath != "" {
		f.Line = d.LineOf(fieldPath)
		f.Field = fieldPath
		if tp := d.TemplatePath(); tp != nil {
			f.Field = strings.Join(tp, ".") + "." + fieldPath
		}
	}
	return f
}

// assumedImages answers every registry lookup with an ENTRYPOINT, as a
// registry that has the image would, and records which images it was asked about.
type assumedImages struct {
	mu     sync.Mutex
	images []string
}

func (a *assumedImages) ImageConfig(_ context.Context, ref inject.ImageRef) (inject.ImageConfig, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.images, ref.Image) {
		a.images = append(a.images, ref.Image)
	}
	return inject.ImageConfig{Entrypoint: []string{"/image/entrypoint"}}, nil
}

// notes is a note for each container of pod without command whose image was
// asked about: its argv is for the registry to tell.
func (a *assumedImages) notes(d *manifest.Document, pod *corev1.Pod) []Finding {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Finding
	check := func(kind string, cs []corev1.Container) {
		for i, c := range cs {
			if len(c.Command) > 0 || !slices.Contains(a.images, c.Image) {
				continue
			}
			path := fmt.Sprintf("spec.%s[%d].image", kind, i)
			out = append(out, finding(d, path, SeverityNote, fmt.Sprintf(
				"container %q sets no command: the webhook reads its argv from image %q's ENTRYPOINT and CMD in the registry, and denies the pod if it cannot; not checked offline (--registry-lookup reads it), or set annotation %scommand.%s",
				c.Name, c.Image, inject.AnnotationPrefix, c.Name)))
		}
	}
	check("containers", pod.Spec.Containers)
	check("initContainers", pod.Spec.InitContainers)
	return out
}

// Failed tells whether any result holds an error finding.
func Failed(results []Result) bool {
	for _, r := range results {
		for _, f := range r.Findings {
			if f.Severity == SeverityError {
				return true
			}
		}
	}
	return false
}

// Findings are the findings of every result, in order.
func Findings(results []Result) []Finding {
	var out []Finding
	for _, r := range results {
		out = append(out, r.Findings...)
	}
	return out
}
