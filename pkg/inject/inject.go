// Package inject turns a pod's entrypoint.io/ annotations into a validated plan and
// the plan into a mutated pod: a volume holding the resolver binary, and target
// containers rewritten to run the resolver from it, which waits for the declared
// dependencies and then execs the exact original argv. The volume is, by
// InjectionMode, an emptyDir with an init container that installs the binary
// into it (ModeInitContainer), or the project's image itself as an image volume
// (ModeImageVolume).
// Every injected pod is labelled LabelManaged. In gate mode the dependencies the
// dependency controller judges from the API are left to it instead: the pod gets
// the scheduling gate SchedulingGate, and their variables go to the status
// annotation, where Dependencies reads them back. When that is every dependency,
// the pod gets nothing else (ModeGateOnly): no volume, no init container, no
// container changed.
//
// It is pure: no HTTP and no Kubernetes client. The only way out is the
// ImageConfigLookup the caller may give, used when a container's argv comes from its
// image.
package inject

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// DefaultMountPath is where the volume holding the resolver is mounted in every
// target container (and in the init container of ModeInitContainer).
const DefaultMountPath = "/kubernetes-entrypoint"

// DefaultRunAsUser is the init container's user when Config.RunAsUser is unset (0):
// the "nonroot" user of distroless images.
const DefaultRunAsUser int64 = 65532

// Names of what Mutate adds to a pod.
const (
	InitContainerName = "kubernetes-entrypoint-install"
	VolumeName        = "kubernetes-entrypoint"
)

// volumeSizeLimit caps the emptyDir, in bytes; the binary is well under 20 MB.
const volumeSizeLimit = 64 << 20

// Config is how the webhook was deployed; it is the same for every pod.
type Config struct {
	// Image is the project's image, which holds kubernetes-entrypoint on its PATH.
	Image string
	// ImagePullPolicy of the init container, or of the image volume; "" means
	// IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// InjectionMode is how the resolver reaches the containers of pods that do
	// not choose with AnnotationInjectionMode; "" means ModeInitContainer.
	InjectionMode InjectionMode
	// ImageVolumeCaveat is per request, not per deployment: when set, why the
	// caller believes image volumes do not work on the cluster's nodes (such as
	// "node a runs containerd 1.7.28"). A pod that asks for ModeImageVolume
	// with AnnotationInjectionMode is still injected so, with this as a warning.
	ImageVolumeCaveat string
	// MountPath is where the volume is mounted; "" means DefaultMountPath.
	MountPath string
	// Resources of the init container; the zero value means DefaultResources().
	Resources corev1.ResourceRequirements
	// RunAsUser is the init container's numeric user. 0 means unset, which Default
	// turns into DefaultRunAsUser, so the init container never runs as root. A 0
	// that someone asked for explicitly (a flag) is root, not unset: see Default.
	RunAsUser int64
	// ImageConfig reads a container image's ENTRYPOINT and CMD for containers that
	// set no command; nil turns registry lookups off.
	ImageConfig ImageConfigLookup
	// LookupBudget bounds all registry lookups of one pod together (they run a few
	// at a time); 0 means DefaultLookupBudget. Keep it under the webhook's timeout.
	LookupBudget time.Duration

	// Controller says the dependency controller runs (entrypoint-webhook
	// --controller): only then may a pod be gated, since only it removes the gate.
	Controller bool
	// GateAllNamespaces asks for gate mode for every pod, as if its namespace
	// carried NamespaceLabelGate (--gate-all-namespaces).
	GateAllNamespaces bool
	// NamespaceGated is per request, not per deployment: the caller sets it when
	// the pod's namespace carries NamespaceLabelGate=true.
	NamespaceGated bool
	// SecretDependencies says the controller watches Secrets (entrypoint-webhook
	// --secret-dependencies), so gate mode may hold a pod for its secret
	// dependencies; otherwise they stay in the containers for the resolver,
	// which reads each one by name.
	SecretDependencies bool
	// AdoptAllNamespaces asks for the adoption of pods without annotations in
	// every namespace, as if each carried NamespaceLabelAdopt
	// (--adopt-all-namespaces).
	AdoptAllNamespaces bool
	// NamespaceAdopted is per request, not per deployment: the caller sets it
	// when the pod's namespace carries NamespaceLabelAdopt=true.
	NamespaceAdopted bool
}

// DefaultLookupBudget is Config.LookupBudget unless set: well under the webhook's
// default timeout of 10 s, and two rounds of the registry's default 3 s per lookup.
const DefaultLookupBudget = 6 * time.Second

// DefaultResources are the init container's requests and limits unless Config sets
// them: it only copies one file.
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(10, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(16<<20, resource.BinarySI),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(100, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(32<<20, resource.BinarySI),
		},
	}
}

// Default returns c with every unset field set to its default. Unset is the zero
// value: "" for ImagePullPolicy, MountPath and InjectionMode, no requests, limits or claims for
// Resources, 0 for LookupBudget, and 0 for RunAsUser.
//
// RunAsUser 0 is also root's UID, so in Config "unset" and "root" look the same.
// Config reads 0 as unset: Default replaces it with DefaultRunAsUser, and Validate
// refuses a 0 that is still there, so root is never configured. A caller that
// reads the UID from a setting with no unset value, such as a flag whose default
// is DefaultRunAsUser, must set RunAsUser to what it read after calling Default,
// so that an explicit 0 reaches Validate and is refused rather than quietly
// becoming DefaultRunAsUser.
func (c Config) Default() Config {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if c.MountPath == "" {
		c.MountPath = DefaultMountPath
	}
	if c.InjectionMode == "" {
		c.InjectionMode = ModeInitContainer
	}
	if len(c.Resources.Requests) == 0 && len(c.Resources.Limits) == 0 && len(c.Resources.Claims) == 0 {
		c.Resources = DefaultResources()
	}
	if c.RunAsUser == 0 {
		c.RunAsUser = DefaultRunAsUser
	}
	if c.LookupBudget == 0 {
		c.LookupBudget = DefaultLookupBudget
	}
	return c
}

// Fields of Config as Validate's errors name them (field.Error.Field; resources
// are further qualified, as resources.requests[cpu]). A caller that reads the
// config from elsewhere, such as flags, maps them to its own names.
const (
	FieldImage           = "image"
	FieldImagePullPolicy = "imagePullPolicy"
	FieldMountPath       = "mountPath"
	FieldResources       = "resources"
	FieldRunAsUser       = "runAsUser"
	FieldLookupBudget    = "lookupBudget"
	FieldInjectionMode   = "injectionMode"
)

// Validate reports what is wrong with c as it is, defaults not applied: call it on
// c.Default(). Mutate does so for every pod; a server should do it once at start.
// Each error names its field with one of the Field constants above.
func (c Config) Validate() field.ErrorList {
	var errs field.ErrorList
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(field.NewPath(FieldImage), "must name the kubernetes-entrypoint image"))
	}
	pullPolicies := []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	if !slices.Contains(pullPolicies, c.ImagePullPolicy) {
		errs = append(errs, field.NotSupported(field.NewPath(FieldImagePullPolicy), c.ImagePullPolicy, pullPolicies))
	}
	if !path.IsAbs(c.MountPath) || path.Clean(c.MountPath) != c.MountPath || c.MountPath == "/" {
		errs = append(errs, field.Invalid(field.NewPath(FieldMountPath), c.MountPath, "must be a clean absolute path below /"))
	}
	errs = append(errs, validateInjectionMode(c.InjectionMode)...)
	errs = append(errs, validateResources(c.Resources)...)
	if c.RunAsUser <= 0 {
		errs = append(errs, field.Invalid(field.NewPath(FieldRunAsUser), c.RunAsUser,
			"must be a positive UID (0 is root, which the init container, copying one file, does not need)"))
	}
	if c.LookupBudget <= 0 {
		errs = append(errs, field.Invalid(field.NewPath(FieldLookupBudget), c.LookupBudget.String(), "must be positive"))
	}
	return errs
}

// validateResources checks what the API server would otherwise refuse on every
// injected pod: negative quantities and a request above its limit.
func validateResources(r corev1.ResourceRequirements) field.ErrorList {
	requests := field.NewPath(FieldResources).Child("requests")
	limits := field.NewPath(FieldResources).Child("limits")
	var errs field.ErrorList
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		req := r.Requests[name]
		if req.Sign() < 0 {
			errs = append(errs, field.Invalid(requests.Key(string(name)), req.String(), "must not be negative"))
		}
		if limit, ok := r.Limits[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(requests.Key(string(name)), req.String(), "must not exceed its limit "+limit.String()))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Limits)) {
		if limit := r.Limits[name]; limit.Sign() < 0 {
			errs = append(errs, field.Invalid(limits.Key(string(name)), limit.String(), "must not be negative"))
		}
	}
	return errs
}

// Results of Mutate.
const (
	ResultInjected = "injected"
	ResultSkipped  = "skipped"
	ResultDenied   = "denied"
	// ResultError: Mutate stopped without a decision (ReasonCanceled).
	ResultError = "error"
)

// Reasons of Mutate's results, short enough for metric labels.
const (
	ReasonInjected          = "injected"
	ReasonOptOut            = "opt-out"
	ReasonNoAnnotations     = "no-annotations"
	ReasonAlreadyInjected   = "already-injected"
	ReasonMirrorPod         = "mirror-pod"
	ReasonWindows           = "windows"
	ReasonInvalidAnnotation = "invalid-annotation"
	ReasonNoCommand         = "no-command"
	ReasonImageLookupFailed = "image-lookup-failed"
	// ReasonInvalidConfig: the webhook's Config is wrong; not the pod's fault.
	ReasonInvalidConfig = "invalid-config"
	// ReasonCanceled: the context ended (the API server gave up waiting) before
	// Mutate was done.
	ReasonCanceled = "canceled"
)

// Outcome says what Mutate did with a pod.
type Outcome struct {
	Result  string // ResultInjected, ResultSkipped or ResultDenied
	Reason  string // one of the Reason* constants
	Message string // for people: what was injected, or why it was skipped or denied
	// Warnings are for the pod's author, about an injected pod: what was asked
	// for and not done (admission warnings, shown by kubectl).
	Warnings []string
}

// Mutate returns a mutated copy of pod (pod itself is not modified) and what it did.
// A pod without annotations is adopted when cfg asks for it (see
// NamespaceLabelAdopt): never denied, it is adopted (ReasonAdopted) or comes back
// unchanged, skipped with a reason and, when it matters, a warning.
// An injected pod's Outcome may carry warnings: gate mode asked for by the
// namespace or cfg and not possible. A skipped pod comes back as an unchanged copy. A denied pod comes back as nil with
// a *DeniedError counting every problem found, or, when cfg itself is invalid, with
// cfg's error. When ctx ends first, Mutate stops and returns nil, a ResultError
// outcome and an error wrapping ctx's.
//
// pod.Namespace must be set to the admission request's namespace (a pod being
// created may not carry it, and a pod naming another one must not be trusted):
// it is the default of dependencies and the namespace whose pull secrets and
// ServiceAccount registry lookups read. When empty, dependencies without a
// namespace default to "default".
func Mutate(ctx context.Context, pod *corev1.Pod, cfg Config) (*corev1.Pod, Outcome, error) {
	cfg = cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		err := fmt.Errorf("inject config: %w", errs.ToAggregate())
		return nil, Outcome{Result: ResultDenied, Reason: ReasonInvalidConfig, Message: err.Error()}, err
	}
	if pod == nil {
		return nil, Outcome{Result: ResultSkipped, Reason: ReasonNoAnnotations, Message: "no pod"}, nil
	}

	ours := ourAnnotations(pod.Annotations)
	if len(ours) == 0 && adoptionAsked(cfg) {
		out, outcome := adopt(pod, cfg)
		return out, outcome, nil
	}
	if skip, ok := skipOutcome(pod, ours); ok {
		return pod.DeepCopy(), skip, nil
	}

	p, problems, err := newPlan(ctx, pod, ours, cfg)
	if err != nil {
		return nil, Outcome{Result: ResultError, Reason: ReasonCanceled, Message: err.Error()}, err
	}
	if problems != nil {
		denied := problems.deniedError()
		return nil, Outcome{Result: ResultDenied, Reason: problems.reason(), Message: denied.Error()}, denied
	}

	out := pod.DeepCopy()
	p.apply(out, cfg)
	message := "wrapped container(s) " + strings.Join(p.targetNames(), ", ")
	switch {
	case p.gateOnly:
		message = "held by scheduling gate " + SchedulingGate + " until the items of " + gatedAnnotations(p.gated) +
			" are ready; no resolver injected: the controller judges every dependency"
	case len(p.gated) > 0:
		message += "; held by scheduling gate " + SchedulingGate + " until the items of " + gatedAnnotations(p.gated) + " are ready"
	}
	return out, Outcome{Result: ResultInjected, Reason: ReasonInjected, Message: message, Warnings: p.warnings}, nil
}

// gatedAnnotations names, from the kinds table, the annotations whose items the
// gate holds the pod for: "entrypoint.io/dependency-service and
// entrypoint.io/dependency-job".
func gatedAnnotations(gated []corev1.EnvVar) string {
	var names []string
	for _, k := range spec.Kinds() {
		for _, e := range gated {
			if e.Name == k.Env {
				names = append(names, AnnotationPrefix+k.Annotation)
				break
			}
		}
	}
	switch len(names) {
	case 0:
		return "its node-free dependencies"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
