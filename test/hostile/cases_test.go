package hostile

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// maxDenialBytes bounds every response to a hostile request.
const maxDenialBytes = 16 << 10

// requestNamespace is the namespace of every admission request.
const requestNamespace = "openstack"

// hostileCase is one request of the benchmark.
type hostileCase struct {
	name string
	// pod returns the pod object as the API server would send it, as JSON-able
	// maps so that it may hold fields this build does not know. registry is the
	// host:port of the huge-config registry, "" when not running.
	pod func(registry string) map[string]any
	// podNamespace overrides the request's namespace in the object, when set.
	podNamespace string
	allowed      bool
	// problems is how many problems the denial must count, when above the number
	// it shows in full.
	problems int
	// denial is part of the denial's message, when set.
	denial string
	// registry: the case needs the huge-config registry.
	registry bool
}

// list is n items made by item, comma-separated.
func list(n int, item func(i int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item(i))
	}
	return b.String()
}

func container(name, image string, command ...string) map[string]any {
	c := map[string]any{"name": name, "image": image}
	if len(command) > 0 {
		c["command"] = command
	}
	return c
}

func pod(annotations map[string]string, containers ...map[string]any) map[string]any {
	cs := make([]any, len(containers))
	for i, c := range containers {
		cs[i] = c
	}
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"generateName": "app-7d9f8b6c5-", "annotations": annotations},
		"spec":     map[string]any{"containers": cs},
	}
}

// cases are the rows of issue 10's table, after a normal pod as the baseline.
func cases() []hostileCase {
	long := strings.Repeat("a", 100_000)
	return []hostileCase{
		{
			name: "normal pod",
			pod: func(string) map[string]any {
				return pod(map[string]string{
					"entrypoint.io/dependency-service": "mariadb,memcached",
					"entrypoint.io/dependency-job":     "keystone-db-sync,keystone-fernet-setup",
					"entrypoint.io/dependency-pod":     `[{"labels":{"application":"rabbitmq"}}]`,
				}, container("keystone-api", "keystone:2025.1", "/tmp/keystone-api.sh", "start"), container("metrics", "exporter:1", "/exporter"))
			},
			allowed: true,
		},
		{
			name: "containers: 100,000 bad items",
			pod: func(string) map[string]any {
				return pod(map[string]string{"entrypoint.io/containers": list(100_000, func(int) string { return "x" })},
					container("app", "app:1", "/app"))
			},
			problems: 100_000,
			denial:   `annotation entrypoint.io/containers: item 1 "x" of "x,x,x`,
		},
		{
			name: "containers: 100,000 items no name",
			pod: func(string) map[string]any {
				return pod(map[string]string{"entrypoint.io/containers": list(100_000, func(int) string { return "X" })},
					container("app", "app:1", "/app"))
			},
			problems: 100_000,
			denial:   `annotation entrypoint.io/containers: item 1 "X" of "X,X,X`,
		},
		{
			name: "dependency-pod: 60,000 JSON items, no labels",
			pod: func(string) map[string]any {
				return pod(map[string]string{"entrypoint.io/dependency-pod": "[" + list(60_000, func(int) string { return "{}" }) + "]"},
					container("app", "app:1", "/app"))
			},
			problems: 60_000,
			denial:   `annotation entrypoint.io/dependency-pod: item 1 "{}" of "[{},{},`,
		},
		{
			name: "200 containers, 2,000 missing waited for",
			pod: func(string) map[string]any {
				var cs []map[string]any
				for i := range 200 {
					cs = append(cs, container("app-"+strconv.Itoa(i), "app:1", "/app"))
				}
				return pod(map[string]string{"entrypoint.io/dependency-container": list(2000, func(i int) string { return "missing-" + strconv.Itoa(i) })}, cs...)
			},
			// Past the cap of a pod's dependency items, that alone is the denial.
			denial: `2,000 dependency items (2,000 in entrypoint.io/dependency-container), more than the 100 a pod may have`,
		},
		{
			name: "dependency-service: 100,000 items",
			pod: func(string) map[string]any {
				return pod(map[string]string{"entrypoint.io/dependency-service": list(100_000, func(i int) string { return "svc-" + strconv.Itoa(i) })},
					container("app", "app:1", "/app"))
			},
			denial: `100,000 dependency items (100,000 in entrypoint.io/dependency-service), more than the 100 a pod may have`,
		},
		{
			name: "100 kB unknown key and container name",
			pod: func(string) map[string]any {
				return pod(map[string]string{"entrypoint.io/" + long: "x", "entrypoint.io/containers": long},
					container("app", "app:1", "/app"), container(long, "app:1", "/app"))
			},
			denial: "... (100000 bytes in all): unknown annotation; expected one of entrypoint.io/dependency-service,",
		},
		{
			name: "image config of 256 MiB",
			pod: func(registry string) map[string]any {
				return pod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}, container("app", registry+"/"+hugeRepo+":1"))
			},
			registry: true,
			allowed:  true, // until the registry lookup bounds what it reads; then denied
		},
		{
			name: "pod names kube-system",
			pod: func(string) map[string]any {
				p := pod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}, container("app", "registry.example/private:1"))
				p["spec"].(map[string]any)["imagePullSecrets"] = []any{map[string]any{"name": "only-in-kube-system"}}
				return p
			},
			podNamespace: "kube-system",
			denial:       `the pod's namespace "kube-system" is not the namespace of the admission request "openstack"`,
		},
		{
			name: "fields of a newer API server",
			pod: func(string) map[string]any {
				future := map[string]any{"futureField": true}
				app := container("app", "app:1", "/app")
				app["futureField"] = future
				app["env"] = []any{map[string]any{"name": "UID", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.uid", "futureField": 1}}, "futureField": 1}}
				app["volumeMounts"] = []any{map[string]any{"name": "data", "mountPath": "/data", "futureField": 1}}
				p := pod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}, app)
				spec := p["spec"].(map[string]any)
				spec["initContainers"] = []any{map[string]any{"name": "init", "image": "init:1", "securityContext": map[string]any{"futureField": 1}}}
				spec["volumes"] = []any{map[string]any{"name": "data", "emptyDir": map[string]any{}, "futureField": 1}}
				spec["futureField"] = future
				return p
			},
			allowed: true,
		},
	}
}

// review is the AdmissionReview the API server would send for c.
func review(t testing.TB, c hostileCase, registry string) []byte {
	t.Helper()
	obj := c.pod(registry)
	if c.podNamespace != "" {
		obj["metadata"].(map[string]any)["namespace"] = c.podNamespace
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "hostile-1",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: requestNamespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// caseNamed finds a case by name.
func caseNamed(name string) (hostileCase, error) {
	for _, c := range cases() {
		if c.name == name {
			return c, nil
		}
	}
	return hostileCase{}, fmt.Errorf("no hostile case %q", name)
}
