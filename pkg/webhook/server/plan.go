package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject/options"
)

// Assembling the process is two steps: plan, which reads nothing and starts
// nothing, turns the options into what the process runs; New builds that (the
// clients, the manager, the servers, the runnables and the checks).

// processPlan is what the process runs, decided from its options alone.
type processPlan struct {
	// Webhook: the admission webhook is served (false: the controller alone).
	Webhook bool
	// Controller: the dependency controller runs in this process.
	Controller bool
	// CycleDetector: a controller removes the gates, here or separate, so every
	// replica follows the dependency graph for cycle warnings and reports.
	CycleDetector bool
	// NodeModes: --injection-mode=auto, the webhook chooses the injection mode
	// from the cluster's nodes.
	NodeModes bool
	// RegistryLookup: the webhook reads images' configurations from registries.
	RegistryLookup bool

	// TLS is how the webhook's certificate comes.
	TLS tlsPlan
	// Metrics is how /metrics is served.
	Metrics metricsPlan
	// HTTP2: the webhook and metrics listeners offer HTTP/2.
	HTTP2 bool

	// DrainTimeout bounds the webhook's drain at shutdown, and
	// GracefulShutdownTimeout the manager's whole stop: the drain's bound plus
	// time to stop the servers.
	DrainTimeout            time.Duration
	GracefulShutdownTimeout time.Duration

	// Cache is what the manager's cache holds beyond its defaults, in order.
	Cache []cacheEntry
	// Warnings are the warnings given at admission, in order.
	Warnings []string
	// Healthz and Readyz are the names of the health and readiness checks, in
	// the order they are added.
	Healthz, Readyz []string

	// Inject is pkg/inject's configuration (without its registry lookup,
	// which needs a client).
	Inject inject.Config
	// AllowedResources are --allowed-custom-resources, split; the controller
	// and the access warnings read no other custom resources.
	AllowedResources []string
	// SecretDependencies: --secret-dependencies, as the controller and the
	// access warnings read it (Inject gates on Secrets only where a controller
	// watches them).
	SecretDependencies bool
}

// TLS modes of a plan: tlsNone when the process serves no webhook.
const tlsNone = ""

// tlsPlan is where the webhook's certificate comes from.
type tlsPlan struct {
	// Mode is TLSCertDir, TLSSelfSigned or tlsNone.
	Mode string
	// CertDir is the webhook server's --cert-dir (controller-runtime's default
	// when empty).
	CertDir string
	// Hosts are the self-signed certificate's names and IPs.
	Hosts []string
}

// metricsPlan is how /metrics is served.
type metricsPlan struct {
	BindAddress string
	// Secure: over HTTPS, to callers the API server authenticates and
	// authorizes (metricsAuth).
	Secure bool
	// CertDir holds the certificate of /metrics in cert-dir mode: the
	// webhook's own, rather than one controller-runtime would generate.
	CertDir string
}

// What the cache may hold besides the defaults.
const (
	// cacheManagedPods: controller.CacheByObject, the label-selected pods,
	// slimmed.
	cacheManagedPods = "managed pods"
	// cacheNodes: the nodes, each reduced to its name and kubelet and runtime
	// versions (ewebhook.SlimNode).
	cacheNodes = "nodes"
)

// cacheEntry is one kind of object the cache holds, and why.
type cacheEntry struct {
	What string
	Why  string
}

// The warnings at admission.
const (
	// warnAccess: dependencies in other namespaces that the pod's
	// ServiceAccount may not read.
	warnAccess = "access"
	// warnCycles: a pod that closes a dependency cycle.
	warnCycles = "cycles"
)

// The health and readiness checks.
const (
	checkPing        = "ping"
	checkCertificate = "certificate"
	checkWebhook     = "webhook"
	checkShutdown    = "shutdown"
)

// plan validates o and decides what the process runs.
func plan(o Options) (processPlan, error) {
	if err := o.checkRoles(); err != nil {
		return processPlan{}, err
	}
	injectCfg, err := o.InjectConfig()
	if err != nil {
		return processPlan{}, err
	}
	p := processPlan{
		Webhook:                 o.Webhook,
		Controller:              o.Controller,
		CycleDetector:           o.GateController(),
		NodeModes:               o.Webhook && o.InjectionMode == options.InjectionModeAuto,
		RegistryLookup:          o.RegistryLookup,
		HTTP2:                   o.EnableHTTP2,
		DrainTimeout:            o.DrainTimeout,
		GracefulShutdownTimeout: o.DrainTimeout + 15*time.Second,
		Healthz:                 []string{checkPing},
		Inject:                  injectCfg,
		AllowedResources:        options.SplitList(o.AllowedCustomResources),
		SecretDependencies:      o.SecretDependencies,
	}

	p.TLS = tlsPlan{Mode: tlsNone, CertDir: o.CertDir}
	switch {
	case !o.Webhook:
	case o.TLSMode == TLSCertDir:
		p.TLS.Mode = TLSCertDir
	case o.TLSMode == TLSSelfSigned:
		p.TLS.Mode = TLSSelfSigned
		p.TLS.Hosts = options.SplitList(o.TLSHosts)
		if len(p.TLS.Hosts) == 0 {
			if o.Namespace == "" {
				return processPlan{}, errors.New("self-signed TLS needs the webhook's namespace: set --namespace or POD_NAMESPACE")
			}
			svc := o.ServiceName + "." + o.Namespace
			p.TLS.Hosts = []string{svc + ".svc", svc, o.ServiceName, svc + ".svc.cluster.local"}
		}
	default:
		return processPlan{}, fmt.Errorf("--tls-mode=%q: want %s or %s", o.TLSMode, TLSCertDir, TLSSelfSigned)
	}

	certDir := o.CertDir
	if certDir == "" {
		certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs") // controller-runtime's default
	}
	p.Metrics = metricsPlan{BindAddress: o.MetricsBindAddress, Secure: o.MetricsSecure, CertDir: certDir}

	if o.DrainTimeout < 0 {
		return processPlan{}, fmt.Errorf("--drain-timeout=%s: want a duration of 0 or more", o.DrainTimeout)
	}

	if p.CycleDetector {
		p.Cache = append(p.Cache, cacheEntry{What: cacheManagedPods,
			Why: "every replica follows the managed pods and the Services, for cycle warnings at admission and the controller's cycle reports"})
	}
	if p.NodeModes {
		p.Cache = append(p.Cache, cacheEntry{What: cacheNodes,
			Why: "--injection-mode=auto chooses the injection mode from the nodes' kubelet and runtime versions"})
	}

	if !p.Webhook {
		// The controller alone is ready once it runs (its pod's readiness
		// probe); its leader election decides whether it works.
		p.Readyz = []string{checkPing}
		return p, nil
	}
	p.Warnings = []string{warnAccess}
	if p.CycleDetector {
		p.Warnings = append(p.Warnings, warnCycles)
	}
	if p.TLS.Mode == TLSSelfSigned {
		p.Readyz = append(p.Readyz, checkCertificate)
	}
	p.Readyz = append(p.Readyz, checkWebhook, checkShutdown)
	return p, nil
}
