package inject

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestDeny(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	noCommand := func(p *corev1.Pod) { p.Spec.Containers[0].Command = nil }
	lookupOff := func(c Config) Config { c.ImageConfig = nil; return c }

	tests := []struct {
		name        string
		annotations map[string]string
		pod         func(*corev1.Pod) // changes simplePod, when set
		config      func(Config) Config
		reason      string
		// problems are the expected problems in order: each holds every substring given.
		problems [][]string
		// path is where the first problem is, when set.
		path string
	}{
		{
			name:        "empty list item",
			annotations: map[string]string{"entrypoint.io/dependency-service": "a,,b"},
			problems:    [][]string{{`annotation entrypoint.io/dependency-service: item 2 of "a,,b" is empty; expected [namespace:]name[#n],...`}},
			path:        "metadata.annotations[entrypoint.io/dependency-service]",
		},
		{
			name:        "service name",
			annotations: map[string]string{"entrypoint.io/dependency-service": "openstack:MariaDB"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-service: ", `"openstack:MariaDB"`, `has name "MariaDB", which is not a DNS-1035 label`, "expected [namespace:]name[#n],..."}},
		},
		{
			name:        "job name",
			annotations: map[string]string{"entrypoint.io/dependency-job": "db_migrate"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-job: ", `"db_migrate"`, "DNS-1123 subdomain", "expected [namespace:]name,..."}},
		},
		{
			name:        "job JSON misspelt key",
			annotations: map[string]string{"entrypoint.io/dependency-job-json": `[{"name":"a","Namespace":"b"}]`},
			problems:    [][]string{{"annotation entrypoint.io/dependency-job-json: ", `[{"name":"a","Namespace":"b"}]`, `unknown field "Namespace" (did you mean "namespace"?)`, `expected [{"name":"..."}`}},
		},
		{
			name: "job and job JSON",
			annotations: map[string]string{
				"entrypoint.io/dependency-job":      "a",
				"entrypoint.io/dependency-job-json": `[{"name":"b"}]`,
			},
			problems: [][]string{{"annotations entrypoint.io/dependency-job and entrypoint.io/dependency-job-json are both set", `{"name":"..."}`}},
		},
		{
			name:        "daemonset with two colons",
			annotations: map[string]string{"entrypoint.io/dependency-daemonset": "a:b:c"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-daemonset: ", `"a:b:c" has more than one ':'`, "expected [namespace:]name,..."}},
		},
		{
			name:        "rollout of an unknown kind",
			annotations: map[string]string{"entrypoint.io/dependency-rollout": "deployment/api,replicaset/web"},
			problems: [][]string{{`annotation entrypoint.io/dependency-rollout: item 2 "replicaset/web" of "deployment/api,replicaset/web" has kind "replicaset", ` +
				`which is not deployment, statefulset or daemonset; expected [namespace:]deployment|statefulset|daemonset/name,...`}},
			path: "metadata.annotations[entrypoint.io/dependency-rollout]",
		},
		{
			name:        "pvc name",
			annotations: map[string]string{"entrypoint.io/dependency-pvc": "Data"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-pvc: ", `has name "Data", which is not a DNS-1123 subdomain`, "expected [namespace:]name,..."}},
			path:        "metadata.annotations[entrypoint.io/dependency-pvc]",
		},
		{
			name:        "configmap key",
			annotations: map[string]string{"entrypoint.io/dependency-configmap": "settings/a b"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-configmap: ", `has key "a b", which is not a ConfigMap or Secret key`, "expected [namespace:]name[/key],..."}},
			path:        "metadata.annotations[entrypoint.io/dependency-configmap]",
		},
		{
			name:        "secret empty key",
			annotations: map[string]string{"entrypoint.io/dependency-secret": "db-creds/"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-secret: ", "has an empty key after '/'", "expected [namespace:]name[/key],..."}},
			path:        "metadata.annotations[entrypoint.io/dependency-secret]",
		},
		{
			name:        "crd without group",
			annotations: map[string]string{"entrypoint.io/dependency-crd": "certificates"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-crd: ", "has no group", "expected plural.group,..."}},
			path:        "metadata.annotations[entrypoint.io/dependency-crd]",
		},
		{
			name:        "container not in pod",
			annotations: map[string]string{"entrypoint.io/dependency-container": "app2,app"},
			problems:    [][]string{{`annotation entrypoint.io/dependency-container: item 1 "app2" of "app2,app" is not a container or native sidecar of this pod; expected names of this pod's containers (app), comma-separated`}},
		},
		{
			name:        "container waits for itself",
			annotations: map[string]string{"entrypoint.io/dependency-container": "app"},
			problems:    [][]string{{`container "app" is wrapped and listed in annotation entrypoint.io/dependency-container, so it would wait for itself`}},
		},
		{
			name:        "container name not a label",
			annotations: map[string]string{"entrypoint.io/dependency-container": "App"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-container: ", `"App" is not a DNS-1123 label`, "expected name,..."}},
		},
		{
			name:        "pod JSON without labels",
			annotations: map[string]string{"entrypoint.io/dependency-pod": `[{"labels":{}}]`},
			problems:    [][]string{{"annotation entrypoint.io/dependency-pod: ", `[{"labels":{}}]`, `has no "labels"`, `expected [{"labels":{"key":"value",...}`}},
		},
		{
			name:        "custom resource JSON not an array",
			annotations: map[string]string{"entrypoint.io/dependency-custom-resource": `{"kind":"X"}`},
			problems:    [][]string{{"annotation entrypoint.io/dependency-custom-resource: ", `{"kind":"X"}`, "is not a JSON array", `expected [{"apiVersion"`}},
		},
		{
			name:        "custom resource JSON missing fields",
			annotations: map[string]string{"entrypoint.io/dependency-custom-resource": `[{"kind":"X"}]`},
			problems: [][]string{
				{"annotation entrypoint.io/dependency-custom-resource: ", `has no "apiVersion"`},
				{"annotation entrypoint.io/dependency-custom-resource: ", `has no "name"`},
			},
		},
		{
			name:        "relative config path",
			annotations: map[string]string{"entrypoint.io/dependency-config": "etc/app.conf"},
			problems:    [][]string{{`annotation entrypoint.io/dependency-config: item 1 of "etc/app.conf" is not an absolute path; expected /absolute/path,...`}},
		},
		{
			name:        "socket path ends in slash",
			annotations: map[string]string{"entrypoint.io/dependency-socket": "/run/"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-socket: ", `"/run/" ends with '/'`, "expected /absolute/path,..."}},
		},
		{
			name:        "tcp without port",
			annotations: map[string]string{"entrypoint.io/dependency-tcp": "memcached"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-tcp: ", `"memcached" is not host:port`, "expected host:port,..."}},
		},
		{
			name:        "http with other scheme",
			annotations: map[string]string{"entrypoint.io/dependency-http": "ftp://files"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-http: ", `"ftp://files" has scheme "ftp", which is not http or https`, "expected http(s)://"}},
		},
		{
			name:        "containers names a missing container",
			annotations: map[string]string{"entrypoint.io/containers": "app, worker"},
			problems:    [][]string{{`annotation entrypoint.io/containers: item 2 "worker" of "app, worker" is not a regular container or native sidecar of this pod; expected names of this pod's containers (app), comma-separated`}},
		},
		{
			name:        "containers names a plain init container",
			annotations: map[string]string{"entrypoint.io/containers": "migrate"},
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "x", Command: []string{"/migrate"}}}
			},
			problems: [][]string{{"annotation entrypoint.io/containers: ", `"migrate" is not a regular container or native sidecar of this pod (it is a plain init container`, "expected names of this pod's containers (app)"}},
		},
		{
			name:        "command for a missing container",
			annotations: map[string]string{"entrypoint.io/command.web": `["/web"]`},
			problems:    [][]string{{"annotation entrypoint.io/command.web: this pod has no container \"web\"; expected entrypoint.io/command.<container> for one of this pod's containers (app)"}},
		},
		{
			name:        "command for a container not wrapped",
			annotations: map[string]string{"entrypoint.io/containers": "app", "entrypoint.io/command.sidecar": `["/sidecar"]`},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar", Image: "x"})
			},
			problems: [][]string{{`annotation entrypoint.io/command.sidecar: container "sidecar" is not wrapped (it is not listed in annotation entrypoint.io/containers)`}},
		},
		{
			name:        "command not JSON",
			annotations: map[string]string{"entrypoint.io/command.app": "/usr/bin/app serve"},
			pod:         noCommand,
			problems:    [][]string{{`annotation entrypoint.io/command.app: "/usr/bin/app serve" is not a JSON array; expected a JSON array of strings, the program first: ["/path/to/app", "arg", ...]`}},
		},
		{
			name:        "command empty array",
			annotations: map[string]string{"entrypoint.io/command.app": "[]"},
			pod:         noCommand,
			problems:    [][]string{{`annotation entrypoint.io/command.app: "[]" is an empty array; expected a JSON array of strings`}},
		},
		{
			name:        "command of numbers",
			annotations: map[string]string{"entrypoint.io/command.app": `["/app", 8080]`},
			pod:         noCommand,
			problems:    [][]string{{"annotation entrypoint.io/command.app: ", "holds a JSON number where only strings are allowed", "expected a JSON array of strings"}},
		},
		{
			name:        "command with empty program",
			annotations: map[string]string{"entrypoint.io/command.app": `["", "x"]`},
			pod:         noCommand,
			problems:    [][]string{{"annotation entrypoint.io/command.app: ", "has an empty program name"}},
		},
		{
			name:        "timeout not a duration",
			annotations: map[string]string{"entrypoint.io/timeout": "5 minutes"},
			problems:    [][]string{{`annotation entrypoint.io/timeout: "5 minutes" is not a Go duration; expected a Go duration greater than zero, such as 90s, 10m or 1h30m`}},
		},
		{
			name:        "timeout zero",
			annotations: map[string]string{"entrypoint.io/timeout": "0s"},
			problems:    [][]string{{`annotation entrypoint.io/timeout: "0s" is not greater than zero; expected a Go duration greater than zero`}},
		},
		{
			name:        "wait-for-failed-jobs not a boolean",
			annotations: map[string]string{"entrypoint.io/wait-for-failed-jobs": "yes"},
			problems:    [][]string{{`annotation entrypoint.io/wait-for-failed-jobs: "yes" is neither "true" nor "false"; expected "true" to keep waiting on a failed Job in case it is re-run, or "false" (the default) to fail the wait`}},
		},
		{
			name:        "optional-after not a duration",
			annotations: map[string]string{"entrypoint.io/optional-after": "5 minutes"},
			problems:    [][]string{{`annotation entrypoint.io/optional-after: "5 minutes" is not a Go duration; expected a Go duration greater than zero, such as 90s, 10m or 1h30m`}},
		},
		{
			name:        "inject not a boolean",
			annotations: map[string]string{"entrypoint.io/inject": "yes"},
			problems:    [][]string{{`annotation entrypoint.io/inject: "yes" is neither "true" nor "false"; expected "true", or "false" to opt the pod out`}},
		},
		{
			name:        "gate not a boolean",
			annotations: map[string]string{"entrypoint.io/gate": "yes", "entrypoint.io/dependency-service": "mariadb"},
			problems:    [][]string{{`annotation entrypoint.io/gate: "yes" is neither "true" nor "false"; expected "true" to hold the pod before scheduling`}},
			path:        "metadata.annotations[entrypoint.io/gate]",
		},
		{
			name:        "gate empty",
			annotations: map[string]string{"entrypoint.io/gate": " ", "entrypoint.io/dependency-service": "mariadb"},
			problems:    [][]string{{`annotation entrypoint.io/gate: "" is neither "true" nor "false"`}},
		},
		{
			name:        "gate with the controller off",
			annotations: map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-service": "mariadb"},
			config:      func(c Config) Config { c.Controller = false; return c },
			problems: [][]string{{`annotation entrypoint.io/gate: "true" asks for gate mode, but the webhook runs with --controller=false, ` +
				`so nothing would remove the scheduling gate entrypoint.io/dependencies and the pod would never be scheduled; ` +
				`turn the dependency controller on (chart value controller.enabled: true) or remove the annotation`}},
			path: "metadata.annotations[entrypoint.io/gate]",
		},
		{
			name:        "gate with the controller off, nothing to gate",
			annotations: map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-tcp": "db:5432"},
			config:      func(c Config) Config { c.Controller = false; return c },
			problems:    [][]string{{`annotation entrypoint.io/gate: "true" asks for gate mode, but the webhook runs with --controller=false`}},
		},
		{
			name:        "gate on a pod with a node",
			annotations: map[string]string{"entrypoint.io/gate": "true", "entrypoint.io/dependency-service": "mariadb"},
			pod:         func(p *corev1.Pod) { p.Spec.NodeName = "node-1" },
			problems:    [][]string{{`annotation entrypoint.io/gate: "true" asks for gate mode, but spec.nodeName is set, so the pod is never scheduled`, "remove the annotation or spec.nodeName"}},
			path:        "spec.nodeName",
		},
		{
			name:        "misspelt annotation",
			annotations: map[string]string{"entrypoint.io/dependency-services": "mariadb"},
			problems:    [][]string{{"annotation entrypoint.io/dependency-services: unknown annotation; did you mean entrypoint.io/dependency-service?"}},
		},
		{
			name:        "environment variable name as annotation",
			annotations: map[string]string{"entrypoint.io/DEPENDENCY_DAEMONSET": "ovs"},
			problems:    [][]string{{"annotation entrypoint.io/DEPENDENCY_DAEMONSET: unknown annotation; did you mean entrypoint.io/dependency-daemonset?"}},
		},
		{
			name:        "misspelt command annotation",
			annotations: map[string]string{"entrypoint.io/commands.app": `["/app"]`},
			problems:    [][]string{{"annotation entrypoint.io/commands.app: unknown annotation; did you mean entrypoint.io/command.app?"}},
		},
		{
			name:        "command annotation without container",
			annotations: map[string]string{"entrypoint.io/command": `["/app"]`},
			problems:    [][]string{{"annotation entrypoint.io/command: unknown annotation; expected entrypoint.io/command.<container>, e.g. entrypoint.io/command.app"}},
		},
		{
			name:        "unrelated unknown annotation",
			annotations: map[string]string{"entrypoint.io/wait-for": "db"},
			problems:    [][]string{{"annotation entrypoint.io/wait-for: unknown annotation; expected one of entrypoint.io/dependency-service, ", "entrypoint.io/command.<container>"}},
		},
		{
			name:        "env sets the same variable",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DEPENDENCY_SERVICE", Value: "shop:redis"}}
			},
			problems: [][]string{{`container "app" already sets DEPENDENCY_SERVICE in its env, which conflicts with annotation entrypoint.io/dependency-service; declare these dependencies in one place`}},
			path:     "spec.containers[0].env[0]",
		},
		{
			name:        "env sets the other jobs variable",
			annotations: map[string]string{"entrypoint.io/dependency-job": "db-migrate"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DEPENDENCY_JOBS_JSON", Value: `[{"name":"x"}]`}}
			},
			problems: [][]string{{`container "app" already sets DEPENDENCY_JOBS_JSON in its env, which conflicts with annotation entrypoint.io/dependency-job`}},
		},
		{
			name:        "env sets the jobs variable the JSON annotation supersedes",
			annotations: map[string]string{"entrypoint.io/dependency-job-json": `[{"name":"db-migrate"}]`},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DEPENDENCY_JOBS", Value: "x"}}
			},
			problems: [][]string{{`container "app" already sets DEPENDENCY_JOBS in its env, which conflicts with annotation entrypoint.io/dependency-job-json`}},
			path:     "spec.containers[0].env[0]",
		},
		{
			name:        "env sets the timeout",
			annotations: map[string]string{"entrypoint.io/timeout": "1m"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "ENTRYPOINT_TIMEOUT", Value: "2m"}}
			},
			problems: [][]string{{`container "app" already sets ENTRYPOINT_TIMEOUT in its env, which conflicts with annotation entrypoint.io/timeout`}},
		},
		{
			name:        "env sets wait-for-failed-jobs",
			annotations: map[string]string{"entrypoint.io/wait-for-failed-jobs": "true"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "ENTRYPOINT_WAIT_FOR_FAILED_JOBS", Value: "false"}}
			},
			problems: [][]string{{`container "app" already sets ENTRYPOINT_WAIT_FOR_FAILED_JOBS in its env, which conflicts with annotation entrypoint.io/wait-for-failed-jobs`}},
		},
		{
			name:        "mount where the resolver goes",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tools", MountPath: "/kubernetes-entrypoint/"}}
			},
			problems: [][]string{{`container "app" already mounts volume "tools" at /kubernetes-entrypoint, where the webhook mounts the resolver`}},
		},
		{
			name:        "names the webhook adds are taken",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: InitContainerName, Image: "x"}}
				p.Spec.Volumes = []corev1.Volume{{Name: VolumeName}}
			},
			problems: [][]string{
				{`the pod already has a container named "kubernetes-entrypoint-install"`, "rename that container"},
				{`the pod already has a volume named "kubernetes-entrypoint"`, "rename that volume"},
			},
			path: "spec.initContainers[0].name",
		},
		{
			name:        "only known sidecars",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Name = "istio-proxy"
			},
			problems: [][]string{{"no container to wrap: every container of this pod is a known sidecar (istio-proxy); name the ones to wrap in annotation entrypoint.io/containers"}},
		},
		{
			name:        "native sidecar before the mesh",
			annotations: map[string]string{"entrypoint.io/containers": "app,shipper"},
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{
					{Name: "shipper", Image: "x", Command: []string{"/ship"}, RestartPolicy: &always},
					{Name: "linkerd-init", Image: "x"},
				}
			},
			problems: [][]string{{`native sidecar "shipper" comes before the service mesh's init containers`}},
		},
		{
			name:        "no command, lookup off: the annotation to add is spelt out",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod:         noCommand,
			config:      lookupOff,
			reason:      ReasonNoCommand,
			problems:    [][]string{{`container "app" has no command and its image's entrypoint could not be read (registry lookup is off); add annotation entrypoint.io/command.app: '["/path/to/app", "arg"]'`}},
			path:        "spec.containers[0].command",
		},
		{
			name:        "args only, lookup off",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod:         func(p *corev1.Pod) { p.Spec.Containers[0].Command, p.Spec.Containers[0].Args = nil, []string{"serve"} },
			config:      lookupOff,
			reason:      ReasonNoCommand,
			problems:    [][]string{{`container "app" has args but no command and its image's entrypoint could not be read (registry lookup is off); add annotation entrypoint.io/command.app: '["/path/to/app"]' (its args are appended)`}},
		},
		{
			name:        "lookup fails",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Command, p.Spec.Containers[0].Image = nil, "registry.example/private:1.0"
			},
			reason:   ReasonImageLookupFailed,
			problems: [][]string{{`container "app" has no command and its image's entrypoint could not be read (image "registry.example/private:1.0": manifest unknown); add annotation entrypoint.io/command.app: '["/path/to/app", "arg"]'`}},
		},
		{
			name:        "image without ENTRYPOINT or CMD",
			annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Command, p.Spec.Containers[0].Image = nil, "registry.example/empty:1.0"
			},
			reason:   ReasonNoCommand,
			problems: [][]string{{`container "app" has no command and its image "registry.example/empty:1.0" has neither ENTRYPOINT nor CMD; add annotation entrypoint.io/command.app`}},
		},
		{
			name: "several problems, all reported",
			annotations: map[string]string{
				"entrypoint.io/dependency-service": "a,,b",
				"entrypoint.io/dependency-tcp":     "db",
				"entrypoint.io/timeout":            "soon",
				"entrypoint.io/dependecy-job":      "migrate",
				"entrypoint.io/inject":             "True",
			},
			pod:    noCommand,
			config: lookupOff,
			reason: ReasonInvalidAnnotation,
			problems: [][]string{
				{"annotation entrypoint.io/dependecy-job: unknown annotation; did you mean entrypoint.io/dependency-job?"},
				{`annotation entrypoint.io/dependency-service: item 2 of "a,,b" is empty`},
				{`annotation entrypoint.io/dependency-tcp: item 1 of "db" is not host:port`},
				{`annotation entrypoint.io/timeout: "soon" is not a Go duration`},
				{`annotation entrypoint.io/inject: "True" is neither "true" nor "false"`},
				{`container "app" has no command`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := simplePod(tt.annotations)
			if tt.pod != nil {
				tt.pod(pod)
			}
			cfg := testConfig()
			if tt.config != nil {
				cfg = tt.config(cfg)
			}
			got, outcome, err := Mutate(context.Background(), pod, cfg)
			if got != nil {
				t.Errorf("a denied pod came back: %+v", got)
			}
			var denied *DeniedError
			if !errors.As(err, &denied) {
				t.Fatalf("err = %v (%T), want a *DeniedError", err, err)
			}
			wantReason := tt.reason
			if wantReason == "" {
				wantReason = ReasonInvalidAnnotation
			}
			if outcome.Result != ResultDenied || outcome.Reason != wantReason || outcome.Message != err.Error() {
				t.Errorf("outcome %+v, want denied %s with the error as message", outcome, wantReason)
			}
			shown := details(denied.Problems)
			if err.Error() != strings.Join(shown, "; ") {
				t.Errorf("Error() = %q, want the problems joined with \"; \"", err.Error())
			}
			if len(shown) != len(tt.problems) || denied.Total != len(tt.problems) {
				t.Fatalf("got %d problems (total %d), want %d:\n%s", len(shown), denied.Total, len(tt.problems), strings.Join(shown, "\n"))
			}
			for i, want := range tt.problems {
				for _, sub := range want {
					if !strings.Contains(shown[i], sub) {
						t.Errorf("problem %d = %q\nwant it to contain %q", i+1, shown[i], sub)
					}
				}
			}
			if tt.path != "" && denied.Problems[0].Field != tt.path {
				t.Errorf("problem 1 is at %q, want %q", denied.Problems[0].Field, tt.path)
			}
		})
	}
}

// details are the messages of problems, in order.
func details(problems field.ErrorList) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.Detail
	}
	return out
}

// A denial's status details are bounded as its message is: at most
// MaxShownProblems causes, each at its field path with its shown message, and the
// pod's name cut.
func TestDeniedStatusDetails(t *testing.T) {
	pod := simplePod(map[string]string{
		"entrypoint.io/dependency-service": strings.Repeat("Bad_Name,", 1000) + "ok",
		"entrypoint.io/timeout":            "soon",
	})
	pod.Name = strings.Repeat("w", 300)
	_, _, err := Mutate(context.Background(), pod, testConfig())
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("want a denial, got %v", err)
	}
	details := denied.StatusDetails(pod.Name)
	if len(details.Causes) != MaxShownProblems || denied.Total != 1001 {
		t.Fatalf("%d causes of %d problems, want %d of 1001", len(details.Causes), denied.Total, MaxShownProblems)
	}
	for i, c := range details.Causes {
		if c.Field != "metadata.annotations[entrypoint.io/dependency-service]" || c.Message != denied.Problems[i].Detail {
			t.Errorf("cause %d = %+v", i, c)
		}
	}
	if details.Kind != "Pod" || len(details.Name) > 2*maxQuotedBytes {
		t.Errorf("details name a %s of %d bytes", details.Kind, len(details.Name))
	}
}
