package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The objects of examples/dependencies.yaml: applied second.
var dependencyNames = map[string]bool{"Service/mariadb": true, "Deployment/mariadb": true, "Job/db-migrate": true}

// waitingFor are the columns of `kubectl get pods` that show what each pod waits for,
// in either mode: the controller's condition message.
const waitingFor = `custom-columns=NAME:.metadata.name,STATUS:.status.phase,NODE:.spec.nodeName,` +
	`WAITING-FOR:.status.conditions[?(@.type=="entrypoint.io/DependenciesReady")].message`

type demo struct {
	n  *narrator
	c  *localcluster.Cluster
	cs kubernetes.Interface
	// pluginDir holds kubectl-entrypoint, put first on kubectl's PATH so that
	// `kubectl entrypoint` finds it the way kubectl finds any plugin.
	pluginDir string

	// web waits in the resolver's mode, gated in gate mode.
	web, gated *progress

	mu sync.Mutex
	// When this demo saw each thing happen (its own watches, or the log line's time).
	endpointReady, jobDone, gateRemoved time.Time
}

// progress is what the demo saw of one app pod.
type progress struct {
	// resolverExec and appOutput are guarded by demo.mu.
	resolverExec, appOutput time.Time
	// reported is closed once the resolver has said what blocks it.
	reported     chan struct{}
	reportedOnce sync.Once
	// started is closed once the application printed its first line.
	started     chan struct{}
	startedOnce sync.Once
}

func newProgress() *progress {
	return &progress{reported: make(chan struct{}), started: make(chan struct{})}
}

func (d *demo) play(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	d.web, d.gated = newProgress(), newProgress()

	app, deps, err := render(d.c.Repo())
	if err != nil {
		return err
	}
	d.n.step("Applying the app twice: examples/deployment.yaml (web: the resolver waits in its container) and %s/gated.yaml "+
		"(web-gated: the same app in gate mode, its ServiceAccount bound to nothing), via %s (host network, see its comments)", overlayDir, overlayDir)
	if err := d.kubectlApply(ctx, app); err != nil {
		return err
	}

	pod, err := d.waitPod(ctx, "app=web")
	if err != nil {
		return err
	}
	d.n.step("What the webhook made of the pod %s (kubectl -n %s get pod %s -o yaml, the changed parts)", pod.Name, ns, pod.Name)
	excerpt, err := mutatedExcerpt(pod)
	if err != nil {
		return err
	}
	d.n.block(excerpt)

	gatedPod, err := d.waitPod(ctx, "app=web-gated")
	if err != nil {
		return err
	}
	d.n.step("What the webhook made of the gated pod %s: a scheduling gate, the Service and the Job in the status annotation's \"gated\", and no resolver (the gate covers all it waits for: gate-only)", gatedPod.Name)
	if excerpt, err = mutatedExcerpt(gatedPod); err != nil {
		return err
	}
	d.n.block(excerpt)

	go d.watchDependencies(ctx)
	d.n.step("The resolver waits in %s's container (kubectl -n %s logs -f %s); %s waits unscheduled, and the controller keeps both pods' condition %s",
		pod.Name, ns, pod.Name, gatedPod.Name, api.ConditionType)
	go d.followLogs(ctx, pod.Name, "web", d.web)
	go d.followLogs(ctx, gatedPod.Name, "web", d.gated)
	select {
	case <-d.web.reported:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the resolver in %s did not report what it waits for in 30 s", pod.Name)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := d.waitCondition(ctx, gatedPod.Name); err != nil {
		return err
	}

	d.n.step("Both modes side by side: what each pod waits for, as the controller's condition says")
	if err := d.kubectl(ctx, nil, "-n", ns, "get", "pods", "-l", "app in (web,web-gated)", "-o", waitingFor); err != nil {
		return err
	}
	d.n.step("The gated pod as kubectl describe shows it: no node, PodScheduled False (SchedulingGated), the condition and its Event")
	if err := d.kubectl(ctx, nil, "-n", ns, "describe", "pod", gatedPod.Name); err != nil {
		return err
	}

	d.n.step("Asking the kubectl plugin what web waits for: each dependency judged now by the resolver's rules, and the controller's condition (exit status 1: something blocks)")
	if err := d.plugin(ctx, 1, "why", "deployment/web", "-n", ns); err != nil {
		return err
	}

	d.n.step("Applying the dependencies: examples/dependencies.yaml (a database behind the Service mariadb, the Job db-migrate)")
	applied := time.Now()
	if err := d.kubectlApply(ctx, deps); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		pr   *progress
	}{{pod.Name, d.web}, {gatedPod.Name, d.gated}} {
		select {
		case <-p.pr.started:
		case <-ctx.Done():
			return fmt.Errorf("the application in %s did not start: %w", p.name, ctx.Err())
		}
	}
	time.Sleep(300 * time.Millisecond) // let the last log lines arrive
	d.summary(applied, pod.Name, gatedPod.Name)
	if err := d.kubectl(ctx, nil, "-n", ns, "get", "pods", "-l", "app in (web,web-gated)", "-o", waitingFor); err != nil {
		return err
	}
	if err := d.kubectl(ctx, nil, "-n", ns, "get", "pods,jobs,endpointslices", "-o", "wide"); err != nil {
		return err
	}

	d.n.step("Who waits for what in the namespace %s, as the kubectl plugin draws it (-o dot|mermaid for a picture)", ns)
	if err := d.plugin(ctx, 0, "graph", "-n", ns); err != nil {
		return err
	}
	d.n.step("And why web no longer waits (exit status 0: nothing blocks)")
	return d.plugin(ctx, 0, "why", "deployment/web", "-n", ns)
}

// plugin runs `kubectl entrypoint ARGS` and fails unless it exits with want (why
// exits 1 while something blocks).
func (d *demo) plugin(ctx context.Context, want int, args ...string) error {
	args = append([]string{"entrypoint"}, args...)
	d.n.say("$ kubectl %s", strings.Join(args, " "))
	// kubectl takes no flags before a plugin's name: the kubeconfig goes by environment.
	cmd := exec.CommandContext(ctx, filepath.Join(d.c.BinDir(), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.c.KubeconfigPath(),
		"PATH="+d.pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	d.n.block(string(out))
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	if code != want {
		return fmt.Errorf("kubectl %s: exit status %d, want %d", strings.Join(args, " "), code, want)
	}
	return nil
}

// waitCondition waits until the controller has set the condition on the pod.
func (d *demo) waitCondition(ctx context.Context, pod string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		p, err := d.cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err == nil && podCondition(p, api.ConditionType) != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the dependency controller set no condition %s on %s in a minute (kubectl -n kubernetes-entrypoint logs deploy/kubernetes-entrypoint-webhook)",
				api.ConditionType, pod)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// containerStarted tells whether the container runs or has run.
func containerStarted(p *corev1.Pod, container string) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == container {
			return s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil
		}
	}
	return false
}

func gated(p *corev1.Pod) bool {
	for _, g := range p.Spec.SchedulingGates {
		if g.Name == inject.SchedulingGate {
			return true
		}
	}
	return false
}

// render builds hack/demo/overlay and splits it into the app and its dependencies.
func render(repo string) (app, deps []byte, err error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repo, overlayDir))
	if err != nil {
		return nil, nil, fmt.Errorf("kustomize build %s: %w", overlayDir, err)
	}
	var a, d bytes.Buffer
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, nil, err
		}
		out := &a
		if dependencyNames[r.GetKind()+"/"+r.GetName()] {
			out = &d
		}
		out.WriteString("---\n")
		out.Write(y)
	}
	if d.Len() == 0 || a.Len() == 0 {
		return nil, nil, fmt.Errorf("%s: expected the app and its dependencies (%v)", overlayDir, dependencyNames)
	}
	return a.Bytes(), d.Bytes(), nil
}

// kubectlApply applies manifests with the cluster's kubectl, showing its output.
func (d *demo) kubectlApply(ctx context.Context, manifests []byte) error {
	return d.kubectl(ctx, manifests, "apply", "-f", "-")
}

func (d *demo) kubectl(ctx context.Context, stdin []byte, args ...string) error {
	d.n.say("$ kubectl %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(d.c.BinDir(), "kubectl"), append([]string{"--kubeconfig", d.c.KubeconfigPath()}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	d.n.block(string(out))
	if err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// waitPod waits for the first pod with the label selector.
func (d *demo) waitPod(ctx context.Context, selector string) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		pods, err := d.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(pods.Items) > 0 {
			return &pods.Items[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no pod %s in namespace %s: %w (kubectl -n %s describe replicaset)", selector, ns, ctx.Err(), ns)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mutatedExcerpt is the part of the pod the webhook wrote: its status annotation,
// the scheduling gates, the init container, the wrapped container and the volume.
func mutatedExcerpt(p *corev1.Pod) (string, error) {
	clean := func(c corev1.Container) map[string]any {
		m := map[string]any{"name": c.Name, "image": c.Image}
		if len(c.Command) > 0 {
			m["command"] = c.Command
		}
		if len(c.Args) > 0 {
			m["args"] = c.Args
		}
		var env []string
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
				env = append(env, fmt.Sprintf("%s from %s", e.Name, e.ValueFrom.FieldRef.FieldPath))
			case strings.HasPrefix(e.Name, "DEPENDENCY_") || e.Name == "COMMAND":
				env = append(env, e.Name+"="+e.Value)
			}
		}
		if len(env) > 0 {
			m["env (injected)"] = env
		}
		var mounts []string
		for _, v := range c.VolumeMounts {
			if strings.HasPrefix(v.Name, "kubernetes-entrypoint") {
				mounts = append(mounts, v.Name+" at "+v.MountPath)
			}
		}
		if len(mounts) > 0 {
			m["volumeMounts"] = mounts
		}
		return m
	}
	var inits []any
	for _, c := range p.Spec.InitContainers {
		if c.Name == inject.InitContainerName {
			inits = append(inits, clean(c))
		}
	}
	var containers []any
	for _, c := range p.Spec.Containers {
		containers = append(containers, clean(c))
	}
	spec := map[string]any{"containers": containers}
	if len(inits) > 0 {
		spec["initContainers"] = inits
	}
	if len(p.Spec.SchedulingGates) > 0 {
		spec["schedulingGates"] = p.Spec.SchedulingGates
	}
	out, err := yaml.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{inject.AnnotationStatus: p.Annotations[inject.AnnotationStatus]}},
		"spec":     spec,
	})
	return string(out), err
}

// followLogs narrates a container's log from its start (a gated pod's once it is
// scheduled and started): the resolver's JSON lines in short, then the application's
// own lines.
func (d *demo) followLogs(ctx context.Context, pod, container string, pr *progress) {
	var stream interface {
		Read([]byte) (int, error)
		Close() error
	}
	for {
		// Only a started container has a log to follow: for a pod not yet scheduled
		// (gated) the API server answers with an empty stream, and while the init
		// container installs the resolver, with an error.
		if p, err := d.cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); err == nil && containerStarted(p, container) {
			s, err := d.cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true, Timestamps: true}).Stream(ctx)
			if err == nil {
				stream = s
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		ts, line, _ := strings.Cut(sc.Text(), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			at = time.Now()
		}
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil || entry["msg"] == nil {
			d.n.sayAt(at, "  %s | app: %s", pod, line)
			d.mu.Lock()
			if pr.appOutput.IsZero() {
				pr.appOutput = at
			}
			d.mu.Unlock()
			pr.startedOnce.Do(func() { close(pr.started) })
			continue
		}
		msg, _ := entry["msg"].(string)
		if t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(entry["ts"])); err == nil {
			at = t
		}
		d.n.sayAt(at, "  %s | resolver: %s%s", pod, msg, fields(entry))
		switch msg {
		case "still waiting":
			pr.reportedOnce.Do(func() { close(pr.reported) })
		case "starting application":
			d.mu.Lock()
			pr.resolverExec = at
			d.mu.Unlock()
		}
	}
}

// fields are a log entry's fields but its level, time, message and version.
func fields(entry map[string]any) string {
	var keys []string
	for k := range entry {
		switch k {
		case "level", "ts", "msg", "version", "caller", "logger":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := json.Marshal(entry[k])
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// watchDependencies narrates the database pod becoming Ready, the Service's endpoint
// becoming ready and the Job succeeding, as the API server reports them; and for the
// app pods the controller's condition as it changes, the gate's removal and the
// gated pod's scheduling.
func (d *demo) watchDependencies(ctx context.Context) {
	seen := map[string]bool{}
	once := func(key string, at time.Time, format string, args ...any) bool {
		if seen[key] {
			return false
		}
		seen[key] = true
		d.n.sayAt(at, format, args...)
		return true
	}
	pods, err := d.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		d.n.say("cannot watch pods: %v", err)
		return
	}
	defer pods.Stop()
	slices, err := d.cs.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=mariadb"})
	if err != nil {
		d.n.say("cannot watch EndpointSlices: %v", err)
		return
	}
	defer slices.Stop()
	jobs, err := d.cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		d.n.say("cannot watch Jobs: %v", err)
		return
	}
	defer jobs.Stop()
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-pods.ResultChan():
		case ev, ok = <-slices.ResultChan():
		case ev, ok = <-jobs.ResultChan():
		}
		if !ok {
			return
		}
		now := time.Now()
		switch o := ev.Object.(type) {
		case *corev1.Pod:
			role := o.Labels["app"]
			if role == "" {
				role = "job " + o.Labels["job-name"]
			}
			for _, s := range o.Status.InitContainerStatuses {
				if s.Name == inject.InitContainerName && s.State.Terminated != nil {
					once("installed "+o.Name, now, "%s: the init container installed the resolver (exit %d)", o.Name, s.State.Terminated.ExitCode)
				}
			}
			for _, s := range o.Status.ContainerStatuses {
				if s.State.Running != nil {
					once("running "+o.Name, now, "%s (%s): container %s running", o.Name, role, s.Name)
				}
			}
			if role == "mariadb" && podReady(o) {
				once("ready "+o.Name, now, "%s (%s): Ready (its readiness probe passed)", o.Name, role)
			}
			if c := podCondition(o, api.ConditionType); c != nil {
				once(fmt.Sprintf("condition %s %s %s %s", o.Name, c.Status, c.Reason, c.Message), now,
					"%s (%s): condition %s=%s, reason %s: %s", o.Name, role, c.Type, c.Status, c.Reason, c.Message)
			}
			if role == "web-gated" {
				if gated(o) {
					once("gated "+o.Name, now, "%s (%s): held before scheduling by the gate %s", o.Name, role, inject.SchedulingGate)
				} else if seen["gated "+o.Name] && once("ungated "+o.Name, now, "%s (%s): the controller removed the scheduling gate", o.Name, role) {
					d.mu.Lock()
					d.gateRemoved = now
					d.mu.Unlock()
				}
				if o.Spec.NodeName != "" {
					once("scheduled "+o.Name, now, "%s (%s): scheduled to node %s", o.Name, role, o.Spec.NodeName)
				}
			}
		case *discoveryv1.EndpointSlice:
			for _, e := range o.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					if once("endpoint", now, "Service mariadb: ready endpoint %v (EndpointSlice %s)", e.Addresses, o.Name) {
						d.mu.Lock()
						d.endpointReady = now
						d.mu.Unlock()
					}
				}
			}
		case *batchv1.Job:
			for _, c := range o.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
					if once("job", now, "Job %s: succeeded", o.Name) {
						d.mu.Lock()
						d.jobDone = now
						d.mu.Unlock()
					}
				}
			}
		}
	}
}

func (d *demo) summary(applied time.Time, webPod, gatedPod string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n.step("Summary")
	since := func(t time.Time) string {
		if t.IsZero() {
			return "not seen"
		}
		return fmt.Sprintf("%s  (+%.3fs after the dependencies were applied)", t.Format("15:04:05.000"), t.Sub(applied).Seconds())
	}
	last := d.jobDone
	if d.endpointReady.After(last) {
		last = d.endpointReady
	}
	lines := []string{
		"dependencies applied                 " + applied.Format("15:04:05.000"),
		"Service mariadb ready endpoint       " + since(d.endpointReady),
		"Job db-migrate succeeded             " + since(d.jobDone),
		"web: resolver exec'd the app         " + since(d.web.resolverExec),
		"web: app's first line                " + since(d.web.appOutput),
		"web-gated: controller removed gate   " + since(d.gateRemoved),
		"web-gated: app's first line          " + since(d.gated.appOutput),
	}
	if !last.IsZero() && !d.web.resolverExec.IsZero() {
		lines = append(lines, fmt.Sprintf("%s (resolver mode) started its app %d ms after the last dependency was ready (as this demo's own watch saw it)",
			webPod, d.web.resolverExec.Sub(last).Milliseconds()))
	}
	if !last.IsZero() && !d.gateRemoved.IsZero() && !d.gated.appOutput.IsZero() {
		lines = append(lines, fmt.Sprintf("%s (gate mode): gate removed %d ms after the last dependency was ready, app's first line %d ms after (scheduling, the image, the container's start)",
			gatedPod, d.gateRemoved.Sub(last).Milliseconds(), d.gated.appOutput.Sub(last).Milliseconds()))
	}
	d.n.block(strings.Join(lines, "\n"))
}
