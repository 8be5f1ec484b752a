// Package server assembles entrypoint-webhook: the controller-runtime manager, the
// webhook server and its TLS (a cert dir, or the built-in self-signed mode), the
// registry lookup, probes and metrics.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/imageconfig"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/selfsigned"
	ewebhook "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

// TLS modes.
const (
	TLSCertDir    = "cert-dir"
	TLSSelfSigned = "self-signed"
)

// Options are the webhook's settings; BindFlags exposes them as flags.
type Options struct {
	Version string

	Host    string // bind address of the webhook server; "" = all
	Port    int
	CertDir string
	TLSMode string

	MetricsBindAddress     string
	HealthProbeBindAddress string
	// MetricsSecure serves /metrics over HTTPS to callers that the API server
	// authenticates (TokenReview) and authorizes (SubjectAccessReview).
	MetricsSecure bool
	// EnableHTTP2 offers HTTP/2 on the webhook and metrics listeners; off by
	// default (HTTP/2 rapid reset, CVE-2023-44487 and CVE-2023-39325).
	EnableHTTP2 bool
	// DrainTimeout bounds how long, once shutdown begins, the webhook keeps
	// serving until no request has been in flight for a second.
	DrainTimeout time.Duration

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

	// Webhook serves the admission webhook; false runs the controller alone.
	Webhook bool
	// Controller runs the dependency controller (pod condition, gate removal,
	// cycles); without it, and without ControllerSeparate, the webhook denies
	// entrypoint.io/gate.
	Controller bool
	// ControllerSeparate tells the webhook that a dependency controller runs in
	// a Deployment of its own (--webhook=false): the webhook then allows gate
	// mode and warns of cycles at admission without running the controller.
	ControllerSeparate bool
	// LeaderElect makes the controller run on one replica at a time; false only
	// for a single process outside a cluster.
	LeaderElect bool
	// GateAllNamespaces puts every annotated pod with node-free dependencies in
	// gate mode, as if it were annotated entrypoint.io/gate: "true".
	GateAllNamespaces bool
	// SecretDependencies lets the controller watch Secrets (keys only) and so
	// gate pods on their secret dependencies; off, those stay with the resolver.
	SecretDependencies bool
	// AllowedCustomResources are the resources (plural.group, or *.group for a
	// whole group) that custom-resource and CEL dependencies may name besides
	// the contract's own kinds; the controller reads no other.
	AllowedCustomResources string
	// KubeAPIQPS and KubeAPIBurst bound the process's requests to the API server.
	// Releasing a thousand gated pods at once is a thousand writes (then their
	// conditions), so the limit is high; the API server's priority and fairness
	// is what protects it from any one client.
	KubeAPIQPS   float64
	KubeAPIBurst int

	// Self-signed mode.
	Namespace         string // the webhook's own namespace
	SecretName        string
	WebhookConfigName string
	ServiceName       string
	TLSHosts          string // comma-separated; default: the Service's DNS names
	CertCheckInterval time.Duration
}

// InjectionModeAuto lets the webhook choose the injection mode from the
// cluster's nodes (ewebhook.NodeImageVolumes): image-volume once every node can
// run it, init-container otherwise.
const InjectionModeAuto = "auto"

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	// pkg/inject's defaults, as flag values.
	initResources := inject.DefaultResources()
	return Options{
		Port:                     9443,
		Webhook:                  true,
		Controller:               true,
		LeaderElect:              true,
		KubeAPIQPS:               1000,
		KubeAPIBurst:             2000,
		TLSMode:                  TLSCertDir,
		MetricsBindAddress:       ":8080",
		HealthProbeBindAddress:   ":8081",
		MetricsSecure:            true,
		DrainTimeout:             15 * time.Second,
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
		Namespace:                os.Getenv("POD_NAMESPACE"),
		SecretName:               "entrypoint-webhook-tls",
		WebhookConfigName:        "kubernetes-entrypoint",
		ServiceName:              "entrypoint-webhook",
		CertCheckInterval:        selfsigned.DefaultCheckInterval,
	}
}

// BindFlags registers the options on fs, following controller-runtime's names.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Host, "host", o.Host, "address the webhook server binds to (default: all)")
	fs.IntVar(&o.Port, "port", o.Port, "port of the webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory with tls.crt and tls.key (cert-manager), reloaded on change; --tls-mode=cert-dir")
	fs.StringVar(&o.TLSMode, "tls-mode", o.TLSMode, "cert-dir (certificates from --cert-dir, e.g. cert-manager) or self-signed (built-in CA in a Secret, caBundle patched, rotated)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "serve /metrics over HTTPS, only to callers Kubernetes authenticates and authorizes (get on the non-resource URL /metrics); false: plain HTTP to anyone")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "offer HTTP/2 on the webhook and metrics servers (off: HTTP/2 rapid reset and stream-cancellation vulnerabilities)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "on shutdown, the longest the webhook keeps serving requests in flight (and any still arriving) before it stops")
	fs.StringVar(&o.Image, "image", o.Image, "image of the injected init container; it must hold kubernetes-entrypoint on PATH (normally this webhook's own image)")
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
	fs.BoolVar(&o.Webhook, "webhook", o.Webhook, "serve the admission webhook; false runs only the dependency controller")
	fs.BoolVar(&o.Controller, "controller", o.Controller, "run the dependency controller (the pod condition entrypoint.io/DependenciesReady, scheduling-gate removal, cycles); without it, and without --controller-separate, entrypoint.io/gate is denied")
	fs.BoolVar(&o.ControllerSeparate, "controller-separate", o.ControllerSeparate, "a dependency controller runs in a Deployment of its own (--webhook=false): allow gate mode and warn of cycles at admission without running the controller here (use with --controller=false)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect one replica to run the controller (a Lease in --namespace); false only for a single process outside a cluster")
	fs.BoolVar(&o.GateAllNamespaces, "gate-all-namespaces", o.GateAllNamespaces, "gate mode for every annotated pod with dependencies that need no node (needs --controller or --controller-separate)")
	fs.StringVar(&o.AllowedCustomResources, "allowed-custom-resources", o.AllowedCustomResources, "comma-separated resources, as RBAC names them (plural.group, e.g. connections.mariadb.osh.openstack.org, or *.group for a whole group), that custom-resource and CEL dependencies may name besides the contract's own kinds; the controller never reads any other kind (Nodes, Namespaces, unlisted custom resources) for a pod")
	fs.BoolVar(&o.SecretDependencies, "secret-dependencies", o.SecretDependencies, "let the dependency controller list and watch Secrets (keeping their keys, never their values) so that gate mode holds pods for their secret dependencies; off, the resolver in the pod reads each Secret by name")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "requests per second to the API server, on average (client-side limit)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "requests to the API server in a burst above --kube-api-qps")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "the webhook's namespace: its self-signed Secret and the controller's leader-election Lease are there [$POD_NAMESPACE]")
	fs.StringVar(&o.SecretName, "tls-secret", o.SecretName, "Secret holding the self-signed CA and certificate")
	fs.StringVar(&o.WebhookConfigName, "webhook-config", o.WebhookConfigName, "MutatingWebhookConfiguration whose caBundle the self-signed mode keeps current")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "the webhook's Service, for the certificate's DNS names")
	fs.StringVar(&o.TLSHosts, "tls-hosts", o.TLSHosts, "comma-separated names and IPs of the self-signed certificate (default: the Service's DNS names)")
	fs.DurationVar(&o.CertCheckInterval, "cert-check-interval", o.CertCheckInterval, "how often the self-signed certificate and caBundle are checked")
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
		Controller:        o.gateController(),
		GateAllNamespaces: o.GateAllNamespaces,
		// Only what the controller watches may be gated.
		SecretDependencies: o.gateController() && o.SecretDependencies,
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
	insecure := splitList(o.RegistryInsecure)
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

// Webhook is an assembled, not yet started webhook.
type Webhook struct {
	Manager manager.Manager
	// Certs is the self-signed certificate manager, nil in cert-dir mode.
	Certs *selfsigned.Manager
}

// New assembles the webhook for cfg.
func New(cfg *rest.Config, o Options, log logr.Logger) (*Webhook, error) {
	if err := o.checkRoles(); err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.KubeAPIQPS), o.KubeAPIBurst
	injectCfg, err := o.InjectConfig()
	if err != nil {
		return nil, err
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if o.RegistryLookup {
		regOpts, err := o.ImageConfigOptions()
		if err != nil {
			return nil, err
		}
		regOpts.Client = clientset
		injectCfg.ImageConfig = imageconfig.New(regOpts)
	}

	var tlsOpts []func(*tls.Config)
	if !o.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	serverOpts := webhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir, TLSOpts: slices.Clone(tlsOpts)}
	var certs *selfsigned.Manager
	switch {
	case !o.Webhook || o.TLSMode == TLSCertDir:
	case o.TLSMode == TLSSelfSigned:
		hosts := splitList(o.TLSHosts)
		if len(hosts) == 0 {
			if o.Namespace == "" {
				return nil, errors.New("self-signed TLS needs the webhook's namespace: set --namespace or POD_NAMESPACE")
			}
			svc := o.ServiceName + "." + o.Namespace
			hosts = []string{svc + ".svc", svc, o.ServiceName, svc + ".svc.cluster.local"}
		}
		certs, err = selfsigned.New(selfsigned.Options{
			Client: clientset, Log: log.WithName("tls"), Namespace: o.Namespace, SecretName: o.SecretName,
			WebhookConfigName: o.WebhookConfigName, Hosts: hosts, CheckInterval: o.CertCheckInterval,
		})
		if err != nil {
			return nil, err
		}
		serverOpts.TLSOpts = append(serverOpts.TLSOpts, func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
	default:
		return nil, fmt.Errorf("--tls-mode=%q: want %s or %s", o.TLSMode, TLSCertDir, TLSSelfSigned)
	}

	// /metrics is served with the webhook's own certificate (rather than one
	// controller-runtime would generate at every start).
	certDir := o.CertDir
	if certDir == "" {
		certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs") // controller-runtime's default
	}
	metricsOpts := metricsserver.Options{BindAddress: o.MetricsBindAddress, SecureServing: o.MetricsSecure, TLSOpts: tlsOpts, CertDir: certDir}
	if certs != nil {
		metricsOpts.TLSOpts = append(slices.Clone(tlsOpts), func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
	}
	if o.MetricsSecure {
		metricsOpts.FilterProvider = metricsAuth
	}
	if o.DrainTimeout < 0 {
		return nil, fmt.Errorf("--drain-timeout=%s: want a duration of 0 or more", o.DrainTimeout)
	}
	server := newDrainer(webhook.NewServer(serverOpts), o.DrainTimeout, log.WithName("drain"))
	mgrOpts := ctrl.Options{
		Logger:                 log,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		WebhookServer:          server,
		// The drain's bound plus time to stop the servers.
		GracefulShutdownTimeout: ptr.To(o.DrainTimeout + 15*time.Second),
	}
	if o.gateController() {
		// Every replica follows the managed pods (label-selected) and the
		// Services, for cycle warnings at admission (and the controller's own
		// cycle reports).
		mgrOpts.Cache.ByObject = controller.CacheByObject()
	}
	autoMode := o.Webhook && o.InjectionMode == InjectionModeAuto
	if autoMode {
		// --injection-mode=auto follows the nodes, each reduced to its name
		// and kubelet and runtime versions.
		if mgrOpts.Cache.ByObject == nil {
			mgrOpts.Cache.ByObject = map[client.Object]cache.ByObject{}
		}
		mgrOpts.Cache.ByObject[&corev1.Node{}] = cache.ByObject{Transform: ewebhook.SlimNode}
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	var cycles *controller.CycleDetector
	if o.gateController() {
		cycles = &controller.CycleDetector{Cache: mgr.GetCache(), Dependencies: inject.Dependencies, Log: log.WithName("cycles")}
		if err := mgr.Add(cycles); err != nil {
			return nil, err
		}
	}
	if o.Controller {
		if err := addController(mgr, cfg, o, cycles, log); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if !o.Webhook {
		// The controller alone is ready once it runs (its pod's readiness probe);
		// its leader election decides whether it works.
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		return &Webhook{Manager: mgr}, nil
	}
	m, err := ewebhook.NewMetrics(metrics.Registry)
	if err != nil {
		return nil, err
	}
	// Namespace labels (gate mode) come from a metadata-only informer the
	// first pod starts; RBAC: get, list and watch on namespaces.
	injector := &ewebhook.PodInjector{
		Config: injectCfg, Decoder: admission.NewDecoder(mgr.GetScheme()), Log: log.WithName("inject"), Metrics: m,
		Namespaces: ewebhook.CachedNamespaces{Cache: mgr.GetCache(), Live: mgr.GetAPIReader()},
	}
	// Warnings: a pod that closes a dependency cycle, and dependencies in other
	// namespaces that the pod's ServiceAccount may not read (RBAC: create
	// subjectaccessreviews).
	warners := []func(context.Context, *corev1.Pod) []string{(&controller.AccessWarner{
		Access:       access.NewChecker(clientset.AuthorizationV1().SubjectAccessReviews(), access.Options{}),
		Mapper:       mgr.GetRESTMapper(),
		Dependencies: inject.Dependencies, SecretDependencies: o.SecretDependencies,
		AllowedResources: splitList(o.AllowedCustomResources),
	}).Warnings}
	if cycles != nil {
		warners = append(warners, cycles.Warnings)
	}
	injector.Warn = func(ctx context.Context, pod *corev1.Pod) []string {
		var out []string
		for _, w := range warners {
			out = append(out, w(ctx, pod)...)
		}
		return out
	}
	if autoMode {
		modes := &ewebhook.NodeImageVolumes{Cache: mgr.GetCache(), Live: mgr.GetAPIReader(), Log: log.WithName("injection-mode")}
		if err := mgr.Add(modes); err != nil {
			return nil, err
		}
		injector.Modes = modes
	}
	mgr.GetWebhookServer().Register(ewebhook.Path, &webhook.Admission{Handler: injector})
	if certs != nil {
		if err := mgr.Add(certs); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("certificate", certs.Healthz); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("shutdown", server.Ready); err != nil {
		return nil, err
	}
	return &Webhook{Manager: mgr, Certs: certs}, nil
}

// checkRoles rejects settings that cannot work together.
func (o *Options) checkRoles() error {
	var errs []error
	if !o.Webhook && !o.Controller {
		errs = append(errs, errors.New("--webhook=false and --controller=false: nothing to run"))
	}
	if o.ControllerSeparate && !o.Webhook {
		errs = append(errs, errors.New("--controller-separate with --webhook=false: it tells the webhook that the controller runs elsewhere, and this process serves no webhook (the separate controller runs with --webhook=false alone)"))
	}
	if o.ControllerSeparate && o.Controller && o.Webhook {
		errs = append(errs, errors.New("--controller-separate with --controller: the controller would run here and in its own Deployment; give the webhook --controller=false"))
	}
	if o.Controller && o.LeaderElect && o.Namespace == "" {
		errs = append(errs, errors.New("the controller's leader election needs the webhook's namespace for its Lease: set --namespace or POD_NAMESPACE, or --leader-elect=false for a single process"))
	}
	if o.GateAllNamespaces && !o.gateController() {
		errs = append(errs, errors.New("--gate-all-namespaces needs --controller or --controller-separate: nothing would remove the gates"))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps=%g --kube-api-burst=%d: want positive numbers", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	return errors.Join(errs...)
}

// gateController: a controller removes the gates the webhook adds, in this
// process or in a Deployment of its own.
func (o *Options) gateController() bool {
	return o.Controller || o.ControllerSeparate
}

// addController adds the dependency controller to mgr: leader-elected in a
// manager of its own, so the webhook serves whatever happens to the election.
func addController(mgr manager.Manager, cfg *rest.Config, o Options, cycles controller.CycleFinder, log logr.Logger) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	m, err := controller.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	return mgr.Add(&controller.Runner{
		Config: cfg, LeaderElect: o.LeaderElect, Namespace: o.Namespace,
		Options: controller.Options{
			Dependencies:       inject.Dependencies,
			SecretDependencies: o.SecretDependencies,
			AllowedResources:   splitList(o.AllowedCustomResources),
			Dynamic:            dyn,
			Metrics:            m,
			Cycles:             cycles,
			Log:                log.WithName("controller"),
		},
	})
}

// Run assembles the webhook and serves until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options, log logr.Logger) error {
	w, err := New(cfg, o, log)
	if err != nil {
		return err
	}
	log.Info("starting entrypoint-webhook", "version", o.Version, "webhook", o.Webhook, "controller", o.Controller,
		"controllerSeparate", o.ControllerSeparate, "leaderElect", o.LeaderElect, "image", o.Image, "injectionMode", o.InjectionMode, "tlsMode", o.TLSMode, "port", o.Port)
	return w.Manager.Start(ctx)
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
