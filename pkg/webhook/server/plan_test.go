package server

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// plan decides from the flags alone, without a cluster, what the process runs:
// each case is the defaults' plan with what its flags change.
func TestPlan(t *testing.T) {
	tmpCerts := filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	// The defaults: the webhook and the controller in one process, certificates
	// from --cert-dir, the injection mode chosen from the nodes.
	defaults := func() processPlan {
		return processPlan{
			Webhook: true, Controller: true, CycleDetector: true, NodeModes: true, RegistryLookup: true,
			TLS:                     tlsPlan{Mode: TLSCertDir},
			Metrics:                 metricsPlan{BindAddress: ":8080", Secure: true, CertDir: tmpCerts},
			DrainTimeout:            15 * time.Second,
			GracefulShutdownTimeout: 30 * time.Second,
			Cache:                   []cacheEntry{{What: cacheManagedPods}, {What: cacheNodes}},
			Warnings:                []string{warnAccess, warnCycles},
			Healthz:                 []string{checkPing},
			Readyz:                  []string{checkWebhook, checkShutdown},
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		// want changes the defaults' plan; injectController is the inject
		// config's Controller (gate mode allowed).
		want             func(*processPlan)
		injectController bool
		wantErr          []string // substrings; none: accepted
	}{
		{name: "defaults", injectController: true},
		{name: "controller alone: no TLS, no webhook parts, a readiness check still", args: []string{"--webhook=false"}, injectController: true,
			want: func(p *processPlan) {
				p.Webhook, p.NodeModes = false, false
				p.TLS.Mode = tlsNone
				p.Cache = []cacheEntry{{What: cacheManagedPods}}
				p.Warnings = nil
				p.Readyz = []string{checkPing}
			}},
		{name: "controller alone ignores --tls-mode", args: []string{"--webhook=false", "--tls-mode=bogus"}, injectController: true,
			want: func(p *processPlan) {
				p.Webhook, p.NodeModes = false, false
				p.TLS.Mode = tlsNone
				p.Cache = []cacheEntry{{What: cacheManagedPods}}
				p.Warnings = nil
				p.Readyz = []string{checkPing}
			}},
		{name: "webhook with a separate controller: cycle detector, no controller here", args: []string{"--controller=false", "--controller-separate"}, injectController: true,
			want: func(p *processPlan) { p.Controller = false }},
		{name: "webhook without any controller: no cycles, no gate mode", args: []string{"--controller=false"},
			want: func(p *processPlan) {
				p.Controller, p.CycleDetector = false, false
				p.Cache = []cacheEntry{{What: cacheNodes}}
				p.Warnings = []string{warnAccess}
			}},
		{name: "fixed injection mode: no node cache", args: []string{"--injection-mode=image-volume"}, injectController: true,
			want: func(p *processPlan) {
				p.NodeModes = false
				p.Cache = []cacheEntry{{What: cacheManagedPods}}
			}},
		{name: "self-signed: the Service's names, a certificate readiness check", args: []string{"--tls-mode=self-signed"}, injectController: true,
			want: func(p *processPlan) {
				p.TLS = tlsPlan{Mode: TLSSelfSigned, Hosts: []string{
					"entrypoint-webhook.entrypoint.svc", "entrypoint-webhook.entrypoint", "entrypoint-webhook", "entrypoint-webhook.entrypoint.svc.cluster.local"}}
				p.Readyz = []string{checkCertificate, checkWebhook, checkShutdown}
			}},
		{name: "self-signed with --tls-hosts needs no namespace", injectController: true,
			args: []string{"--tls-mode=self-signed", "--tls-hosts=webhook.example, 10.0.0.1", "--namespace=", "--controller=false", "--controller-separate"},
			want: func(p *processPlan) {
				p.Controller = false
				p.TLS = tlsPlan{Mode: TLSSelfSigned, Hosts: []string{"webhook.example", "10.0.0.1"}}
				p.Readyz = []string{checkCertificate, checkWebhook, checkShutdown}
			}},
		{name: "self-signed without a namespace", args: []string{"--tls-mode=self-signed", "--namespace=", "--controller=false", "--controller-separate"},
			wantErr: []string{"self-signed TLS needs the webhook's namespace"}},
		{name: "unknown TLS mode", args: []string{"--tls-mode=bogus"}, wantErr: []string{`--tls-mode="bogus"`}},
		{name: "cert dir for the webhook and /metrics", args: []string{"--cert-dir=/certs"}, injectController: true,
			want: func(p *processPlan) {
				p.TLS.CertDir = "/certs"
				p.Metrics.CertDir = "/certs"
			}},
		{name: "plain metrics, HTTP/2, registry lookups off", args: []string{"--metrics-secure=false", "--metrics-bind-address=:9090", "--enable-http2", "--registry-lookup=false"}, injectController: true,
			want: func(p *processPlan) {
				p.Metrics.Secure, p.Metrics.BindAddress = false, ":9090"
				p.HTTP2, p.RegistryLookup = true, false
			}},
		{name: "drain timeout bounds the shutdown", args: []string{"--drain-timeout=5s"}, injectController: true,
			want: func(p *processPlan) { p.DrainTimeout, p.GracefulShutdownTimeout = 5*time.Second, 20*time.Second }},
		{name: "custom resources and secrets for the controller and the warnings", args: []string{"--allowed-custom-resources=a.example.org, *.b.example.org", "--secret-dependencies"}, injectController: true,
			want: func(p *processPlan) {
				p.AllowedResources = []string{"a.example.org", "*.b.example.org"}
				p.SecretDependencies = true
			}},
		{name: "negative drain timeout", args: []string{"--drain-timeout=-1s"}, wantErr: []string{"--drain-timeout=-1s"}},
		{name: "separate controller with --webhook=false", args: []string{"--webhook=false", "--controller-separate"},
			wantErr: []string{"--controller-separate with --webhook=false"}},
		{name: "nothing to run", args: []string{"--webhook=false", "--controller=false"}, wantErr: []string{"nothing to run"}},
		{name: "bad injection settings", args: []string{"--init-cpu-request=lots"}, wantErr: []string{`--init-cpu-request="lots"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Namespace = "entrypoint"
			fs := flag.NewFlagSet("entrypoint-webhook", flag.ContinueOnError)
			o.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := plan(o)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("%q accepted: %+v", tc.args, got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%q refused: %v", tc.args, err)
			}
			if got.Inject.Controller != tc.injectController {
				t.Errorf("inject config's Controller %v, want %v", got.Inject.Controller, tc.injectController)
			}
			if got.Inject.InjectionMode != inject.ModeInitContainer && o.InjectionMode == "auto" {
				t.Errorf("auto injection mode starts as %q, want %q", got.Inject.InjectionMode, inject.ModeInitContainer)
			}
			if got.Inject.Image != o.Image {
				t.Errorf("inject config's image %q, want %q", got.Inject.Image, o.Image)
			}
			for _, e := range got.Cache {
				if e.Why == "" {
					t.Errorf("the cache of %s has no reason", e.What)
				}
			}
			want := defaults()
			if tc.want != nil {
				tc.want(&want)
			}
			// Compared without the inject config (checked above) and the
			// cache's reasons.
			got.Inject = inject.Config{}
			for i := range got.Cache {
				got.Cache[i].Why = ""
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("plan\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}
