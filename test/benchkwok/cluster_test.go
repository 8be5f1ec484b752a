package benchkwok

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
)

// The fake nodes carry kwokAnnotation=kwokValue; kwok manages exactly those.
const (
	kwokAnnotation = "kwok.x-k8s.io/node"
	kwokValue      = "fake"
	// podsPerNode is each fake node's pod capacity: far above what the
	// scenarios put on one (BENCH_KWOK_PODS / BENCH_KWOK_NODES).
	podsPerNode = 1000
)

// kwokStages is kwok's configuration: which nodes it manages comes from flags,
// what it does to them from these stages. A node that is not Ready becomes
// Ready; a pod bound to a managed node becomes Running with every container
// ready (no IPs: nothing here reads them); a pod being deleted is removed, as
// a kubelet would once its containers stopped.
const kwokStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: bench-node-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      conditions:
      - type: Ready
        status: "True"
        reason: KubeletReady
        message: kwok keeps this node
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: bench-pod-running
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.phase
      operator: In
      values: ["Pending"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      startTime: {{ $now | Quote }}
      conditions:
      {{ range list "PodReadyToStartContainers" "Initialized" "ContainersReady" "Ready" }}
      - type: {{ . }}
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: bench-pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: Exists
  next:
    finalizers:
      empty: true
    delete: true
`

// processEnv is a process's environment: the harness's own, without a
// KUBECONFIG of the person running it (each process gets --kubeconfig).
func processEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

// startKwok runs kwok's controller for the nodes annotated kwokAnnotation=kwokValue.
// Node leases are on (40s, kwok's default), as kubelets hold them.
func (r *rig) startKwok(path string) (*benchproc.Process, error) {
	stages := filepath.Join(r.dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, []byte(kwokStages), 0o600); err != nil {
		return nil, fmt.Errorf("writing kwok's stages: %w", err)
	}
	return benchproc.Start("kwok", processEnv(), path,
		"--config", stages, "--kubeconfig", r.kubeconfig,
		"--manage-nodes-with-annotation-selector", kwokAnnotation+"="+kwokValue,
		"--node-lease-duration-seconds", "40",
		"--server-address", "127.0.0.1:0")
}

// startScheduler runs the real kube-scheduler against the control plane.
func (r *rig) startScheduler() (*benchproc.Process, error) {
	certs, err := os.MkdirTemp(r.dir, "scheduler-")
	if err != nil {
		return nil, err
	}
	return benchproc.Start("kube-scheduler", processEnv(), r.scheduler,
		"--kubeconfig", r.kubeconfig,
		"--authentication-kubeconfig", r.kubeconfig, "--authorization-kubeconfig", r.kubeconfig,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0", "--cert-dir", certs,
		"--kube-api-qps", strconv.Itoa(schedulerQPS), "--kube-api-burst", strconv.Itoa(schedulerBurst))
}

// fakeNode is one node for kwok to keep: room for podsPerNode pods, and its
// status (capacity) set at creation, as the API server allows for Nodes; kwok
// makes it Ready.
func fakeNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(podsPerNode, resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokAnnotation: kwokValue},
			Labels:      map[string]string{corev1.LabelHostname: name, "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

// createNodes creates the fake nodes and waits until kwok has made each Ready.
func (r *rig) createNodes() error {
	ctx := context.Background()
	t0 := time.Now()
	nodes := names("kwok-node", r.nodes)
	if err := parallel(len(nodes), func(i int) error {
		if _, err := r.client.CoreV1().Nodes().Create(ctx, fakeNode(nodes[i]), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", nodes[i], err)
		}
		return nil
	}); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		list, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing the nodes: %w", err)
		}
		ready := 0
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				ready++
			}
		}
		if ready == len(nodes) {
			if err := r.untaint(ctx, list.Items); err != nil {
				return err
			}
			fmt.Printf("%d nodes Ready (kwok) and untainted in %s\n", ready, time.Since(t0).Round(time.Millisecond))
			return nil
		}
		if err := r.kwok.Running(); err != nil {
			return fmt.Errorf("%d of %d nodes Ready: %w", ready, len(nodes), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 3m, %d of %d nodes are Ready: kwok does not keep them; %s", ready, len(nodes), r.kwok.Diagnosis())
		}
		time.Sleep(time.Second)
	}
}

// untaint does the node lifecycle controller's part (no kube-controller-manager
// runs here): the API server taints every new Node not-ready (admission plugin
// TaintNodesByCondition), and that controller lifts the taint once the node is
// Ready.
func (r *rig) untaint(ctx context.Context, nodes []corev1.Node) error {
	return parallel(len(nodes), func(i int) error {
		n := nodes[i].DeepCopy()
		kept := n.Spec.Taints[:0]
		for _, t := range n.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(n.Spec.Taints) {
			return nil
		}
		n.Spec.Taints = kept
		if _, err := r.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("lifting the not-ready taint of Ready node %s: %w", n.Name, err)
		}
		return nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
