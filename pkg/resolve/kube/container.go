package kube

import (
	"context"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// Container is ready when the named container of this pod, a regular container or
// a native sidecar (an init container with restartPolicy Always), is ready.
type Container struct {
	Client *Client
	Name   string
}

func (c *Container) String() string { return "container " + c.Name }

// Wait waits until the Container dependency is ready, reporting each change of its status.
func (c *Container) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	opts := c.Client.opts
	src := source{resource: podsResource, namespace: opts.Namespace, fieldSelector: "metadata.name=" + opts.PodName}
	return c.Client.follow(ctx, []source{src}, func(snaps []snapshot) (bool, error) {
		snap := snaps[0]
		if snap.err != nil {
			r.set(resolve.Status{Reason: "cannot read own pod: " + shortError(snap.err)})
			return false, nil
		}
		if len(snap.objects) == 0 {
			r.set(resolve.Status{Reason: "own pod " + opts.Namespace + "/" + opts.PodName + " not found"})
			return false, nil
		}
		pod := snap.objects[0].Object
		if !hasContainer(pod, c.Name) {
			return false, resolve.Terminal("pod %s/%s has no container or native sidecar named %q", opts.Namespace, opts.PodName, c.Name)
		}
		for _, list := range [][]any{nestedSlice(pod, "status", "containerStatuses"), nestedSlice(pod, "status", "initContainerStatuses")} {
			for _, s := range list {
				m, _ := s.(map[string]any)
				if m["name"] == c.Name && m["ready"] == true {
					r.set(resolve.Status{Ready: true})
					return true, nil
				}
			}
		}
		r.set(resolve.Status{Reason: "not ready"})
		return false, nil
	})
}

func hasContainer(pod map[string]any, name string) bool {
	for _, field := range []string{"containers", "initContainers"} {
		for _, c := range nestedSlice(pod, "spec", field) {
			if m, _ := c.(map[string]any); m["name"] == name {
				return true
			}
		}
	}
	return false
}
