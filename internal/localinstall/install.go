// Package localinstall installs the project's Helm chart on the local single-node
// cluster (internal/localcluster) the way an operator would, with the values that
// cluster needs, and waits until the webhook mutates pods and the dependency
// controller, in its own Deployment, holds its Lease. The end-to-end tests, the demo
// and the scale benchmark share it.
package localinstall

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// controllerLease is the Lease the controller's replicas elect a leader with.
const controllerLease = controller.LeaseName

// Options describe one install. Image, ResolverImage and Kubeconfig are required.
type Options struct {
	Repo       string // the repository root, holding charts/kubernetes-entrypoint
	Kubeconfig string
	// Image is the webhook's image as repository:tag, already in the node's containerd
	// (pull policy Never).
	Image string
	// ResolverImage is the image the webhook injects (injection.image), likewise.
	ResolverImage string
	// APIServerHost and APIServerPort are set in the env of the webhook and of the
	// controller: they run on the host network, where the API server listens on
	// loopback.
	APIServerHost string
	APIServerPort int
	// RegistryLookup turns on image config lookups (for containers without a command).
	RegistryLookup bool
	// LogLevel is the zap level of the webhook and the controller ("info" when empty).
	LogLevel string
	// Overrides are merged into Values' result, maps key by key.
	Overrides map[string]any
	Release   string // default kubernetes-entrypoint
	// Namespace of the release, created if missing; default kubernetes-entrypoint.
	Namespace string
	Logf      func(format string, args ...any)
}

// Installed is what Install did.
type Installed struct {
	Release, Namespace string
	// ResolverClusterRole is the chart's ClusterRole for resolvers in annotated pods.
	ResolverClusterRole string
	// WebhookURL is where the API server calls the webhook; empty when it is
	// registered through its Service (Overrides webhook.url "").
	WebhookURL string
	// Values are the values the chart was installed with.
	Values map[string]any
	// ControllerDeployment is the dependency controller's Deployment; empty when it
	// runs in the webhook's process (Overrides controller.separate false) or not at all.
	ControllerDeployment string
}

// Values are the chart values for this cluster: the webhook on the host network and
// registered by a URL on loopback (nothing routes Service or node addresses here), the
// dependency controller in its own Deployment on the host network too (it reaches the
// API server the same way; its health port apart from the webhook's), the built-in
// self-signed TLS mode, images that are never pulled.
func Values(o Options, webhookPort, healthPort, controllerHealthPort int) map[string]any {
	repo, tag, _ := strings.Cut(o.Image, ":")
	resolverRepo, resolverTag, _ := strings.Cut(o.ResolverImage, ":")
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	apiServerEnv := func() []any {
		return []any{
			map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": o.APIServerHost},
			map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": strconv.Itoa(o.APIServerPort)},
		}
	}
	return map[string]any{
		"image":        map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"replicaCount": 1,
		"tls":          map[string]any{"mode": "self-signed"},
		"webhook": map[string]any{
			"url":         fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", webhookPort),
			"port":        webhookPort,
			"hostNetwork": true,
			"extraEnv":    apiServerEnv(),
			"extraArgs":   []any{"--zap-log-level=" + level},
		},
		"controller": map[string]any{
			"hostNetwork":     true,
			"healthProbePort": controllerHealthPort,
			"extraEnv":        apiServerEnv(),
			"extraArgs":       []any{"--zap-log-level=" + level},
		},
		// init-container, whatever the nodes' containerd: the e2e suites and the
		// demo look for the install init container. An override of
		// injection.mode (Options.Overrides) tries the other modes.
		"injection": map[string]any{
			"image":           map[string]any{"repository": resolverRepo, "tag": resolverTag},
			"imagePullPolicy": "Never", "mode": "init-container",
		},
		"metrics":             map[string]any{"enabled": false},
		"healthProbe":         map[string]any{"port": healthPort},
		"registryLookup":      map[string]any{"enabled": o.RegistryLookup, "timeout": "5s"},
		"podDisruptionBudget": map[string]any{"enabled": false},
	}
}

// Install installs charts/kubernetes-entrypoint with the Helm SDK and waits until the
// webhook mutates an annotated pod (server-side dry run).
func Install(ctx context.Context, o Options) (*Installed, error) {
	if o.Image == "" || o.ResolverImage == "" || o.Kubeconfig == "" || o.APIServerHost == "" || o.APIServerPort == 0 {
		return nil, fmt.Errorf("localinstall: Image, ResolverImage, Kubeconfig, APIServerHost and APIServerPort are required")
	}
	if o.Release == "" {
		o.Release = "kubernetes-entrypoint"
	}
	if o.Namespace == "" {
		o.Namespace = "kubernetes-entrypoint"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	began := time.Now()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	values := alignController(merge(Values(o, ports[0], ports[1], ports[2]), o.Overrides), o.Overrides)

	ch, err := loader.Load(filepath.Join(o.Repo, "charts", "kubernetes-entrypoint"))
	if err != nil {
		return nil, fmt.Errorf("loading the chart: %w", err)
	}
	cfg := new(action.Configuration)
	getter := kube.GetConfig(o.Kubeconfig, "", o.Namespace)
	if err := cfg.Init(getter, o.Namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = o.Release
	install.Namespace = o.Namespace
	install.CreateNamespace = true
	install.Timeout = 2 * time.Minute
	rel, err := install.RunWithContext(ctx, ch, values)
	if err != nil {
		return nil, fmt.Errorf("helm install: %w", err)
	}
	in := &Installed{
		Release:             rel.Name,
		Namespace:           o.Namespace,
		ResolverClusterRole: o.Release + "-resolver",
		WebhookURL:          values["webhook"].(map[string]any)["url"].(string),
		Values:              values,
	}
	at := in.WebhookURL
	if at == "" {
		at = "its Service"
	}
	o.Logf("helm installed %s (chart %s) in namespace %s in %s; webhook called at %s",
		rel.Name, rel.Chart.Metadata.Version, o.Namespace, time.Since(began).Round(time.Millisecond), at)

	restCfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, in.ResolverClusterRole, metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("the chart's resolver ClusterRole: %w", err)
	}
	if err := waitMutating(ctx, cs, o.Namespace, o.Image); err != nil {
		return nil, err
	}
	o.Logf("the webhook mutates pods, %s after the install began", time.Since(began).Round(time.Millisecond))
	if separateController(values) {
		name, err := waitController(ctx, cs, o.Namespace, o.Release)
		if err != nil {
			return nil, err
		}
		in.ControllerDeployment = name
		o.Logf("the dependency controller (Deployment %s) holds its Lease, %s after the install began", name, time.Since(began).Round(time.Millisecond))
	}
	return in, nil
}

// alignController puts the controller on the webhook's network, with the webhook's
// way to the API server, unless the overrides place it themselves: a suite that
// moves the webhook to the pod network (webhook.hostNetwork false, the API server
// reached through the bridge) moves the controller with it.
func alignController(values, overrides map[string]any) map[string]any {
	set, _ := overrides["controller"].(map[string]any)
	webhook, _ := values["webhook"].(map[string]any)
	controller, _ := values["controller"].(map[string]any)
	if webhook == nil || controller == nil {
		return values
	}
	if _, ok := set["hostNetwork"]; !ok {
		controller["hostNetwork"] = webhook["hostNetwork"]
	}
	if _, ok := set["extraEnv"]; !ok {
		controller["extraEnv"] = webhook["extraEnv"]
	}
	return values
}

// separateController says whether the values run the controller in a Deployment of
// its own (the chart's defaults: controller.enabled and controller.separate).
func separateController(values map[string]any) bool {
	c, _ := values["controller"].(map[string]any)
	enabled, separate := true, true
	if v, ok := c["enabled"].(bool); ok {
		enabled = v
	}
	if v, ok := c["separate"].(bool); ok {
		separate = v
	}
	return enabled && separate
}

// waitController waits until the controller's Deployment (component=controller of
// the release) has every replica ready and a replica holds the Lease
// kubernetes-entrypoint-controller in ns, renewed within its duration; it returns
// the Deployment's name.
func waitController(ctx context.Context, cs kubernetes.Interface, ns, release string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	selector := "app.kubernetes.io/component=controller,app.kubernetes.io/instance=" + release
	var last string
	for {
		name, done, why := controllerReady(ctx, cs, ns, selector)
		if done {
			return name, nil
		}
		last = why
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the dependency controller is not running: %s\n%s", last, Diagnostics(cs, ns))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func controllerReady(ctx context.Context, cs kubernetes.Interface, ns, selector string) (name string, done bool, why string) {
	list, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", false, err.Error()
	}
	if len(list.Items) != 1 {
		return "", false, fmt.Sprintf("%d Deployments with labels %s", len(list.Items), selector)
	}
	d := list.Items[0]
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation || d.Status.ReadyReplicas < want || d.Status.UpdatedReplicas < want {
		return d.Name, false, fmt.Sprintf("Deployment %s: %d of %d replicas ready", d.Name, d.Status.ReadyReplicas, want)
	}
	lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, controllerLease, metav1.GetOptions{})
	if err != nil {
		return d.Name, false, fmt.Sprintf("Lease %s: %v", controllerLease, err)
	}
	s := lease.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity == "" || s.RenewTime == nil || s.LeaseDurationSeconds == nil ||
		time.Since(s.RenewTime.Time) > time.Duration(*s.LeaseDurationSeconds)*time.Second {
		return d.Name, false, fmt.Sprintf("Lease %s not held", controllerLease)
	}
	return d.Name, true, ""
}

// waitMutating creates an annotated pod with server-side dry run until the webhook
// mutates it (in either injection mode: its status annotation is there): then the
// webhook runs, serves TLS with a certificate the API server trusts (the
// self-signed mode wrote the caBundle), and its configuration is active.
func waitMutating(ctx context.Context, cs kubernetes.Interface, ns, image string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "webhook-probe",
			Annotations: map[string]string{"entrypoint.io/dependency-service": "nothing"},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image, Command: []string{"/probe"}}}},
	}
	var last string
	for {
		pod, err := cs.CoreV1().Pods("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err != nil:
			last = err.Error()
		case pod.Annotations[inject.AnnotationStatus] != "" && pod.Labels[inject.LabelManaged] == "true":
			return nil
		default:
			last = "the pod was admitted unchanged"
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the webhook does not mutate pods: %s\n%s", last, Diagnostics(cs, ns))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Diagnostics are the state and logs of the pods in the release's namespace: the
// webhook's and the controller's.
func Diagnostics(cs kubernetes.Interface, ns string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s %+v\n", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
		logs, _ := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		b.Write(logs)
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "no webhook or controller pod in namespace %s: see the kubelet's log", ns)
	}
	return b.String()
}

// merge sets every value of over in base, descending into maps that both have.
func merge(base, over map[string]any) map[string]any {
	for k, v := range over {
		if bm, ok := base[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				base[k] = merge(bm, om)
				continue
			}
		}
		base[k] = v
	}
	return base
}

// freePorts are n distinct TCP ports free on 127.0.0.1 right now.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
