package inject

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// FuzzAnnotations feeds arbitrary annotation values to Mutate. It must never panic;
// a denial must list its problems; and an accepted pod must come out as a plan the
// resolver accepts: every wrapped container runs the resolver with "--" and an argv,
// and its environment parses with spec.FromEnv, as the resolver will parse it; in
// gate mode (asked by the gate annotation or by the namespace) together with the
// variables gated in the status annotation, which the controller reads.
func FuzzAnnotations(f *testing.F) {
	f.Add("mariadb,openstack:keystone-api", "db-migrate", "", "ovs-agent", "shipper", `[{"labels":{"app":"x"}}]`,
		`[{"apiVersion":"v1","kind":"ConfigMap","name":"c"}]`, "/etc/app.conf", "/run/x.sock", "db:5432", "http://h/x",
		"", `["/bin/cache"]`, "30s", "true", "", "", "true", false,
		"deployment/api,other:statefulset/db", "data", "settings/region", "db-creds/password", "certificates.cert-manager.io",
		`[{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":"object.status.readyReplicas >= 2"}]`)
	f.Add("a,,b", "x", `[{"name":"y"}]`, "a:b:c", "nope", `{}`, `[1]`, "rel", "/x/", "h", "ftp://x",
		"app,nope", "[]", "-1s", "yes", "dependency-services", "x", "yes", true,
		"replicaset/x", "Data", "settings/", "a:b:c", "nogroup",
		`[{"apiVersion":"v1","kind":"ConfigMap","name":"c","expression":"object.data"}]`)
	f.Add("", "", `[{"labels":{"a":"b"},"namespace":"n"}]`, "", "", "", "", "", "", "[::1]:80", "", "cache,shipper",
		`["/bin/cache","$(HOME)"]`, "1h", "", "command.app", `["/x"]`, "", true,
		"", "", "", "", "", `[{"apiVersion":"v1","kind":"Secret","name":"s","expression":"(("}]`)
	f.Add("db", "", `[{"labels":{"a":"b"}}]`, "", "", `[{"labels":{"a":"b"}},{"labels":{"c":"d"},"requireSameNode":true}]`,
		`[{"apiVersion":"v1","kind":"ConfigMap","name":"c"}]`, "", "", "", "", "", "", "", "", "", "", "true", false,
		"daemonset/agent", "other:logs", "ca", "tls", "widgets.example.com", "")
	f.Fuzz(func(t *testing.T, service, job, jobJSON, daemonSet, container, pods, customResources, configs, sockets,
		tcp, http, containers, cacheCommand, timeout, inject, extraKey, extraValue, gate string, namespaceGated bool,
		rollout, pvc, configMap, secret, crd, cel string) {
		// One value per kind of spec.Kinds, in the table's order.
		values := []string{service, job, jobJSON, daemonSet, container, pods, customResources, cel, rollout, pvc, configMap, secret, crd,
			configs, sockets, tcp, http}
		kinds := spec.Kinds()
		if len(kinds) != len(values) {
			t.Fatalf("spec.Kinds has %d kinds, FuzzAnnotations fuzzes %d: give the new kind a parameter and seeds", len(kinds), len(values))
		}
		annotations := map[string]string{
			"entrypoint.io/containers":    containers,
			"entrypoint.io/command.cache": cacheCommand,
			"entrypoint.io/timeout":       timeout,
			"entrypoint.io/inject":        inject,
		}
		for i, k := range kinds {
			annotations[AnnotationPrefix+k.Annotation] = values[i]
		}
		if gate != "" {
			annotations["entrypoint.io/gate"] = gate
		}
		if extraKey != "" {
			annotations["entrypoint.io/"+extraKey] = extraValue
		}
		pod := fuzzPod(annotations)
		before := pod.DeepCopy()

		cfg := testConfig()
		cfg.NamespaceGated = namespaceGated
		out, outcome, err := Mutate(context.Background(), pod, cfg)
		if pod.String() != before.String() {
			t.Fatal("Mutate modified its input")
		}
		switch outcome.Result {
		case ResultSkipped:
			if outcome.Reason != ReasonOptOut || err != nil || out == nil {
				t.Fatalf("skipped with %+v, %v", outcome, err)
			}
		case ResultDenied:
			var denied *DeniedError
			if !errors.As(err, &denied) || len(denied.Problems) == 0 || denied.Total < len(denied.Problems) || out != nil {
				t.Fatalf("denied without problems: %+v, %v", outcome, err)
			}
			for _, p := range denied.Problems {
				if strings.TrimSpace(p.Detail) == "" || p.Field == "" {
					t.Fatalf("an empty problem in %v", denied.Problems)
				}
			}
			if len(err.Error()) >= maxDenialBytes {
				t.Fatalf("a denial of %d bytes", len(err.Error()))
			}
			if causes := denied.StatusDetails(pod.Name).Causes; len(causes) != len(denied.Problems) {
				t.Fatalf("%d causes for %d problems shown", len(causes), len(denied.Problems))
			}
		case ResultInjected:
			if err != nil {
				t.Fatalf("injected with an error: %v", err)
			}
			checkInjected(t, out)
		default:
			t.Fatalf("unknown outcome %+v", outcome)
		}
	})
}

func fuzzPod(annotations map[string]string) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Annotations: annotations},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{
				{Name: "shipper", Image: "registry.example/shipper:1.0", Command: []string{"/ship"}, RestartPolicy: &always},
			},
			Containers: []corev1.Container{
				{Name: "app", Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"}},
				{Name: "cache", Image: "registry.example/unknown:1.0", Args: []string{"-m", "64"}},
			},
		},
	}
}

// checkInjected checks what an injected pod must hold, whatever its annotations.
func checkInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if !wasInjected(pod) {
		t.Fatal("an injected pod is not recognized as injected")
	}
	var status injectionStatus
	if err := json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &status); err != nil {
		t.Fatal(err)
	}
	if gated := len(status.Gated) > 0; gated != hasSchedulingGate(pod) {
		t.Fatalf("gated variables %v, but scheduling gates %v", status.Gated, pod.Spec.SchedulingGates)
	}
	if _, _, err := Dependencies(pod); err != nil {
		t.Fatalf("the controller would reject the pod: %v", err)
	}
	wrapped := 0
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if len(c.Command) != 1 || c.Command[0] != DefaultMountPath+"/kubernetes-entrypoint" {
			continue
		}
		wrapped++
		if len(c.Args) < 2 || c.Args[0] != "--" || c.Args[1] == "" {
			t.Fatalf("container %s: args %q, want -- and an argv", c.Name, c.Args)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			if _, dup := env[e.Name]; dup {
				t.Fatalf("container %s sets %s twice", c.Name, e.Name)
			}
			env[e.Name] = e.Value
			if e.ValueFrom != nil { // what the downward API would give
				env[e.Name] = map[string]string{
					"metadata.name": "web-0", "metadata.namespace": "shop", "spec.nodeName": "node-1", "status.podIP": "10.0.0.7",
				}[e.ValueFrom.FieldRef.FieldPath]
			}
		}
		for _, g := range status.Gated {
			if !isGateable(g.Name, false) {
				t.Fatalf("%s gated", g.Name)
			}
			if _, ok := env[g.Name]; ok {
				t.Fatalf("%s both gated and in container %s", g.Name, c.Name)
			}
			env[g.Name] = g.Value
		}
		if _, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Fatalf("container %s: the resolver would reject its environment: %v", c.Name, err)
		}
		if v, ok := env[spec.EnvTimeout]; ok {
			if d, err := time.ParseDuration(v); err != nil || d <= 0 {
				t.Fatalf("container %s: %s=%q", c.Name, spec.EnvTimeout, v)
			}
		}
	}
	if wrapped == 0 {
		t.Fatal("an injected pod has no wrapped container")
	}
	again, outcome, err := Mutate(context.Background(), pod, testConfig())
	if err != nil || outcome.Reason != ReasonAlreadyInjected || again.String() != pod.String() {
		t.Fatalf("second Mutate: %+v, %v", outcome, err)
	}
}
