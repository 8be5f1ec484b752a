package main

import (
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
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
	if got, want := strings.Join(kinds(app), " "), "Namespace/demo ServiceAccount/web RoleBinding/web-entrypoint-resolver Deployment/web"; got != want {
		t.Errorf("app: %s, want %s", got, want)
	}

	var web appsv1.Deployment
	for _, d := range strings.Split(string(app), "---\n") {
		if strings.Contains(d, "kind: Deployment") {
			if err := yaml.Unmarshal([]byte(d), &web); err != nil {
				t.Fatal(err)
			}
		}
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
}
