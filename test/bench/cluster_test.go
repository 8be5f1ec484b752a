package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// mode is how a resolver learns about changes.
type mode string

const (
	watchMode mode = "watch" // cluster-admin: list+watch
	pollMode  mode = "poll"  // helm-toolkit's RBAC, get/list without watch: list every interval
)

// pollInterval is the original kubernetes-entrypoint's fixed interval.
const pollInterval = 2 * time.Second

// helmToolkitRole is what openstack-helm's helm-toolkit grants an init container.
var helmToolkitRole = []rbacv1.PolicyRule{
	{APIGroups: []string{"", "extensions", "batch", "apps", "discovery.k8s.io"}, Verbs: []string{"get", "list"},
		Resources: []string{"services", "endpoints", "endpointslices", "jobs", "pods", "daemonsets"}},
}

// setup is a fresh namespace and the environment a resolver in mode m needs there,
// without dependencies yet.
type setup struct {
	ns   string
	mode mode
	env  []string
}

func newSetup(b *testing.B, m mode) setup {
	b.Helper()
	ns := env.Namespace(b)
	cfg := env.Config
	vars := []string{"PATH=/usr/bin:/bin", "NAMESPACE=" + ns}
	if m == pollMode {
		cfg = env.ServiceAccountConfig(b, ns, "bench-poll", helmToolkitRole)
		vars = append(vars, "ENTRYPOINT_POLL_INTERVAL="+pollInterval.String())
	}
	vars = append(vars, "KUBECONFIG="+testenv.Kubeconfig(b, cfg, b.TempDir()))
	return setup{ns: ns, mode: m, env: vars}
}

// waitingOn is the resolver environment for the dependencies given.
func (s setup) waitingOn(services ...string) []string {
	deps := ""
	for i, svc := range services {
		if i > 0 {
			deps += ","
		}
		deps += s.ns + ":" + svc
	}
	return append(append([]string(nil), s.env...), "DEPENDENCY_SERVICE="+deps)
}

// started is the log line that tells a resolver's first list is done and it has
// settled: for watch mode the caller also checks the API server's open watches.
func (s setup) started() string {
	if s.mode == pollMode {
		return "watch not allowed; polling instead"
	}
	return "waiting for dependencies"
}

// createServices creates headless services (no cluster IP: envtest's service
// range is a /24) without endpoints.
func createServices(b *testing.B, ns, prefix string, n int) []string {
	b.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		_, err := env.Client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: names[i]},
			Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 3306}}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatalf("creating service: %v", err)
		}
	}
	return names
}

// waitSettled waits until every resolver of rs has done its first list and, in
// watch mode, the API server serves base+len(rs) EndpointSlice watches, each
// resolver watching one service.
func waitSettled(b *testing.B, s setup, rs []*resolver, watchesPerResolver int, base float64) {
	b.Helper()
	waitAll(b, rs, 30*time.Second, "the resolvers to start waiting", logged(s.started()))
	if s.mode != watchMode {
		return
	}
	want := base + float64(len(rs)*watchesPerResolver)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := openSliceWatches(b)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the API server serves %v EndpointSlice watches after 30s, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitWatchesBelow waits until the watches of exited resolvers are closed, so
// the next batch's count starts from base.
func waitWatchesBelow(b *testing.B, base float64) {
	b.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for openSliceWatches(b) > base {
		if time.Now().After(deadline) {
			b.Fatalf("EndpointSlice watches of exited resolvers still open after 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
