package benchgate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
)

// startupTimeout bounds how long a fresh controller may take to release the
// canary pod: start, list and watch, evaluate, patch.
const startupTimeout = 2 * time.Minute

// startController runs entrypoint-webhook as the dependency controller alone and
// returns once it has released a canary pod (args added to its flags), i.e. its caches are synced and it
// removes gates. The canary lives in its own namespace and is deleted before
// this returns, so the scenario's figures start from a controller at rest.
func (r *rig) startController(ctx context.Context, args ...string) (*benchproc.Process, error) {
	return r.startControllerAs(ctx, "the controller", append([]string{"--leader-elect=false"}, args...)...)
}

// startControllerAs is startController with the process named name and args
// added (leader election), returning once it released the canary.
func (r *rig) startControllerAs(ctx context.Context, name string, args ...string) (*benchproc.Process, error) {
	p, err := r.launchController(name, args...)
	if err != nil {
		return nil, err
	}
	if err := r.canary(ctx, p); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// launchController starts entrypoint-webhook as the dependency controller alone,
// with the rig's client limits and args added, and returns at once.
func (r *rig) launchController(name string, args ...string) (*benchproc.Process, error) {
	return benchproc.Start(name, controllerEnv(), r.controller, append([]string{
		"--webhook=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--kubeconfig", r.kubeconfig,
		"--kube-api-qps", strconv.Itoa(r.qps), "--kube-api-burst", strconv.Itoa(r.burst),
	}, args...)...)
}

func (r *rig) canary(ctx context.Context, p *benchproc.Process) error {
	ns, err := newNamespace(ctx, r.client, "canary")
	if err != nil {
		return err
	}
	w, err := watchPods(ctx, r.client, ns)
	if err != nil {
		return err
	}
	defer w.close()
	if err := createServices(ctx, r.client, ns, []string{"ready"}); err != nil {
		return err
	}
	if _, err := makeReady(ctx, r.client, ns, []string{"ready"}); err != nil {
		return err
	}
	pod := []string{"canary"}
	if err := createGatedPods(ctx, r.client, ns, pod, func(int) string { return "ready" }); err != nil {
		return err
	}
	if err := w.waitFor(pod, startupTimeout, "released", p.Running, isReleased); err != nil {
		if p.Exited() { // err says so, with the diagnosis
			return fmt.Errorf("the controller did not release a canary pod whose Service is ready: %w", err)
		}
		s, _ := w.state("canary")
		return fmt.Errorf("the controller did not release a canary pod whose Service is ready: %w; the pod: %s; %s",
			err, describe(s), p.Diagnosis())
	}
	return deletePods(ctx, r.client, ns)
}

// describe is what a diagnosis says of a pod: gate and condition.
func describe(s podState) string {
	out := "gated"
	if !s.gated {
		out = "not gated"
	}
	if s.condition == nil {
		return out + ", no " + string(conditionType) + " condition"
	}
	return fmt.Sprintf("%s, condition %s=%s reason %s: %q", out, conditionType, s.condition.Status, s.condition.Reason, s.condition.Message)
}
