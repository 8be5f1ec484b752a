//go:build e2e && faults

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// suite: the webhook on the pod network, registered through its Service, which the API
// server resolves to a ready endpoint (two replicas cannot share a host port); pods
// reach the API server through the forwarder on the bridge; the self-signed TLS checks
// every 2 s so that a forced rotation completes within the scenario.
var suite = suiteHooks{
	clusterOptions:       localcluster.Options{HostOnPodNetwork: true},
	beforeInstall:        func(c *localcluster.Cluster) error { return c.ServeAPIServerOnBridge(context.Background()) },
	webhookAPIServerHost: localcluster.BridgeGateway,
	installOverrides: map[string]any{
		"replicaCount": 1,
		"webhook": map[string]any{
			"url":         "",
			"hostNetwork": false,
		},
		"tls":                 map[string]any{"selfSigned": map[string]any{"checkInterval": "2s"}},
		"podDisruptionBudget": map[string]any{"enabled": true},
	},
	report: faultsReport,
}

// tally counts what the scenarios measured, for the last line of make faults.
type tally struct {
	mu          sync.Mutex
	scenarios   []string
	failed      []string
	earlyStarts int
	lostPods    int
	figures     []string
}

// faults is the one tally of this test process (TestMain reports it).
var faults tally

// scenario registers t as one fault scenario: counted, and passed unless it failed.
func scenario(t *testing.T) {
	faults.mu.Lock()
	faults.scenarios = append(faults.scenarios, t.Name())
	faults.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			faultDiagnosis(t)
			faults.mu.Lock()
			faults.failed = append(faults.failed, t.Name())
			faults.mu.Unlock()
		}
	})
}

// lostPods counts pods lost outside measured (e.g. found in a cleanup).
func lostPods(n int) {
	faults.mu.Lock()
	defer faults.mu.Unlock()
	faults.lostPods += n
}

// faultDiagnosis logs the status and log tails of the release's pods, the webhook's
// and the controller's (the previous container's too, after a restart), and the ends
// of the control plane's logs: the test's namespace is dumped by its own cleanup.
func faultDiagnosis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(webhookNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("the release's pods: %v", err)
	}
	if pods != nil {
		for _, p := range pods.Items {
			component := p.Labels["app.kubernetes.io/component"] // webhook or controller
			t.Logf("%s pod %s: %s deleting=%v %+v", component, p.Name, p.Status.Phase, p.DeletionTimestamp != nil, p.Status.ContainerStatuses)
			for _, previous := range []bool{true, false} {
				b, err := cs.CoreV1().Pods(webhookNamespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](40), Previous: previous}).DoRaw(ctx)
				if err == nil {
					t.Logf("%s %s log tail (previous container: %v):\n%s", component, p.Name, previous, b)
				}
			}
		}
	}
	for _, name := range []string{"kube-apiserver", "kubelet", "kube-controller-manager"} {
		t.Logf("the end of %s's log:\n%s", name, fileTail(cluster.Path("logs", name+".log"), 25))
	}
}

// fileTail is the last n lines of the file at path.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// measured adds a scenario's early starts and lost pods, and its figures for the report.
func measured(t *testing.T, early, lost int, figures string) {
	t.Helper()
	faults.mu.Lock()
	defer faults.mu.Unlock()
	faults.earlyStarts += early
	faults.lostPods += lost
	faults.figures = append(faults.figures, fmt.Sprintf("%s: %s; early starts %d, lost pods %d", t.Name(), figures, early, lost))
	t.Logf("%s; early starts %d, lost pods %d", figures, early, lost)
	if early > 0 {
		t.Errorf("%d applications started before their dependencies were ready", early)
	}
	if lost > 0 {
		t.Errorf("%d expected pods were never created, injected or started", lost)
	}
}

// faultsReport prints each scenario's figures, then the one summary line, also to
// $FAULTS_SUMMARY when set (make faults prints that file last, after go test's own lines).
func faultsReport(code int) {
	faults.mu.Lock()
	defer faults.mu.Unlock()
	for _, f := range faults.figures {
		fmt.Fprintln(os.Stderr, "faults:", f)
	}
	n := len(faults.scenarios)
	passed := n - len(faults.failed)
	if code != 0 && n == 0 {
		passed = 0
	}
	line := fmt.Sprintf("faults: %d scenarios, %d passed, early starts %d, lost pods %d", n, passed, faults.earlyStarts, faults.lostPods)
	if len(faults.failed) > 0 {
		fmt.Fprintf(os.Stderr, "faults: failed: %s\n", strings.Join(faults.failed, ", "))
	}
	// make faults prints the file after go test's last line; without it, stderr.
	if path := os.Getenv("FAULTS_SUMMARY"); path != "" {
		err := os.MkdirAll(filepath.Dir(path), 0o755)
		if err == nil {
			err = os.WriteFile(path, []byte(line+"\n"), 0o644)
		}
		if err == nil {
			return
		}
		fmt.Fprintf(os.Stderr, "faults: writing %s: %v\n", path, err)
	}
	fmt.Fprintln(os.Stderr, line)
}

// injected tells whether the webhook mutated p: its status annotation and init container.
func injected(annotations map[string]string, initContainers []string) bool {
	_, ok := annotations[inject.AnnotationStatus]
	return ok && slices.Contains(initContainers, inject.InitContainerName)
}

// since rounds for the report.
func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
