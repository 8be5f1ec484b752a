package server_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// The gate-mode flags reach pkg/inject's configuration.
func TestInjectConfigGateFlags(t *testing.T) {
	tests := []struct {
		args                                  []string
		controller, gateAllNS, secrets, adopt bool
	}{
		{args: []string{"--adopt-all-namespaces"}, controller: true, adopt: true},
		{args: nil, controller: true},
		{args: []string{"--controller=false"}},
		{args: []string{"--gate-all-namespaces"}, controller: true, gateAllNS: true},
		{args: []string{"--controller=false", "--gate-all-namespaces"}, gateAllNS: true},
		{args: []string{"--secret-dependencies"}, controller: true, secrets: true},
		// Without the controller nothing watches Secrets: none may be gated.
		{args: []string{"--controller=false", "--secret-dependencies"}},
		// A controller in a Deployment of its own removes the gates and watches
		// the Secrets: gate mode as with the controller here.
		{args: []string{"--controller=false", "--controller-separate"}, controller: true},
		{args: []string{"--controller=false", "--controller-separate", "--gate-all-namespaces", "--secret-dependencies"},
			controller: true, gateAllNS: true, secrets: true},
	}
	for _, tt := range tests {
		o := server.DefaultOptions()
		fs := flag.NewFlagSet("entrypoint-webhook", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.InjectConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Controller != tt.controller || cfg.GateAllNamespaces != tt.gateAllNS || cfg.NamespaceGated {
			t.Errorf("%q: Controller %v, GateAllNamespaces %v, NamespaceGated %v; want %v, %v, false",
				tt.args, cfg.Controller, cfg.GateAllNamespaces, cfg.NamespaceGated, tt.controller, tt.gateAllNS)
		}
		if cfg.AdoptAllNamespaces != tt.adopt || cfg.NamespaceAdopted {
			t.Errorf("%q: AdoptAllNamespaces %v, NamespaceAdopted %v; want %v, false", tt.args, cfg.AdoptAllNamespaces, cfg.NamespaceAdopted, tt.adopt)
		}
		if cfg.SecretDependencies != tt.secrets {
			t.Errorf("%q: SecretDependencies %v, want %v", tt.args, cfg.SecretDependencies, tt.secrets)
		}
	}
}

// The init container's flags are checked by pkg/inject's rules (Config.Validate),
// and each error names the flag that set the field. The flags' defaults are
// pkg/inject's.
func TestInjectConfigInitContainerFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(inject.Config) string // "" when right
		wantErr []string
	}{
		{name: "defaults", check: func(c inject.Config) string {
			want := inject.Config{Image: c.Image}.Default()
			if c.RunAsUser != want.RunAsUser || c.MountPath != want.MountPath || c.ImagePullPolicy != want.ImagePullPolicy ||
				!sameResources(c.Resources, want.Resources) {
				return fmt.Sprintf("got %+v, want pkg/inject's defaults %+v", c, want)
			}
			return ""
		}},
		{name: "another user", args: []string{"--run-as-user=1000"}, check: func(c inject.Config) string {
			if c.RunAsUser != 1000 {
				return fmt.Sprintf("RunAsUser %d", c.RunAsUser)
			}
			return ""
		}},
		// Not the default user in disguise: 0 given as a flag is root.
		{name: "root", args: []string{"--run-as-user=0"}, wantErr: []string{"--run-as-user=0: must be a positive UID"}},
		{name: "negative user", args: []string{"--run-as-user=-5"}, wantErr: []string{"--run-as-user=-5: must be a positive UID"}},
		{name: "no image", args: []string{"--image="}, wantErr: []string{"--image is required"}},
		{name: "pull policy", args: []string{"--image-pull-policy=Sometimes"},
			wantErr: []string{`--image-pull-policy=Sometimes: supported values: "Always", "IfNotPresent", "Never"`}},
		{name: "empty pull policy is the default", args: []string{"--image-pull-policy="}, check: func(c inject.Config) string {
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				return fmt.Sprintf("ImagePullPolicy %q", c.ImagePullPolicy)
			}
			return ""
		}},
		{name: "relative mount path", args: []string{"--mount-path=ke"}, wantErr: []string{"--mount-path=ke: must be a clean absolute path"}},
		{name: "unclean mount path", args: []string{"--mount-path=/a/../ke"}, wantErr: []string{"--mount-path=/a/../ke: must be a clean absolute path"}},
		{name: "request above limit", args: []string{"--init-cpu-request=200m"}, wantErr: []string{"--init-cpu-request=200m: must not exceed its limit 100m"}},
		{name: "no limits", args: []string{"--init-cpu-request=200m", "--init-cpu-limit=", "--init-memory-limit="}, check: func(c inject.Config) string {
			if len(c.Resources.Limits) != 0 || c.Resources.Requests.Cpu().String() != "200m" {
				return fmt.Sprintf("Resources %+v", c.Resources)
			}
			return ""
		}},
		{name: "negative request", args: []string{"--init-memory-request=-1"}, wantErr: []string{"--init-memory-request=-1: must not be negative"}},
		{name: "not a quantity", args: []string{"--init-memory-limit=lots"}, wantErr: []string{`--init-memory-limit="lots": want a Kubernetes quantity`}},
		{name: "several at once", args: []string{"--run-as-user=0", "--mount-path=/"},
			wantErr: []string{"--run-as-user=0", "--mount-path=/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := server.DefaultOptions()
			fs := flag.NewFlagSet("entrypoint-webhook", flag.ContinueOnError)
			o.BindFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := o.InjectConfig()
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if problem := tt.check(cfg); problem != "" {
				t.Error(problem)
			}
		})
	}
}

// sameResources compares quantities by value, not by their cached formatting.
func sameResources(a, b corev1.ResourceRequirements) bool {
	same := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for name, q := range x {
			if other, ok := y[name]; !ok || q.Cmp(other) != 0 {
				return false
			}
		}
		return true
	}
	return same(a.Requests, b.Requests) && same(a.Limits, b.Limits)
}
