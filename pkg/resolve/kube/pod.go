package kube

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Pod is ready when at least one pod matching the labels is ready and not
// terminating, on this node when RequireSameNode is set.
type Pod struct {
	Client *Client
	Ref    spec.PodRef
}

func (p *Pod) String() string {
	s := "pods in " + p.Ref.Namespace + " with labels " + labels.SelectorFromSet(p.Ref.Labels).String()
	if p.Ref.RequireSameNode {
		s += " on this node"
	}
	return s
}

// Wait waits until the Pod dependency is ready, reporting each change of its status.
func (p *Pod) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	src := source{resource: podsResource, namespace: p.Ref.Namespace, labelSelector: labels.SelectorFromSet(p.Ref.Labels).String()}
	where := ""
	if p.Ref.RequireSameNode {
		node, err := p.Client.waitNodeName(ctx, &r)
		if err != nil {
			return err
		}
		src.fieldSelector = "spec.nodeName=" + node
		where = " on node " + node
	}
	return p.Client.follow(ctx, []source{src}, func(snaps []snapshot) (bool, error) {
		snap := snaps[0]
		if snap.err != nil {
			r.set(resolve.Status{Reason: "cannot list pods: " + shortError(snap.err)})
			return false, nil
		}
		st := PodsReadiness(snap.objects, where)
		r.set(st)
		return st.Ready, nil
	})
}

// PodsReadiness is the rule of pods by labels: ready once any matching pod that is
// not terminating is ready. where ("" or " on node x") ends the reason. The
// resolver and the dependency controller both decide with it.
func PodsReadiness(pods []*unstructured.Unstructured, where string) resolve.Status {
	candidates := 0
	for _, pod := range pods {
		if pod.GetDeletionTimestamp() != nil {
			continue
		}
		if podReady(pod) {
			return resolve.Status{Ready: true}
		}
		candidates++
	}
	if candidates == 0 {
		return resolve.Status{Reason: "no matching pods" + where}
	}
	return resolve.Status{Reason: fmt.Sprintf("0 of %d matching pods ready%s", candidates, where)}
}
