// Package server assembles entrypoint-webhook: the controller-runtime manager, the
// webhook server and its TLS (a cert dir, or the built-in self-signed mode), the
// registry lookup, probes and metrics.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
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
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject/options"
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
	// PprofBindAddress serves Go's /debug/pprof (plain HTTP, unauthenticated);
	// "" or "0" (the default) serves nothing. For profiling on loopback only.
	PprofBindAddress string
	// MetricsSecure serves /metrics over HTTPS to callers that the API server
	// authenticates (TokenReview) and authorizes (SubjectAccessReview).
	MetricsSecure bool
	// EnableHTTP2 offers HTTP/2 on the webhook and metrics listeners; off by
	// default (HTTP/2 rapid reset, CVE-2023-44487 and CVE-2023-39325).
	EnableHTTP2 bool
	// DrainTimeout bounds how long, once shutdown begins, the webhook keeps
	// serving until no request has been in flight for a second.
	DrainTimeout time.Duration

	// Options are the settings of injection and their flags, shared with the
	// kubectl plugin.
	options.Options

	// Webhook serves the admission webhook; false runs the controller alone.
	Webhook bool
	// LeaderElect makes the controller run on one replica at a time; false only
	// for a single process outside a cluster.
	LeaderElect bool
	// LeaseDuration, RenewDeadline and RetryPeriod time the election (client-go's
	// leader election: a dead leader's Lease is taken over after LeaseDuration).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
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

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{
		Options:                options.Default(),
		Port:                   9443,
		Webhook:                true,
		LeaderElect:            true,
		LeaseDuration:          15 * time.Second,
		RenewDeadline:          10 * time.Second,
		RetryPeriod:            2 * time.Second,
		KubeAPIQPS:             1000,
		KubeAPIBurst:           2000,
		TLSMode:                TLSCertDir,
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		PprofBindAddress:       "0",
		MetricsSecure:          true,
		DrainTimeout:           15 * time.Second,
		Namespace:              os.Getenv("POD_NAMESPACE"),
		SecretName:             "entrypoint-webhook-tls",
		WebhookConfigName:      "kubernetes-entrypoint",
		ServiceName:            "entrypoint-webhook",
		CertCheckInterval:      selfsigned.DefaultCheckInterval,
	}
}

// BindFlags registers the options on fs, following controller-runtime's names.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	o.Options.BindFlags(fs)
	fs.StringVar(&o.Host, "host", o.Host, "address the webhook server binds to (default: all)")
	fs.IntVar(&o.Port, "port", o.Port, "port of the webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory with tls.crt and tls.key (cert-manager), reloaded on change; --tls-mode=cert-dir")
	fs.StringVar(&o.TLSMode, "tls-mode", o.TLSMode, "cert-dir (certificates from --cert-dir, e.g. cert-manager) or self-signed (built-in CA in a Secret, caBundle patched, rotated)")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", o.PprofBindAddress, "address of Go's /debug/pprof profiles, plain HTTP to anyone who reaches it (e.g. 127.0.0.1:6060 while profiling); 0 disables it")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "serve /metrics over HTTPS, only to callers Kubernetes authenticates and authorizes (get on the non-resource URL /metrics); false: plain HTTP to anyone")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2, "offer HTTP/2 on the webhook and metrics servers (off: HTTP/2 rapid reset and stream-cancellation vulnerabilities)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "on shutdown, the longest the webhook keeps serving requests in flight (and any still arriving) before it stops")
	fs.BoolVar(&o.Webhook, "webhook", o.Webhook, "serve the admission webhook; false runs only the dependency controller")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect one replica to run the controller (a Lease in --namespace); false only for a single process outside a cluster")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "how long a controller replica that stopped renewing keeps the Lease: the longest a dead leader's pods wait for a new one")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "how long the leader retries renewing its Lease before it stops the controller (shorter than --leader-elect-lease-duration)")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "the pause between tries to take or renew the Lease")
	fs.StringVar(&o.AllowedCustomResources, "allowed-custom-resources", o.AllowedCustomResources, "comma-separated resources, as RBAC names them (plural.group, e.g. connections.mariadb.osh.openstack.org, or *.group for a whole group), that custom-resource and CEL dependencies may name besides the contract's own kinds; the controller never reads any other kind (Nodes, Namespaces, unlisted custom resources) for a pod")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "requests per second to the API server, on average (client-side limit)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "requests to the API server in a burst above --kube-api-qps")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "the webhook's namespace: its self-signed Secret and the controller's leader-election Lease are there [$POD_NAMESPACE]")
	fs.StringVar(&o.SecretName, "tls-secret", o.SecretName, "Secret holding the self-signed CA and certificate")
	fs.StringVar(&o.WebhookConfigName, "webhook-config", o.WebhookConfigName, "MutatingWebhookConfiguration whose caBundle the self-signed mode keeps current")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "the webhook's Service, for the certificate's DNS names")
	fs.StringVar(&o.TLSHosts, "tls-hosts", o.TLSHosts, "comma-separated names and IPs of the self-signed certificate (default: the Service's DNS names)")
	fs.DurationVar(&o.CertCheckInterval, "cert-check-interval", o.CertCheckInterval, "how often the self-signed certificate and caBundle are checked")
}

// Webhook is an assembled, not yet started webhook.
type Webhook struct {
	Manager manager.Manager
	// Certs is the self-signed certificate manager, nil in cert-dir mode.
	Certs *selfsigned.Manager
}

// New assembles the webhook for cfg: what plan decides from o, built.
func New(cfg *rest.Config, o Options, log logr.Logger) (*Webhook, error) {
	p, err := plan(o)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.KubeAPIQPS), o.KubeAPIBurst
	injectCfg := p.Inject
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if p.RegistryLookup {
		regOpts, err := o.ImageConfigOptions()
		if err != nil {
			return nil, err
		}
		regOpts.Client = clientset
		injectCfg.ImageConfig = imageconfig.New(regOpts)
	}

	var tlsOpts []func(*tls.Config)
	if !p.HTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	serverOpts := webhook.Options{Host: o.Host, Port: o.Port, CertDir: p.TLS.CertDir, TLSOpts: slices.Clone(tlsOpts)}
	var certs *selfsigned.Manager
	if p.TLS.Mode == TLSSelfSigned {
		certs, err = selfsigned.New(selfsigned.Options{
			Client: clientset, Log: log.WithName("tls"), Namespace: o.Namespace, SecretName: o.SecretName,
			WebhookConfigName: o.WebhookConfigName, Hosts: p.TLS.Hosts, CheckInterval: o.CertCheckInterval,
		})
		if err != nil {
			return nil, err
		}
		serverOpts.TLSOpts = append(serverOpts.TLSOpts, func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
	}

	// /metrics is served with the webhook's own certificate (rather than one
	// controller-runtime would generate at every start).
	metricsOpts := metricsserver.Options{BindAddress: p.Metrics.BindAddress, SecureServing: p.Metrics.Secure, TLSOpts: tlsOpts, CertDir: p.Metrics.CertDir}
	if certs != nil {
		metricsOpts.TLSOpts = append(slices.Clone(tlsOpts), func(c *tls.Config) { c.GetCertificate = certs.GetCertificate })
	}
	if p.Metrics.Secure {
		metricsOpts.FilterProvider = metricsAuth
	}
	server := newDrainer(webhook.NewServer(serverOpts), p.DrainTimeout, log.WithName("drain"))
	mgrOpts := ctrl.Options{
		Logger:                  log,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		PprofBindAddress:        o.PprofBindAddress,
		WebhookServer:           server,
		GracefulShutdownTimeout: ptr.To(p.GracefulShutdownTimeout),
	}
	for _, e := range p.Cache {
		if mgrOpts.Cache.ByObject == nil {
			mgrOpts.Cache.ByObject = map[client.Object]cache.ByObject{}
		}
		switch e.What {
		case cacheManagedPods:
			maps.Copy(mgrOpts.Cache.ByObject, controller.CacheByObject())
		case cacheNodes:
			mgrOpts.Cache.ByObject[&corev1.Node{}] = cache.ByObject{Transform: ewebhook.SlimNode}
		default:
			return nil, fmt.Errorf("planned a cache of %s, which the server cannot build", e.What)
		}
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	var cycles *controller.CycleDetector
	if p.CycleDetector {
		cycles = &controller.CycleDetector{Cache: mgr.GetCache(), Dependencies: inject.Dependencies, Log: log.WithName("cycles")}
		if err := mgr.Add(cycles); err != nil {
			return nil, err
		}
	}
	if p.Controller {
		if err := addController(mgr, cfg, o, p, cycles, log); err != nil {
			return nil, err
		}
	}
	if p.Webhook {
		if err := addInjector(mgr, p, injectCfg, clientset, cycles, log); err != nil {
			return nil, err
		}
	}
	if certs != nil {
		if err := mgr.Add(certs); err != nil {
			return nil, err
		}
	}
	// The webhook server's checker only where it serves: asking the manager
	// for its webhook server adds the server to what it runs.
	checker := func(name string) (healthz.Checker, error) {
		switch {
		case name == checkPing:
			return healthz.Ping, nil
		case name == checkCertificate && certs != nil:
			return certs.Healthz, nil
		case name == checkWebhook && p.Webhook:
			return mgr.GetWebhookServer().StartedChecker(), nil
		case name == checkShutdown && p.Webhook:
			return server.Ready, nil
		}
		return nil, fmt.Errorf("planned the check %q, which this process cannot make", name)
	}
	for _, name := range p.Healthz {
		c, err := checker(name)
		if err != nil {
			return nil, err
		}
		if err := mgr.AddHealthzCheck(name, c); err != nil {
			return nil, err
		}
	}
	for _, name := range p.Readyz {
		c, err := checker(name)
		if err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck(name, c); err != nil {
			return nil, err
		}
	}
	return &Webhook{Manager: mgr, Certs: certs}, nil
}

// addInjector registers the admission webhook on mgr's webhook server: the
// injector, its warnings and, in auto injection mode, the nodes' choice of mode.
func addInjector(mgr manager.Manager, p processPlan, injectCfg inject.Config, clientset kubernetes.Interface, cycles *controller.CycleDetector, log logr.Logger) error {
	m, err := ewebhook.NewMetrics(metrics.Registry)
	if err != nil {
		return err
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
	var warners []func(context.Context, *corev1.Pod) []string
	for _, name := range p.Warnings {
		switch {
		case name == warnAccess:
			aw, err := controller.NewAccessWarner(access.NewChecker(clientset.AuthorizationV1().SubjectAccessReviews(), access.Options{}),
				mgr.GetRESTMapper(), inject.Dependencies, p.SecretDependencies, p.AllowedResources)
			if err != nil {
				return fmt.Errorf("--allowed-custom-resources: %w", err)
			}
			warners = append(warners, aw.Warnings)
			// Adoption only where the controller can release the pod, by
			// the same allow-list.
			injector.Unjudged = func(_ context.Context, pod *corev1.Pod) []string { return aw.Unjudged(pod) }
		case name == warnCycles && cycles != nil:
			warners = append(warners, cycles.Warnings)
		default:
			return fmt.Errorf("planned the warning %q, which this process cannot give", name)
		}
	}
	injector.Warn = func(ctx context.Context, pod *corev1.Pod) []string {
		var out []string
		for _, w := range warners {
			out = append(out, w(ctx, pod)...)
		}
		return out
	}
	if p.NodeModes {
		modes := &ewebhook.NodeImageVolumes{Cache: mgr.GetCache(), Live: mgr.GetAPIReader(), Log: log.WithName("injection-mode")}
		if err := mgr.Add(modes); err != nil {
			return err
		}
		injector.Modes = modes
	}
	mgr.GetWebhookServer().Register(ewebhook.Path, &webhook.Admission{Handler: injector})
	return nil
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
	if o.GateAllNamespaces && !o.GateController() {
		errs = append(errs, errors.New("--gate-all-namespaces needs --controller or --controller-separate: nothing would remove the gates"))
	}
	if o.AdoptAllNamespaces && !o.GateController() {
		errs = append(errs, errors.New("--adopt-all-namespaces needs --controller or --controller-separate: nothing would remove the gates of adopted pods"))
	}
	if o.Controller && o.LeaderElect && (o.LeaseDuration <= o.RenewDeadline || o.RenewDeadline <= o.RetryPeriod || o.RetryPeriod <= 0) {
		errs = append(errs, fmt.Errorf("--leader-elect-lease-duration=%s --leader-elect-renew-deadline=%s --leader-elect-retry-period=%s: want lease duration > renew deadline > retry period > 0",
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps=%g --kube-api-burst=%d: want positive numbers", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	return errors.Join(errs...)
}

// addController adds the dependency controller to mgr: leader-elected in a
// manager of its own, so the webhook serves whatever happens to the election.
func addController(mgr manager.Manager, cfg *rest.Config, o Options, p processPlan, cycles controller.CycleFinder, log logr.Logger) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	m, err := controller.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	// Where the process's cache holds the managed pods as the controller needs
	// them (the plan gives a controller the cycle detector's cache), the
	// controller watches through it: one watch of pods in the process.
	var shared cache.Cache
	if slices.ContainsFunc(p.Cache, func(e cacheEntry) bool { return e.What == cacheManagedPods }) {
		shared = mgr.GetCache()
	}
	return mgr.Add(&controller.Runner{
		Config: cfg, LeaderElect: o.LeaderElect, Namespace: o.Namespace, Cache: shared,
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		Options: controller.Options{
			Dependencies:       inject.Dependencies,
			SecretDependencies: p.SecretDependencies,
			AllowedResources:   p.AllowedResources,
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
