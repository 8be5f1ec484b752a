package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdoptGoldenCasesThroughTheCommandLine runs each of the webhook's adoption
// cases (pkg/inject/testdata/adopt) through kubectl-entrypoint with
// --namespace-adopted: inject prints the golden pod byte for byte, and lint
// notes, for an adopted pod, what moves to the gate. Without the flag, a pod
// without annotations is printed as it was.
func TestAdoptGoldenCasesThroughTheCommandLine(t *testing.T) {
	dir := filepath.Join(goldenDir, "adopt")
	inputs, err := filepath.Glob(filepath.Join(dir, "*.in.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no adoption cases in %s (err %v)", dir, err)
	}
	adopted := 0
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		want, err := os.ReadFile(filepath.Join(dir, name+".out.yaml"))
		if err != nil {
			continue // a case Mutate leaves as it was, or that the golden test writes
		}
		t.Run(name, func(t *testing.T) {
			flags := []string{"-f", in, "--image", goldenImage, "--registry-lookup", "--namespace-adopted"}
			out, errOut, code := run(t, "", append([]string{"inject"}, flags...)...)
			if code != 0 || out != string(want) {
				t.Errorf("inject: exit %d, stderr %q, stdout:\n%s\nwant the golden pod:\n%s", code, errOut, out, want)
			}
			out, errOut, code = run(t, "", append([]string{"lint"}, flags...)...)
			if code != 0 {
				t.Errorf("lint: exit %d, stdout %q, stderr %q; want no problem", code, out, errOut)
			}
			if strings.Contains(string(want), `"mode":"adopted"`) {
				adopted++
				if !strings.Contains(out, ": note: Pod") || !strings.Contains(out, "the scheduling gate entrypoint.io/dependencies holds the pod for DEPENDENCY_") ||
					!strings.Contains(errOut, "1 adopted") {
					t.Errorf("lint of an adopted pod: stdout %q, stderr %q; want a note of what moves to the gate, and the count", out, errOut)
				}
				plain, _, code := run(t, "", "inject", "-f", in, "--image", goldenImage, "--registry-lookup")
				if code != 0 || strings.Contains(plain, "entrypoint.io/status") {
					t.Errorf("inject without --namespace-adopted: exit %d, the pod adopted all the same:\n%s", code, plain)
				}
			}
		})
	}
	if adopted == 0 {
		t.Fatal("no adoption case was adopted")
	}
}

// TestLintNotesWhatStays: lint says what an adopted init container still waits
// for itself, why a pod is not adopted, and which custom resources the
// controller's allow-list must have for the webhook to adopt a pod.
func TestLintNotesWhatStays(t *testing.T) {
	const manifest = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: compute, namespace: openstack}
spec:
  selector: {matchLabels: {app: compute}}
  template:
    metadata: {labels: {app: compute}}
    spec:
      initContainers:
        - name: init
          image: quay.io/airshipit/kubernetes-entrypoint:v1
          env:
            - {name: DEPENDENCY_SERVICE, value: rabbitmq}
            - {name: DEPENDENCY_DAEMONSET, value: libvirt}
            - {name: DEPENDENCY_SOCKET, value: /run/libvirt/libvirt-sock}
            - {name: NODE_NAME, value: node-a}
      containers: [{name: app, image: app, command: [/app]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: setup, namespace: openstack}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
        - name: init
          image: quay.io/airshipit/kubernetes-entrypoint:v1
          env:
            - {name: DEPENDENCY_SERVICE, value: ""}
            - {name: DEPENDENCY_DAEMONSET, value: libvirt}
            - {name: NODE_NAME, value: node-a}
      containers: [{name: app, image: app, command: [/app]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: socket, namespace: openstack}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
        - name: init
          image: quay.io/airshipit/kubernetes-entrypoint:v1
          env:
            - {name: DEPENDENCY_SERVICE, value: ""}
            - {name: DEPENDENCY_SOCKET, value: /run/openvswitch/db.sock}
      containers: [{name: app, image: app, command: [/app]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: nova-api, namespace: openstack}
spec:
  selector: {matchLabels: {app: nova-api}}
  template:
    metadata: {labels: {app: nova-api}}
    spec:
      initContainers:
        - name: init
          image: quay.io/airshipit/kubernetes-entrypoint:v1
          env:
            - {name: DEPENDENCY_SERVICE, value: ""}
            - name: DEPENDENCY_CUSTOM_RESOURCE
              value: '[{"apiVersion":"mariadb.osh.openstack.org/v1alpha1","kind":"Connection","name":"nova-db"}]'
      containers: [{name: app, image: app, command: [/app]}]
`
	out, errOut, code := run(t, manifest, "lint", "-f", "-", "--namespace-adopted")
	if code != 0 {
		t.Fatalf("lint: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		`DaemonSet openstack/compute: adopted init container "init": the scheduling gate entrypoint.io/dependencies holds the pod for DEPENDENCY_SERVICE (1 item), DEPENDENCY_DAEMONSET (1 item)`,
		`Job openstack/setup: adopted init container "init": the scheduling gate entrypoint.io/dependencies holds the pod for DEPENDENCY_DAEMONSET (1 item)`,
		"the container still waits for DEPENDENCY_SOCKET (1 item)",
		`Job openstack/socket: not adopted: init container "init" waits for nothing the controller can judge from outside the pod`,
		"Deployment openstack/nova-api: the webhook adopts it only if the dependency controller may read Connection mariadb.osh.openstack.org/v1alpha1 (chart value controller.customResourceRules)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output lacks %q:\n%s", want, out)
		}
	}
}
