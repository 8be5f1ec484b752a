package inject

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Which pods are gated, and what Mutate warns about: the pod's annotation wins,
// then the cluster-wide setting and the namespace label; without the controller
// those two are ignored with a warning; a pod with nothing node-free is not gated.
func TestGateMode(t *testing.T) {
	service := map[string]string{"entrypoint.io/dependency-service": "mariadb"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"entrypoint.io/dependency-service": "mariadb"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name        string
		annotations map[string]string
		config      func(*Config)
		pod         func(*corev1.Pod)
		gated       bool
		warning     string // a substring of the only warning; "" for none
	}{
		{name: "nothing asked", annotations: service},
		{name: "annotation", annotations: with(map[string]string{"entrypoint.io/gate": "true"}), gated: true},
		{name: "namespace", annotations: service, config: func(c *Config) { c.NamespaceGated = true }, gated: true},
		{name: "all namespaces", annotations: service, config: func(c *Config) { c.GateAllNamespaces = true }, gated: true},
		{name: "annotation false in a gated namespace", annotations: with(map[string]string{"entrypoint.io/gate": "false"}),
			config: func(c *Config) { c.NamespaceGated, c.GateAllNamespaces = true, true }},
		{name: "only node-local dependencies", annotations: map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-tcp": "db:5432"}},
		{name: "no dependencies", annotations: map[string]string{"entrypoint.io/gate": "true"}},
		{name: "namespace, controller off", annotations: service, config: func(c *Config) { c.NamespaceGated, c.Controller = true, false },
			warning: "namespace label entrypoint.io/gate=true asks for gate mode, which is ignored: the webhook runs with --controller=false"},
		{name: "all namespaces, controller off", annotations: service, config: func(c *Config) { c.GateAllNamespaces, c.Controller = true, false },
			warning: "the webhook's --gate-all-namespaces asks for gate mode, which is ignored: the webhook runs with --controller=false"},
		{name: "namespace, controller off, only node-local", annotations: map[string]string{"entrypoint.io/dependency-tcp": "db:5432"},
			config: func(c *Config) { c.NamespaceGated, c.Controller = true, false }},
		{name: "annotation false, controller off", annotations: with(map[string]string{"entrypoint.io/gate": "false"}),
			config: func(c *Config) { c.NamespaceGated, c.Controller = true, false }},
		{name: "namespace, pod with a node", annotations: service, config: func(c *Config) { c.NamespaceGated = true },
			pod:     func(p *corev1.Pod) { p.Spec.NodeName = "node-1" },
			warning: "namespace label entrypoint.io/gate=true asks for gate mode, which is ignored: spec.nodeName is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.config != nil {
				tt.config(&cfg)
			}
			pod := simplePod(tt.annotations)
			if tt.pod != nil {
				tt.pod(pod)
			}
			out, outcome, err := Mutate(context.Background(), pod, cfg)
			if err != nil || outcome.Result != ResultInjected {
				t.Fatalf("outcome %+v, err %v; want injected", outcome, err)
			}
			if got := hasSchedulingGate(out); got != tt.gated {
				t.Errorf("scheduling gate %v, want %v: %+v", got, tt.gated, out.Spec.SchedulingGates)
			}
			if got := strings.Contains(out.Annotations[AnnotationStatus], `"gated"`); got != tt.gated {
				t.Errorf("status %s: gated list %v, want %v", out.Annotations[AnnotationStatus], got, tt.gated)
			}
			if got := strings.Contains(outcome.Message, SchedulingGate); got != tt.gated {
				t.Errorf("message %q names the gate: %v, want %v", outcome.Message, got, tt.gated)
			}
			if out.Labels[LabelManaged] != "true" {
				t.Errorf("labels %v lack %s=true", out.Labels, LabelManaged)
			}
			switch {
			case tt.warning == "" && len(outcome.Warnings) > 0:
				t.Errorf("warnings %q, want none", outcome.Warnings)
			case tt.warning != "" && (len(outcome.Warnings) != 1 || !strings.Contains(outcome.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one containing %q", outcome.Warnings, tt.warning)
			}
		})
	}
}

// envOf is what the resolver in c would read: its values, and the downward API's
// NAMESPACE and POD_NAME for pod.
func envOf(pod *corev1.Pod, c *corev1.Container) func(string) (string, bool) {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	env[spec.EnvNamespace], env[spec.EnvPodName] = pod.Namespace, pod.Name
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// byPodRef orders a Spec's pod items, which a gated pod keeps in two places.
func byPodRef(s *spec.Spec) *spec.Spec {
	slices.SortStableFunc(s.Pods, func(a, b spec.PodRef) int { return strings.Compare(a.String(), b.String()) })
	return s
}

// A gated pod's dependencies read back by Dependencies are what the resolver of
// the same pod, not gated, would parse from its environment.
func TestDependenciesRoundTrip(t *testing.T) {
	cases := map[string]map[string]string{
		"every kind": {
			"entrypoint.io/dependency-service":         "mariadb,queues:rabbitmq",
			"entrypoint.io/dependency-job":             "db-migrate",
			"entrypoint.io/dependency-daemonset":       "ovs-agent",
			"entrypoint.io/dependency-container":       "cache",
			"entrypoint.io/dependency-pod":             `[{"labels":{"app":"x"}},{"labels":{"app":"libvirt"},"requireSameNode":true},{"labels":{"b":"c"},"namespace":"n"}]`,
			"entrypoint.io/dependency-custom-resource": `[{"apiVersion":"example.com/v1","kind":"Database","name":"db","fields":[{"key":"status.phase","value":"Ready"}]}]`,
			"entrypoint.io/dependency-config":          "/etc/app.conf",
			"entrypoint.io/dependency-socket":          "/run/x.sock",
			"entrypoint.io/dependency-tcp":             "db:5432",
			"entrypoint.io/dependency-http":            "http://h/x?a=1&b=2",
			"entrypoint.io/timeout":                    "90s",
			"entrypoint.io/containers":                 "app",
		},
		"jobs by labels":       {"entrypoint.io/dependency-job-json": `[{"labels":{"app":"migrate"}},{"name":"keys","namespace":"vault"}]`},
		"only any-node pods":   {"entrypoint.io/dependency-pod": `[{"labels":{"app":"x"}}]`},
		"only same-node pods":  {"entrypoint.io/dependency-pod": `[{"labels":{"app":"x"},"requireSameNode":true}]`},
		"only node-local deps": {"entrypoint.io/dependency-tcp": "db:5432"},
	}
	for name, annotations := range cases {
		t.Run(name, func(t *testing.T) {
			pod := simplePod(annotations)
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "cache", Image: "x", Command: []string{"/cache"}})
			plain, _, err := Mutate(context.Background(), pod, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			want, err := spec.FromEnv(envOf(plain, &plain.Spec.Containers[0]))
			if err != nil {
				t.Fatal(err)
			}

			gatedCfg := testConfig()
			gatedCfg.NamespaceGated = true
			gatedPod, _, err := Mutate(context.Background(), pod, gatedCfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*corev1.Pod{plain, gatedPod} {
				got, gated, err := Dependencies(p)
				if err != nil {
					t.Fatal(err)
				}
				if wantGated := hasSchedulingGate(p); gated != wantGated {
					t.Errorf("gated %v, want %v", gated, wantGated)
				}
				if !reflect.DeepEqual(byPodRef(got), byPodRef(want)) {
					t.Errorf("Dependencies of the pod (gated %v):\n got %+v\nwant %+v", gated, got, want)
				}
			}
			if name == "only node-local deps" {
				if hasSchedulingGate(gatedPod) {
					t.Error("a pod with nothing read from the API is gated")
				}
			} else if !hasSchedulingGate(gatedPod) {
				t.Error("a pod with dependencies read from the API (same-node ones included) in a gated namespace is not gated")
			}
		})
	}
}

func TestDependencies(t *testing.T) {
	injected := func(annotations map[string]string) *corev1.Pod {
		cfg := testConfig()
		cfg.NamespaceGated = true
		out, _, err := Mutate(context.Background(), simplePod(annotations), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	service := map[string]string{"entrypoint.io/dependency-service": "mariadb"}
	mixed := map[string]string{"entrypoint.io/dependency-service": "mariadb", "entrypoint.io/dependency-tcp": "db:1"}
	tests := []struct {
		name     string
		pod      func() *corev1.Pod
		services []spec.ObjectRef
		tcp      []string
		gated    bool
		err      string
	}{
		{name: "gated", pod: func() *corev1.Pod { return injected(service) }, services: []spec.ObjectRef{{Namespace: "shop", Name: "mariadb"}}, gated: true},
		{name: "gate set by the author, nothing gated", pod: func() *corev1.Pod {
			p := injected(map[string]string{"entrypoint.io/dependency-tcp": "db:1"})
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: SchedulingGate}}
			return p
		}, tcp: []string{"db:1"}, gated: true},
		{name: "injected before gate mode", pod: func() *corev1.Pod {
			p := injected(map[string]string{"entrypoint.io/dependency-tcp": "db:1"})
			p.Annotations[AnnotationStatus] = `{"version":1,"containers":["app"],"initContainer":"kubernetes-entrypoint-install"}`
			return p
		}, tcp: []string{"db:1"}},
		{name: "not injected", pod: func() *corev1.Pod { return simplePod(service) },
			err: "pod shop/web was not injected by the entrypoint webhook: it has no entrypoint.io/status annotation"},
		{name: "status not JSON", pod: func() *corev1.Pod {
			p := injected(service)
			p.Annotations[AnnotationStatus] = "yes"
			return p
		}, err: "pod shop/web: its entrypoint.io/status annotation is not the webhook's: invalid character"},
		{name: "status of another version", pod: func() *corev1.Pod {
			p := injected(service)
			p.Annotations[AnnotationStatus] = `{"version":2,"containers":["app"]}`
			return p
		}, err: "version 2 with 1 containers, want version 1"},
		{name: "wrapped container missing", pod: func() *corev1.Pod {
			p := injected(mixed)
			p.Spec.Containers[0].Name = "renamed"
			return p
		}, gated: true, err: `names wrapped container "app", which the pod does not have`},
		{name: "mixed: gated and kept read together", pod: func() *corev1.Pod { return injected(mixed) },
			services: []spec.ObjectRef{{Namespace: "shop", Name: "mariadb"}}, tcp: []string{"db:1"}, gated: true},
		{name: "gate-only, its container renamed: no container is read", pod: func() *corev1.Pod {
			p := injected(service)
			p.Spec.Containers[0].Name = "renamed"
			return p
		}, services: []spec.ObjectRef{{Namespace: "shop", Name: "mariadb"}}, gated: true},
		{name: "gate-only with a container named", pod: func() *corev1.Pod {
			p := injected(service)
			p.Annotations[AnnotationStatus] = `{"version":1,"mode":"gate-only","containers":["app"],"gated":[{"name":"DEPENDENCY_SERVICE","value":"shop:mariadb"}]}`
			return p
		}, err: "in mode gate-only with 1 gated variables and 1 containers, want version 1 with at least one gated variable and no container"},
		{name: "gate-only with nothing gated", pod: func() *corev1.Pod {
			p := injected(service)
			p.Annotations[AnnotationStatus] = `{"version":1,"mode":"gate-only"}`
			return p
		}, err: "in mode gate-only with 0 gated variables and 0 containers"},
		{name: "gate-only of another version", pod: func() *corev1.Pod {
			p := injected(service)
			p.Annotations[AnnotationStatus] = `{"version":2,"mode":"gate-only","gated":[{"name":"DEPENDENCY_SERVICE","value":"shop:mariadb"}]}`
			return p
		}, err: "version 2 in mode gate-only"},
		{name: "gated value the resolver would reject", pod: func() *corev1.Pod {
			p := injected(service)
			p.Annotations[AnnotationStatus] = `{"version":1,"containers":["app"],"initContainer":"x","gated":[{"name":"DEPENDENCY_SERVICE","value":"a,,b"}]}`
			return p
		}, gated: true, err: `pod shop/web: reading its dependencies: DEPENDENCY_SERVICE: item 2 of "a,,b" is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, gated, err := Dependencies(tt.pod())
			if gated != tt.gated {
				t.Errorf("gated %v, want %v", gated, tt.gated)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(deps.Services, tt.services) || !reflect.DeepEqual(deps.TCP, tt.tcp) || deps.Namespace != "shop" || deps.PodName != "web" {
				t.Errorf("got %+v, want services %v and tcp %v of shop/web", deps, tt.services, tt.tcp)
			}
		})
	}
}

// The status annotation of a gated pod lists the gated variables by name and
// value, in the contract's order, and still reads as a status of version 1.
func TestGatedStatusFormat(t *testing.T) {
	out, _, err := Mutate(context.Background(), simplePod(map[string]string{
		"entrypoint.io/gate":                       "true",
		"entrypoint.io/dependency-custom-resource": `[{"apiVersion":"v1","kind":"ConfigMap","name":"c"}]`,
		"entrypoint.io/dependency-service":         "db",
	}), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Version int `json:"version"`
		Gated   []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"gated"`
	}
	if err := json.Unmarshal([]byte(out.Annotations[AnnotationStatus]), &status); err != nil {
		t.Fatal(err)
	}
	if status.Version != 1 || len(status.Gated) != 2 || status.Gated[0].Name != spec.EnvServices || status.Gated[0].Value != "shop:db" ||
		status.Gated[1].Name != spec.EnvCustomResources {
		t.Errorf("status %s", out.Annotations[AnnotationStatus])
	}
	if !wasInjected(out) {
		t.Error("a gated pod does not read as injected")
	}
}

// Secret dependencies are gated only when the controller watches Secrets
// (--secret-dependencies); otherwise they stay in the container for the
// resolver, while the pod's other node-free dependencies are gated. The new
// node-free kinds are gated like services.
func TestGateModeSecretsAndNewKinds(t *testing.T) {
	annotations := map[string]string{
		"entrypoint.io/gate":                 "true",
		"entrypoint.io/dependency-rollout":   "deployment/api",
		"entrypoint.io/dependency-pvc":       "data",
		"entrypoint.io/dependency-configmap": "settings/region",
		"entrypoint.io/dependency-crd":       "certificates.cert-manager.io",
		"entrypoint.io/dependency-secret":    "db-creds/password",
	}
	nodeFree := []string{spec.EnvRollouts, spec.EnvClaims, spec.EnvConfigMaps, spec.EnvCRDs}
	for _, tt := range []struct {
		name         string
		secrets      bool
		gated, inEnv []string
	}{
		{name: "secrets left to the resolver", gated: nodeFree, inEnv: []string{spec.EnvSecrets}},
		{name: "secrets gated", secrets: true, gated: append(slices.Clone(nodeFree), spec.EnvSecrets)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SecretDependencies = tt.secrets
			out, outcome, err := Mutate(context.Background(), simplePod(annotations), cfg)
			if err != nil || outcome.Result != ResultInjected {
				t.Fatalf("outcome %+v, err %v; want injected", outcome, err)
			}
			var status injectionStatus
			if err := json.Unmarshal([]byte(out.Annotations[AnnotationStatus]), &status); err != nil {
				t.Fatal(err)
			}
			var gated []string
			for _, g := range status.Gated {
				gated = append(gated, g.Name)
			}
			slices.Sort(gated)
			want := slices.Sorted(slices.Values(tt.gated))
			if !slices.Equal(gated, want) {
				t.Errorf("gated %v, want %v", gated, want)
			}
			var env []string
			for _, e := range out.Spec.Containers[0].Env {
				if strings.HasPrefix(e.Name, "DEPENDENCY_") {
					env = append(env, e.Name)
				}
			}
			if !slices.Equal(env, tt.inEnv) {
				t.Errorf("container keeps %v, want %v", env, tt.inEnv)
			}
		})
	}
	// A pod whose only node-free-looking dependency is a Secret is not gated
	// without the opt-in: nothing would be held for.
	cfg := testConfig()
	out, _, err := Mutate(context.Background(), simplePod(map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-secret": "tls"}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hasSchedulingGate(out) {
		t.Errorf("a pod waiting only for a Secret was gated without --secret-dependencies")
	}
}

// A gate-only pod counts as injected while it carries the scheduling gate, the
// one thing added to it. A copy of it made once the controller removed the gate
// (a restore from a backup) is gated again, to the same pod: nothing else in
// it would wait.
func TestGateOnlyReadmission(t *testing.T) {
	cfg := testConfig()
	cfg.NamespaceGated = true
	gateOnly, outcome, err := Mutate(context.Background(), simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}), cfg)
	if err != nil || outcome.Result != ResultInjected || !GateOnly(gateOnly) {
		t.Fatalf("first Mutate: outcome %+v, err %v; want a gate-only pod", outcome, err)
	}
	tests := []struct {
		name   string
		pod    func() *corev1.Pod
		result string
		reason string
	}{
		{name: "still gated", pod: gateOnly.DeepCopy, result: ResultSkipped, reason: ReasonAlreadyInjected},
		{name: "released, then created again", pod: func() *corev1.Pod {
			p := gateOnly.DeepCopy()
			p.Spec.SchedulingGates = nil
			return p
		}, result: ResultInjected, reason: ReasonInjected},
		{name: "gate-only status with nothing gated", pod: func() *corev1.Pod {
			p := gateOnly.DeepCopy()
			p.Annotations[AnnotationStatus] = `{"version":1,"mode":"gate-only"}`
			return p
		}, result: ResultInjected, reason: ReasonInjected},
	}
	for _, tt := range tests {
		for _, m := range InjectionModes() {
			t.Run(tt.name+"/"+string(m), func(t *testing.T) {
				got, outcome, err := Mutate(context.Background(), tt.pod(), withMode(cfg, m))
				if err != nil || outcome.Result != tt.result || outcome.Reason != tt.reason {
					t.Fatalf("outcome %+v, err %v; want %s %s", outcome, err, tt.result, tt.reason)
				}
				if !reflect.DeepEqual(got, gateOnly) {
					t.Errorf("got %v\nwant the gate-only pod %v", got, gateOnly)
				}
			})
		}
	}
}

// A gate-only pod wraps no container, so what only wrapping needs neither
// denies it nor is looked up; the annotations that choose containers and their
// commands are still checked.
func TestGateOnlyPlan(t *testing.T) {
	gated := func(extra map[string]string) map[string]string {
		a := map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-service": "mariadb"}
		maps.Copy(a, extra)
		return a
	}
	tests := []struct {
		name    string
		pod     func() *corev1.Pod
		lookups bool // the registry is configured
		mode    InjectionMode
		caveat  string
		denied  string // a part of the denial; "" for a gate-only pod
	}{
		{name: "no command, no registry", lookups: false, pod: func() *corev1.Pod {
			p := simplePod(gated(nil))
			p.Spec.Containers[0].Command = nil
			return p
		}},
		{name: "no command, image unknown to the registry", lookups: true, pod: func() *corev1.Pod {
			p := simplePod(gated(nil))
			p.Spec.Containers[0].Command, p.Spec.Containers[0].Image = nil, "registry.example/unknown:1.0"
			return p
		}},
		{name: "only known sidecars", lookups: true, pod: func() *corev1.Pod {
			p := simplePod(gated(nil))
			p.Spec.Containers[0].Name = "istio-proxy"
			return p
		}},
		{name: "volume and init container named as the webhook's", lookups: true, pod: func() *corev1.Pod {
			p := simplePod(gated(nil))
			p.Spec.Volumes = []corev1.Volume{{Name: VolumeName}}
			p.Spec.InitContainers = []corev1.Container{{Name: InitContainerName, Image: "busybox"}}
			return p
		}},
		{name: "mount at the resolver's path", lookups: true, pod: func() *corev1.Pod {
			p := simplePod(gated(nil))
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: DefaultMountPath}}
			return p
		}},
		{name: "image volume asked where the webhook doubts it", lookups: true, mode: ModeInitContainer, caveat: "node a runs containerd 1.7.28",
			pod: func() *corev1.Pod {
				return simplePod(gated(map[string]string{AnnotationInjectionMode: "image-volume"}))
			}},
		{name: "command annotation not JSON", lookups: true, denied: "entrypoint.io/command.app",
			pod: func() *corev1.Pod {
				return simplePod(gated(map[string]string{"entrypoint.io/command.app": "/usr/bin/app"}))
			}},
		{name: "command annotation for a container not in the pod", lookups: true, denied: `this pod has no container "worker"`,
			pod: func() *corev1.Pod {
				return simplePod(gated(map[string]string{"entrypoint.io/command.worker": `["/w"]`}))
			}},
		{name: "containers annotation naming a container not in the pod", lookups: true, denied: "entrypoint.io/containers",
			pod: func() *corev1.Pod { return simplePod(gated(map[string]string{"entrypoint.io/containers": "worker"})) }},
		{name: "injection mode annotation invalid", lookups: true, denied: "entrypoint.io/injection-mode",
			pod: func() *corev1.Pod { return simplePod(gated(map[string]string{AnnotationInjectionMode: "sideways"})) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			registry := &fakeRegistry{}
			cfg.ImageConfig = registry
			if !tt.lookups {
				cfg.ImageConfig = nil
			}
			cfg.InjectionMode, cfg.ImageVolumeCaveat = tt.mode, tt.caveat
			pod := tt.pod()
			out, outcome, err := Mutate(context.Background(), pod, cfg)
			if tt.denied != "" {
				if err == nil || outcome.Result != ResultDenied || !strings.Contains(err.Error(), tt.denied) {
					t.Fatalf("outcome %+v, err %v; want denied for %q", outcome, err, tt.denied)
				}
				return
			}
			if err != nil || outcome.Result != ResultInjected || !GateOnly(out) {
				t.Fatalf("outcome %+v, err %v; want a gate-only pod", outcome, err)
			}
			if len(outcome.Warnings) > 0 {
				t.Errorf("warnings %q about what a gate-only pod does not use", outcome.Warnings)
			}
			if asked := registry.requests(); len(asked) > 0 {
				t.Errorf("the registry was asked for %v, which a gate-only pod does not need", asked)
			}
			want := pod.DeepCopy()
			want.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: SchedulingGate}}
			if !reflect.DeepEqual(out.Spec, want.Spec) {
				t.Errorf("spec %v\nwant the pod's with the gate only %v", out.Spec, want.Spec)
			}
			if !strings.Contains(outcome.Message, "no resolver injected") {
				t.Errorf("message %q does not say that no resolver was injected", outcome.Message)
			}
		})
	}
}

// optional-after, which the controller acts on, is in a gate-only pod's status
// with its dependencies, and Dependencies reads it back as from a wrapped
// container.
func TestGateOnlyKeepsOptionalAfter(t *testing.T) {
	annotations := map[string]string{
		"entrypoint.io/gate":               "true",
		"entrypoint.io/dependency-job":     "migrate",
		"entrypoint.io/dependency-service": "mariadb",
		"entrypoint.io/optional-after":     "30m",
		"entrypoint.io/dependency-socket":  "/run/db.sock", // deleted below for the gate-only pod
	}
	wrapped, _, err := Mutate(context.Background(), simplePod(annotations), testConfig())
	if err != nil || GateOnly(wrapped) {
		t.Fatalf("with a socket: gate-only %v, err %v; want the resolver", GateOnly(wrapped), err)
	}
	delete(annotations, "entrypoint.io/dependency-socket")
	gateOnly, _, err := Mutate(context.Background(), simplePod(annotations), testConfig())
	if err != nil || !GateOnly(gateOnly) {
		t.Fatalf("without the socket: gate-only %v, err %v; want gate-only", GateOnly(gateOnly), err)
	}
	for name, pod := range map[string]*corev1.Pod{"wrapped": wrapped, "gate-only": gateOnly} {
		deps, gated, err := Dependencies(pod)
		if err != nil || !gated {
			t.Fatalf("%s: gated %v, err %v", name, gated, err)
		}
		if deps.OptionalAfter != 30*time.Minute || len(deps.Jobs) != 1 || len(deps.Services) != 1 {
			t.Errorf("%s: Dependencies %+v; want the Job, the Service and optional-after 30m", name, deps)
		}
	}
}
