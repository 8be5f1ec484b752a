package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var daemonSetsResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}

// DaemonSet is ready when the DaemonSet's pod on this node (matched by node name and
// controller reference) is ready. When the DaemonSet is fully scheduled and still
// has no pod on this node, it does not target this node and does not block.
type DaemonSet struct {
	Client *Client
	Ref    spec.ObjectRef
}

func (d *DaemonSet) String() string { return "daemonset " + d.Ref.String() }

// Wait waits until the DaemonSet dependency is ready, reporting each change of its status.
func (d *DaemonSet) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	node, err := d.Client.waitNodeName(ctx, &r)
	if err != nil {
		return err
	}
	sources := []source{
		{resource: daemonSetsResource, namespace: d.Ref.Namespace, fieldSelector: "metadata.name=" + d.Ref.Name},
		{resource: podsResource, namespace: d.Ref.Namespace, fieldSelector: "spec.nodeName=" + node},
	}
	return d.Client.follow(ctx, sources, func(snaps []snapshot) (bool, error) {
		st, vacuous := daemonSetStatus(snaps[0], snaps[1], node)
		if vacuous {
			// The DaemonSet's status and the pods come from two watches, so the status
			// may already count a pod for this node that the pod watch has not
			// delivered yet. A fresh LIST, which sees every pod the controller created
			// before it wrote that status, decides.
			pods, err := d.Client.dynamic.Resource(podsResource).Namespace(d.Ref.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sources[1].fieldSelector})
			if err != nil {
				st = resolve.Status{Reason: "cannot list pods: " + shortError(err)}
			} else {
				fresh := snapshot{}
				for i := range pods.Items {
					fresh.objects = append(fresh.objects, &pods.Items[i])
				}
				st, _ = daemonSetStatus(snaps[0], fresh, node)
			}
		}
		r.set(st)
		return st.Ready, nil
	})
}

// daemonSetStatus judges the DaemonSet from its object and the pods on this node.
// vacuous is true when it is ready only because no pod is meant for this node.
func daemonSetStatus(dsSnap, podSnap snapshot, node string) (st resolve.Status, vacuous bool) {
	if dsSnap.err != nil {
		return resolve.Status{Reason: "cannot list daemonsets: " + shortError(dsSnap.err)}, false
	}
	if podSnap.err != nil {
		return resolve.Status{Reason: "cannot list pods: " + shortError(podSnap.err)}, false
	}
	if len(dsSnap.objects) == 0 {
		return resolve.Status{Reason: "not found"}, false
	}
	ds := dsSnap.objects[0]
	var mine, terminating []*unstructured.Unstructured
	for _, pod := range podSnap.objects {
		switch {
		case !controlledBy(pod, ds):
		case pod.GetDeletionTimestamp() == nil:
			mine = append(mine, pod)
		default:
			terminating = append(terminating, pod)
		}
	}
	for _, pod := range mine {
		if podReady(pod) {
			return resolve.Status{Ready: true}, false
		}
	}
	if len(mine) > 0 {
		return resolve.Status{Reason: fmt.Sprintf("pod %s on node %s not ready", mine[0].GetName(), node)}, false
	}
	if len(terminating) > 0 {
		// Being replaced (a rolling update): the DaemonSet does target this node, and
		// the controller still counts the node as scheduled, so the counts below would
		// wrongly say it does not.
		return resolve.Status{Reason: fmt.Sprintf("pod %s on node %s is terminating", terminating[0].GetName(), node)}, false
	}
	desired := nestedInt(ds.Object, "status", "desiredNumberScheduled")
	current := nestedInt(ds.Object, "status", "currentNumberScheduled")
	observed := nestedInt(ds.Object, "status", "observedGeneration")
	if observed >= ds.GetGeneration() && current == desired {
		// The controller has seen the current spec and placed every pod it wants:
		// none is meant for this node.
		return resolve.Status{Ready: true}, true
	}
	return resolve.Status{Reason: fmt.Sprintf("no pod on node %s yet (%d of %d scheduled)", node, current, desired)}, false
}

func controlledBy(obj, owner *unstructured.Unstructured) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == owner.GetUID() && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// waitNodeName learns this pod's node, retrying while it cannot and saying why.
func (c *Client) waitNodeName(ctx context.Context, r *reporter) (string, error) {
	delay := minRetryDelay
	for {
		node, err := c.NodeName(ctx)
		if err == nil {
			return node, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		r.set(resolve.Status{Reason: err.Error()})
		sleep(ctx, delay)
		delay = min(2*delay, c.opts.PollInterval)
	}
}
