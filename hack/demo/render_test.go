package main

import (
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The overlay renders; the app and its dependencies are told apart; the web pod gets
// what the loopback cluster needs, with the API server's real port.
func TestRenderOverlay(t *testing.T) {
	app, deps, err := render("../..")
	if err != nil {
		t.Fatal(err)
	}
	kinds := func(docs []byte) []string {
		var out []string
		for _, d := range strings.Split(string(docs), "---\n") {
			var m struct {
				Kind     string
				Metadata struct{ Name string }
			}
			if strings.TrimSpace(d) == "" {
				continue
			}
			if err := yaml.Unmarshal([]byte(d), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m.Kind+"/"+m.Metadata.Name)
		}
		return out
	}
	if got, want := strings.Join(kinds(deps), " "), "Service/mariadb Deployment/mariadb Job/db-migrate"; got != want {
		t.Errorf("dependencies: %s, want %s", got, want)
	}
	if got, want := strings.Join(kinds(app), " "),
		"Namespace/demo ServiceAccount/web RoleBinding/web-entrypoint-resolver Deployment/web ServiceAccount/web-gated Deployment/web-gated"; got != want {
		t.Errorf("app: %s, want %s", got, want)
	}

	deployments := map[string]*appsv1.Deployment{}
	for _, d := range strings.Split(string(app), "---\n") {
		if strings.Contains(d, "kind: Deployment") {
			var dep appsv1.Deployment
			if err := yaml.Unmarshal([]byte(d), &dep); err != nil {
				t.Fatal(err)
			}
			deployments[dep.Name] = &dep
		}
	}
	web, gated := deployments["web"], deployments["web-gated"]
	if web == nil || gated == nil {
		t.Fatalf("want the Deployments web and web-gated, have %v", deployments)
	}
	spec := web.Spec.Template.Spec
	if !spec.HostNetwork || *web.Spec.Replicas != 1 {
		t.Errorf("web: hostNetwork %v replicas %d, want true and 1", spec.HostNetwork, *web.Spec.Replicas)
	}
	env := map[string]string{}
	for _, e := range spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" || env["KUBERNETES_SERVICE_PORT"] != strconv.Itoa(localcluster.APIServerPort) {
		t.Errorf("web: API server env %v, want 127.0.0.1:%d", env, localcluster.APIServerPort)
	}
	if port := spec.Containers[0].Ports[0].ContainerPort; env["PORT"] != strconv.Itoa(int(port)) {
		t.Errorf("web: PORT=%s but containerPort %d", env["PORT"], port)
	}
	if web.Spec.Template.Annotations["entrypoint.io/dependency-service"] != "mariadb" {
		t.Errorf("web: the example's annotations are lost: %v", web.Spec.Template.Annotations)
	}
	if _, gate := web.Spec.Template.Annotations[inject.AnnotationGate]; gate {
		t.Errorf("web asks for gate mode; it shows the resolver's: %v", web.Spec.Template.Annotations)
	}

	// The gated twin: the same dependencies in gate mode, its own port, the same API
	// server address, and a ServiceAccount that nothing binds.
	ga := gated.Spec.Template.Annotations
	if ga[inject.AnnotationGate] != "true" {
		t.Errorf("web-gated: annotation %s = %q, want \"true\"", inject.AnnotationGate, ga[inject.AnnotationGate])
	}
	for k, v := range web.Spec.Template.Annotations {
		if strings.HasPrefix(k, "entrypoint.io/dependency-") && ga[k] != v {
			t.Errorf("web-gated: %s = %q, web has %q: the two must wait for the same", k, ga[k], v)
		}
	}
	genv := map[string]string{}
	for _, e := range gated.Spec.Template.Spec.Containers[0].Env {
		genv[e.Name] = e.Value
	}
	if genv["PORT"] == env["PORT"] || genv["PORT"] != strconv.Itoa(int(gated.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort)) {
		t.Errorf("web-gated: PORT=%s, containerPort %d; want its own port besides web's %s on the host network",
			genv["PORT"], gated.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort, env["PORT"])
	}
	if !gated.Spec.Template.Spec.HostNetwork || genv["KUBERNETES_SERVICE_HOST"] != env["KUBERNETES_SERVICE_HOST"] || genv["KUBERNETES_SERVICE_PORT"] != env["KUBERNETES_SERVICE_PORT"] {
		t.Errorf("web-gated: hostNetwork %v, API server env %v; want web's", gated.Spec.Template.Spec.HostNetwork, genv)
	}
	sa := gated.Spec.Template.Spec.ServiceAccountName
	if sa == "" || sa == web.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("web-gated: ServiceAccount %q, want its own", sa)
	}
	for _, d := range strings.Split(string(app), "---\n") {
		var rb rbacv1.RoleBinding
		if !strings.Contains(d, "kind: RoleBinding") {
			continue
		}
		if err := yaml.Unmarshal([]byte(d), &rb); err != nil {
			t.Fatal(err)
		}
		for _, s := range rb.Subjects {
			if s.Name == sa {
				t.Errorf("RoleBinding %s binds web-gated's ServiceAccount %s: gate mode must need none", rb.Name, sa)
			}
		}
	}
}
