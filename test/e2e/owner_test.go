//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The owner summary for real: a gated Deployment waiting for a Service carries
// entrypoint.io/waiting naming the Service (the controller finds the
// Deployment through the ReplicaSet the cluster's controller-manager made),
// with an Event; once the database behind the Service is ready, the annotation
// goes, with an Event.
func TestOwnerSummaryOnADeployment(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-owner")
	ctx := context.Background()

	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-service": "db",
		inject.AnnotationGate:              "true",
	}, container("web", "print", "owner summary: the application runs"))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	want := "Waiting: 1 of 1 pods wait for service " + ns + "/db"
	var summary string
	eventually(t, "the Deployment's "+api.AnnotationWaiting+" naming service "+ns+"/db", 2*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		summary = d.Annotations[api.AnnotationWaiting]
		return summary == want, nil
	})
	logDeployments(ctx, t, ns)

	db, svc := database("db")
	_, err = cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, db, metav1.CreateOptions{})
	must(t, err)
	// At most one write per 10 s: the removal may wait that long after the first.
	eventually(t, "the annotation removed once the Service is ready", 2*time.Minute+controller.DefaultOwnerWriteInterval, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, set := d.Annotations[api.AnnotationWaiting]
		return !set, nil
	})
	logDeployments(ctx, t, ns)

	var reasons []string
	eventually(t, "the Events on the Deployment, waiting then ready", 30*time.Second, func(ctx context.Context) (bool, error) {
		list, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=web"})
		if err != nil {
			return false, err
		}
		reasons = nil
		for _, e := range list.Items {
			if e.Regarding.Kind == "Deployment" {
				reasons = append(reasons, e.Reason)
			}
		}
		return slices.Contains(reasons, "DependenciesWaiting") && slices.Contains(reasons, "DependenciesReady"), nil
	})
}

// logDeployments logs the namespace's Deployments as
// kubectl get deploy -o custom-columns=NAME:.metadata.name,WAITING:.metadata.annotations.entrypoint\.io/waiting
// prints them.
func logDeployments(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	list, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %s\n", "NAME", "WAITING")
	for _, d := range list.Items {
		w, ok := d.Annotations[api.AnnotationWaiting]
		if !ok {
			w = "<none>"
		}
		fmt.Fprintf(&b, "%-6s %s\n", d.Name, w)
	}
	t.Logf("kubectl get deploy -n %s -o custom-columns=NAME:.metadata.name,WAITING:.metadata.annotations.entrypoint\\.io/waiting\n%s", ns, b.String())
}
