// Package options are the settings of injection as flags: the fields of
// entrypoint-webhook that decide how a pod is injected, their defaults, their
// flags, and their mapping to pkg/inject's Config and pkg/imageconfig's
// Options, with errors that name the flags. entrypoint-webhook binds them
// (pkg/webhook/server), and the kubectl plugin maps its own flags of the same
// names through them (kubectl entrypoint lint and inject), without linking the
// webhook's server or the controller.
package options

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/imageconfig"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Options are the settings of injection: the injected init container, the
// registry lookup, and the processes that make gate mode possible.
type Options struct {
	Image           string
	ImagePullPolicy string
	// InjectionMode is InjectionModeAuto or one of pkg/inject's modes.
	InjectionMode     string
	MountPath         string
	RunAsUser         int64
	InitCPURequest    string
	InitMemoryRequest string
	InitCPULimit      string
	InitMemoryLimit   string

	RegistryLookup  bool
	RegistryTimeout time.Duration
	// Registries reached over plain HTTP (host or host:port, comma-separated),
	// a PEM file of CAs trusted besides the system's, and the lookup's limits.
	RegistryInsecure         string
	RegistryCAFile           string
	RegistryMaxManifestBytes int64
	RegistryMaxConfigBytes   int64
	RegistryMaxInFlight      int
	RegistryPodBudget        time.Duration

	// Controller runs the dependency controller (pod condition, gate removal,
	// cycles); without it, and without ControllerSeparate, the webhook denies
	// entrypoint.io/gate.
	Controller bool
	// ControllerSeparate tells the webhook that a dependency controller runs in
	// a Deployment of its own (--webhook=false): the webhook then allows gate
	// mode and warns of cycles at admission without running the controller.
	ControllerSeparate bool
	// GateAllNamespaces puts every annotated pod with node-free dependencies in
	// gate mode, as if it were annotated entrypoint.io/gate: "true".
	GateAllNamespaces bool
	// AdoptAllNamespaces adopts pods without annotations whose init container
	// carries the original image's DEPENDENCY_* env in every namespace, as if
	// each carried the label entrypoint.io/adopt=true.
	AdoptAllNamespaces bool
	// SecretDependencies lets the controller watch Secrets (keys only) and so
	// gate pods on their secret dependencies; off, those stay with the resolver.
	SecretDependencies bool
}

// InjectionModeAuto lets the webhook choose the injection mode from the
// cluster's nodes (pkg/webhook's NodeImageVolumes): image-volume once every
// node can run it, init-container otherwise.
const InjectionModeAuto = "auto"

// Default are the flags' defaults.
func Default() Options {
	// pkg/inject's defaults, as flag values.
	initResources := inject.DefaultResources()
	return Options{
		Controller:               true,
		Image:                    "ghcr.io/kubernetes-entrypoint/kubernetes-entrypoint:latest",
		MountPath:                inject.DefaultMountPath,
		InjectionMode:            InjectionModeAuto,
		RunAsUser:                inject.DefaultRunAsUser,
		InitCPURequest:           initResources.Requests.Cpu().String(),
		InitMemoryRequest:        initResources.Requests.Memory().String(),
		InitCPULimit:             initResources.Limits.Cpu().String(),
		InitMemoryLimit:          initResources.Limits.Memory().String(),
		RegistryLookup:           true,
		RegistryTimeout:          3 * time.Second,
		RegistryMaxManifestBytes: imageconfig.DefaultMaxManifestBytes,
		RegistryMaxConfigBytes:   imageconfig.DefaultMaxConfigBytes,
		RegistryMaxInFlight:      imageconfig.DefaultMaxInFlight,
		RegistryPodBudget:        inject.DefaultLookupBudget,
	}
}

// BindFlags registers the options on fs under entrypoint-webhook's names.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Image, "image", o.Image, "the resolver image the webhook injects (init container or image volume); it must hold kubernetes-entrypoint on PATH, at /usr/local/bin for image-volume (the project's kubernetes-entrypoint image)")
	fs.StringVar(&o.ImagePullPolicy, "image-pull-policy", o.ImagePullPolicy, "pull policy of the injected init container (default: IfNotPresent)")
	fs.StringVar(&o.InjectionMode, "injection-mode", o.InjectionMode, "how the resolver reaches the wrapped containers: init-container (an emptyDir and an init container that copies it from --image), "+
		"image-volume (--image itself as an image volume, no init container; needs Kubernetes 1.35+ nodes with containerd 2.2+), or auto: image-volume while every node runs kubelet 1.35+ and containerd 2.2+, "+
		"else init-container (needs get, list and watch on nodes). A pod's "+inject.AnnotationInjectionMode+" annotation overrides it")
	fs.StringVar(&o.MountPath, "mount-path", o.MountPath, "where the resolver is installed in every wrapped container")
	fs.Int64Var(&o.RunAsUser, "run-as-user", o.RunAsUser, "numeric UID of the injected init container; 0 (root) is refused")
	fs.StringVar(&o.InitCPURequest, "init-cpu-request", o.InitCPURequest, "CPU request of the injected init container")
	fs.StringVar(&o.InitMemoryRequest, "init-memory-request", o.InitMemoryRequest, "memory request of the injected init container")
	fs.StringVar(&o.InitCPULimit, "init-cpu-limit", o.InitCPULimit, "CPU limit of the injected init container; empty for none")
	fs.StringVar(&o.InitMemoryLimit, "init-memory-limit", o.InitMemoryLimit, "memory limit of the injected init container; empty for none")
	fs.BoolVar(&o.RegistryLookup, "registry-lookup", o.RegistryLookup, "read ENTRYPOINT/CMD from the registry for containers without command")
	fs.DurationVar(&o.RegistryTimeout, "registry-timeout", o.RegistryTimeout, "time limit of one registry lookup; keep it well inside the webhook timeout")
	fs.StringVar(&o.RegistryInsecure, "registry-insecure", o.RegistryInsecure, "comma-separated registries (host or host:port, as in image references) reached over plain HTTP; all others over HTTPS only")
	fs.StringVar(&o.RegistryCAFile, "registry-ca-file", o.RegistryCAFile, "PEM file of CAs of private registries, trusted besides the system's")
	fs.Int64Var(&o.RegistryMaxManifestBytes, "registry-max-manifest-bytes", o.RegistryMaxManifestBytes, "largest manifest or index read from a registry; larger ones are refused before reading")
	fs.Int64Var(&o.RegistryMaxConfigBytes, "registry-max-config-bytes", o.RegistryMaxConfigBytes, "largest image config read from a registry; larger ones are refused before reading")
	fs.DurationVar(&o.RegistryPodBudget, "registry-pod-budget", o.RegistryPodBudget, "time limit of all registry lookups of one pod together (they run a few at a time); keep it under the webhook timeout")
	fs.IntVar(&o.RegistryMaxInFlight, "registry-max-in-flight", o.RegistryMaxInFlight, "registry lookups at a time in this process; waiting for a slot counts against --registry-timeout")
	fs.BoolVar(&o.Controller, "controller", o.Controller, "run the dependency controller (the pod condition entrypoint.io/DependenciesReady, scheduling-gate removal, cycles); without it, and without --controller-separate, entrypoint.io/gate is denied")
	fs.BoolVar(&o.ControllerSeparate, "controller-separate", o.ControllerSeparate, "a dependency controller runs in a Deployment of its own (--webhook=false): allow gate mode and warn of cycles at admission without running the controller here (use with --controller=false)")
	fs.BoolVar(&o.GateAllNamespaces, "gate-all-namespaces", o.GateAllNamespaces, "gate mode for every annotated pod with dependencies read from the API, same-node ones included (needs --controller or --controller-separate)")
	fs.BoolVar(&o.AdoptAllNamespaces, "adopt-all-namespaces", o.AdoptAllNamespaces, "adopt, in every namespace, the pods without "+inject.AnnotationPrefix+" annotations whose one init container carries the original image's DEPENDENCY_SERVICE env: their dependencies that need no node move to the scheduling gate (needs --controller or --controller-separate); otherwise only in namespaces labelled "+inject.NamespaceLabelAdopt+"=true")
	fs.BoolVar(&o.SecretDependencies, "secret-dependencies", o.SecretDependencies, "let the dependency controller list and watch Secrets (keeping their keys, never their values) so that gate mode holds pods for their secret dependencies; off, the resolver in the pod reads each Secret by name")
}

// GateController says whether a controller removes the gates the webhook adds,
// in this process or in a Deployment of its own.
func (o *Options) GateController() bool {
	return o.Controller || o.ControllerSeparate
}

// injectFlags names the flag behind each field of pkg/inject's Config, so that its
// validation errors speak of flags.
func injectFlags() map[string]string {
	requests := field.NewPath(inject.FieldResources).Child("requests")
	limits := field.NewPath(inject.FieldResources).Child("limits")
	return map[string]string{
		inject.FieldImage:                                    "image",
		inject.FieldImagePullPolicy:                          "image-pull-policy",
		inject.FieldMountPath:                                "mount-path",
		inject.FieldRunAsUser:                                "run-as-user",
		inject.FieldLookupBudget:                             "registry-pod-budget",
		inject.FieldInjectionMode:                            "injection-mode",
		requests.Key(string(corev1.ResourceCPU)).String():    "init-cpu-request",
		requests.Key(string(corev1.ResourceMemory)).String(): "init-memory-request",
		limits.Key(string(corev1.ResourceCPU)).String():      "init-cpu-limit",
		limits.Key(string(corev1.ResourceMemory)).String():   "init-memory-limit",
	}
}

// flagError says what is wrong with a field of pkg/inject's Config in terms of the
// flag that set it.
func flagError(e *field.Error, flags map[string]string) error {
	name, ok := flags[e.Field]
	if !ok {
		return e
	}
	if e.Type == field.ErrorTypeRequired {
		return fmt.Errorf("--%s is required: %s", name, e.Detail)
	}
	value := fmt.Sprint(e.BadValue)
	if value == "" {
		value = `""`
	}
	return fmt.Errorf("--%s=%s: %s", name, value, e.Detail)
}

// InjectConfig turns the options into pkg/inject's configuration, with its
// defaults applied and validated by pkg/inject's rules; errors name the flags.
func (o *Options) InjectConfig() (inject.Config, error) {
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	var errs []error
	add := func(flagName, value string, name corev1.ResourceName, into corev1.ResourceList) {
		if value == "" {
			return
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s=%q: want a Kubernetes quantity such as 10m or 16Mi", flagName, value))
			return
		}
		into[name] = q
	}
	add("init-cpu-request", o.InitCPURequest, corev1.ResourceCPU, res.Requests)
	add("init-memory-request", o.InitMemoryRequest, corev1.ResourceMemory, res.Requests)
	add("init-cpu-limit", o.InitCPULimit, corev1.ResourceCPU, res.Limits)
	add("init-memory-limit", o.InitMemoryLimit, corev1.ResourceMemory, res.Limits)
	// auto starts in init-container mode; the handler decides per request
	// (ewebhook.NodeImageVolumes).
	mode := inject.InjectionMode(o.InjectionMode)
	if o.InjectionMode == InjectionModeAuto {
		mode = inject.ModeInitContainer
	} else if !slices.Contains(inject.InjectionModes(), mode) {
		errs = append(errs, fmt.Errorf("--injection-mode=%q: want %s, %s or %s", o.InjectionMode, InjectionModeAuto, inject.ModeInitContainer, inject.ModeImageVolume))
		mode = inject.ModeInitContainer
	}
	cfg := inject.Config{
		Image:           o.Image,
		ImagePullPolicy: corev1.PullPolicy(o.ImagePullPolicy),
		InjectionMode:   mode,
		MountPath:       o.MountPath,
		Resources:       res,
		LookupBudget:    o.RegistryPodBudget,
		// Gate mode: denied without a controller, here or separate, which
		// removes the gate.
		Controller:        o.GateController(),
		GateAllNamespaces: o.GateAllNamespaces,
		// Adoption without a controller leaves pods alone, with a warning.
		AdoptAllNamespaces: o.AdoptAllNamespaces,
		// Only what the controller watches may be gated.
		SecretDependencies: o.GateController() && o.SecretDependencies,
	}.Default()
	// --run-as-user has no unset value (its default is inject.DefaultRunAsUser), so
	// a 0 here was asked for and means root. Set after Default, which would read 0
	// as unset, so that Validate sees it and refuses it.
	cfg.RunAsUser = o.RunAsUser
	flags := injectFlags()
	for _, e := range cfg.Validate() {
		errs = append(errs, flagError(e, flags))
	}
	if o.RegistryLookup && o.RegistryPodBudget < o.RegistryTimeout {
		errs = append(errs, fmt.Errorf("--registry-pod-budget=%s: want at least --registry-timeout (%s), the time one lookup may take", o.RegistryPodBudget, o.RegistryTimeout))
	}
	return cfg, errors.Join(errs...)
}

// ImageConfigOptions turns the registry flags into pkg/imageconfig's options
// (without its client), reading --registry-ca-file.
func (o *Options) ImageConfigOptions() (imageconfig.Options, error) {
	var errs []error
	if o.RegistryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--registry-timeout=%s: want a positive duration", o.RegistryTimeout))
	}
	if o.RegistryMaxManifestBytes <= 0 {
		errs = append(errs, fmt.Errorf("--registry-max-manifest-bytes=%d: want a positive number of bytes", o.RegistryMaxManifestBytes))
	}
	if o.RegistryMaxConfigBytes <= 0 {
		errs = append(errs, fmt.Errorf("--registry-max-config-bytes=%d: want a positive number of bytes", o.RegistryMaxConfigBytes))
	}
	if o.RegistryMaxInFlight <= 0 {
		errs = append(errs, fmt.Errorf("--registry-max-in-flight=%d: want a positive number of lookups", o.RegistryMaxInFlight))
	}
	insecure := SplitList(o.RegistryInsecure)
	for _, r := range insecure {
		if strings.ContainsAny(r, "/@ ") || strings.Contains(r, "://") {
			errs = append(errs, fmt.Errorf("--registry-insecure: %q: want a registry as host or host:port, as in image references (no scheme or path)", r))
		}
	}
	opts := imageconfig.Options{
		Timeout:            o.RegistryTimeout,
		MaxManifestBytes:   o.RegistryMaxManifestBytes,
		MaxConfigBytes:     o.RegistryMaxConfigBytes,
		MaxInFlight:        o.RegistryMaxInFlight,
		InsecureRegistries: insecure,
	}
	if o.RegistryCAFile != "" {
		pool, err := caPool(o.RegistryCAFile)
		if err != nil {
			errs = append(errs, err)
		}
		opts.RootCAs = pool
	}
	return opts, errors.Join(errs...)
}

// caPool is the system's roots plus every certificate of the PEM file.
func caPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--registry-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--registry-ca-file=%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// SplitList reads a comma-separated flag value: its items, trimmed, the empty
// ones left out.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
