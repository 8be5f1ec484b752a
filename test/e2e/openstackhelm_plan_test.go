//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/openstackhelm"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// This file turns the rendered openstack-helm charts (internal/openstackhelm) into
// objects this cluster can run, without changing a line of their templates: only the
// images and what an image must have are swapped, in code, each change listed in the
// plan's notes. What it changes, and why:
//
//   - every application container runs the test app (appImage): `testapp sleep` in
//     Deployments, StatefulSets and DaemonSets, `testapp run 1` in Jobs (they
//     succeed); the charts' images are neither pulled nor run here.
//   - its probes: the charts probe the real services (an HTTP /healthcheck, a mysql
//     query, rabbitmq-diagnostics, scripts), which the test app does not run, and
//     the kubelet here cannot reach pod IPs at all (no route from the host to the
//     pods' bridge). The readiness probe becomes the test app's own exec probe
//     (`testapp exists testapp`, every second, 5 s to answer); liveness and startup probes and
//     lifecycle hooks (scripts of the image) are dropped. Readiness still gates the
//     Services' endpoints, which is what the dependencies read.
//   - init containers running the original kubernetes-entrypoint image
//     (quay.io/airshipit/kubernetes-entrypoint...) run the project's image
//     (resolverImage, whose kubernetes-entrypoint is on the charts' PATH) with their
//     env and command unchanged. Where such a container reads the API (a Service,
//     a Job, a pod...), the pod goes on the host network and the container gets
//     KUBERNETES_SERVICE_HOST/PORT of the API server on loopback, as every
//     host-network pod of the suite does (withAPIServer): pods on the pod network
//     reach nothing but each other here, and the kubelet's default
//     KUBERNETES_SERVICE_HOST, the kubernetes Service's ClusterIP, is routed by
//     nothing. Pods whose init container waits for nothing keep the pod network,
//     so that the StatefulSets of several replicas do not claim the same host
//     ports on the one node (a host-network pod's container ports are host ports).
//   - other init containers (the charts' scripts) run `testapp run 0` and succeed.
//   - volumeClaimTemplates and persistentVolumeClaim volumes become emptyDir (no
//     storage provisioner here); hostPath volumes become emptyDir too (the scenario
//     must not write to the host, and /run/openvswitch and the like do not exist).
//   - the rendered objects name no namespace; they are created in
//     openstackhelm.Namespace, which the charts were rendered for.
//   - not in the objects: the node gets the labels the charts' nodeSelectors ask
//     for (oshNodeLabels) for the test's duration, and the openvswitch server the
//     Open vSwitch agent waits for is a stand-in (openvswitchStandIn).
//
// Skipped, each with its reason in the plan: CronJobs (schedules, not an install
// step), the charts' test Pods and helm hooks that run on delete or test, the
// CustomResourceDefinitions of the mariadb chart (cluster-scoped, read by nothing
// in the subset), and the workloads outside the subset (oshSubset).

// oshCharts are the charts the scenario installs, in the order an operator would.
func oshCharts() []string { return []string{"mariadb", "rabbitmq", "memcached", "keystone", "neutron"} }

// oshSubset names, per chart, the workloads taken; nil takes them all. Of neutron
// only the server (with the Jobs it waits for) and the Open vSwitch agent, a
// DaemonSet waiting for the openvswitch server pod on its node: the other agents
// wait for nova's Services too, and two of them would change no figure.
func oshSubset(chart string) (names []string, some bool) {
	if chart != "neutron" {
		return nil, false
	}
	return []string{"neutron-server", "neutron-db-init", "neutron-db-sync", "neutron-ks-user", "neutron-ks-service",
		"neutron-ks-endpoints", "neutron-rabbit-init", "neutron-ovs-agent-default"}, true
}

// oshNodeLabels are what the charts' nodeSelectors ask of a node; the scenario puts
// them on this cluster's one node and takes them off at the end.
func oshNodeLabels() map[string]string {
	return map[string]string{"openstack-control-plane": "enabled", "openvswitch": "enabled"}
}

// oshOriginalImage is the original kubernetes-entrypoint image's repository.
const oshOriginalImage = "quay.io/airshipit/kubernetes-entrypoint"

// oshResolverName is the drop-in binary the charts run in their init containers.
const oshResolverName = "kubernetes-entrypoint"

// oshResource is the resource of a kind the scenario creates; false for any other.
func oshResource(kind string) (schema.GroupVersionResource, bool) {
	gvr, ok := map[string]schema.GroupVersionResource{
		"ServiceAccount":      {Version: "v1", Resource: "serviceaccounts"},
		"Secret":              {Version: "v1", Resource: "secrets"},
		"ConfigMap":           {Version: "v1", Resource: "configmaps"},
		"Service":             {Version: "v1", Resource: "services"},
		"Role":                {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		"RoleBinding":         {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		"PodDisruptionBudget": {Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
		"Deployment":          {Group: "apps", Version: "v1", Resource: "deployments"},
		"StatefulSet":         {Group: "apps", Version: "v1", Resource: "statefulsets"},
		"DaemonSet":           {Group: "apps", Version: "v1", Resource: "daemonsets"},
		"Job":                 {Group: "batch", Version: "v1", Resource: "jobs"},
	}[kind]
	return gvr, ok
}

// oshWorkload is one workload the scenario creates and waits for.
type oshWorkload struct {
	Chart, Kind, Name string
	// Rendered is the pod spec as the chart rendered it; Runnable as created.
	Rendered, Runnable corev1.PodSpec
	// Deps is what its kubernetes-entrypoint init container waits for, read from
	// the rendered env as the resolver reads it (nil: it waits for nothing).
	Deps *spec.Spec
	// StandIn: not rendered, made by the harness (the openvswitch server).
	StandIn bool
}

func (w oshWorkload) key() string { return w.Kind + "/" + w.Name }

// oshPlan is what the scenario creates: the objects as rendered (RBAC, Secrets,
// ConfigMaps, Services, PDBs), then each chart's workloads made runnable.
type oshPlan struct {
	// Plain are the objects created as rendered, by chart.
	Plain map[string][]*unstructured.Unstructured
	// Workloads by chart, in file order; the stand-in is under "openvswitch".
	Workloads map[string][]oshWorkload
	// Objects are the workloads' objects as created, by key.
	Objects map[string]*unstructured.Unstructured
	// Skipped lists what is not created, with why; Notes what was changed, counted.
	Skipped []string
	Notes   map[string]int
}

// workloads are every workload of the plan, in install order.
func (p *oshPlan) workloads() []oshWorkload {
	var all []oshWorkload
	for _, chart := range append(oshCharts(), "openvswitch") {
		all = append(all, p.Workloads[chart]...)
	}
	return all
}

func (p *oshPlan) workload(key string) (oshWorkload, bool) {
	for _, w := range p.workloads() {
		if w.key() == key {
			return w, true
		}
	}
	return oshWorkload{}, false
}

// planOpenstackHelm reads the charts and makes the plan. It fails on anything it
// does not know how to run rather than creating something that cannot converge.
func planOpenstackHelm() (*oshPlan, error) {
	p := &oshPlan{Plain: map[string][]*unstructured.Unstructured{}, Workloads: map[string][]oshWorkload{},
		Objects: map[string]*unstructured.Unstructured{}, Notes: map[string]int{}}
	for _, chart := range oshCharts() {
		objs, err := openstackhelm.Objects(chart)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			kind, name := o.GetKind(), o.GetName()
			if reason := oshSkipReason(chart, o); reason != "" {
				p.Skipped = append(p.Skipped, fmt.Sprintf("%s %s %s: %s", chart, kind, name, reason))
				continue
			}
			if _, ok := oshResource(kind); !ok {
				return nil, fmt.Errorf("chart %s: %s %s: the scenario does not know how to create a %s", chart, kind, name, kind)
			}
			if _, workload := oshTemplatePath(kind); !workload {
				p.Plain[chart] = append(p.Plain[chart], o)
				continue
			}
			w, obj, err := p.runnable(chart, o)
			if err != nil {
				return nil, fmt.Errorf("chart %s: %s %s: %w", chart, kind, name, err)
			}
			p.Workloads[chart] = append(p.Workloads[chart], w)
			p.Objects[w.key()] = obj
		}
	}
	standIn, obj, err := p.openvswitchStandIn()
	if err != nil {
		return nil, err
	}
	p.Workloads["openvswitch"] = []oshWorkload{standIn}
	p.Objects[standIn.key()] = obj
	return p, p.checkReferences()
}

// oshSkipReason says why an object is not created, "" when it is.
func oshSkipReason(chart string, o *unstructured.Unstructured) string {
	kind := o.GetKind()
	switch kind {
	case "CronJob":
		return "a CronJob runs on a schedule, not as a step of the install"
	case "Pod":
		return "a helm test Pod (helm test), not part of the install"
	case "CustomResourceDefinition":
		return "cluster-scoped, and read by no workload of the subset"
	}
	hook := o.GetAnnotations()["helm.sh/hook"]
	for _, h := range strings.Split(hook, ",") {
		switch h = strings.TrimSpace(h); h {
		case "pre-delete", "post-delete", "test", "test-success":
			return "a helm hook that runs on " + h + ", not on install"
		}
	}
	if _, workload := oshTemplatePath(kind); workload {
		if names, some := oshSubset(chart); some && !slices.Contains(names, o.GetName()) {
			return "outside the scenario's subset of " + chart + ": the other agents wait for nova's Services, the RPC server is a second server, the netns cleanup waits for nothing"
		}
	}
	return ""
}

func oshTemplatePath(kind string) ([]string, bool) {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "Job":
		return []string{"spec", "template"}, true
	}
	return nil, false
}

// runnable is a workload made runnable here (see the file's comment), and its
// object as it will be created.
func (p *oshPlan) runnable(chart string, o *unstructured.Unstructured) (oshWorkload, *unstructured.Unstructured, error) {
	obj := o.DeepCopy()
	path, _ := oshTemplatePath(obj.GetKind())
	raw, found, err := unstructured.NestedMap(obj.Object, path...)
	if err != nil {
		return oshWorkload{}, nil, fmt.Errorf("reading the pod template: %w", err)
	}
	if !found {
		return oshWorkload{}, nil, errors.New("no pod template")
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl); err != nil {
		return oshWorkload{}, nil, fmt.Errorf("reading the pod template: %w", err)
	}
	w := oshWorkload{Chart: chart, Kind: obj.GetKind(), Name: obj.GetName(), Rendered: *tmpl.Spec.DeepCopy()}
	if w.Deps, err = resolverDeps(&w.Rendered); err != nil {
		return w, nil, err
	}
	if obj.GetKind() == "StatefulSet" {
		claims, _, _ := unstructured.NestedSlice(obj.Object, "spec", "volumeClaimTemplates")
		for _, c := range claims {
			name, _, _ := unstructured.NestedString(c.(map[string]any), "metadata", "name")
			tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			p.Notes["volumeClaimTemplate → emptyDir"]++
		}
		unstructured.RemoveNestedField(obj.Object, "spec", "volumeClaimTemplates")
	}
	p.makeRunnable(&tmpl.Spec, obj.GetKind() == "Job")
	w.Runnable = *tmpl.Spec.DeepCopy()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&tmpl)
	if err != nil {
		return w, nil, fmt.Errorf("writing the pod template: %w", err)
	}
	if err := unstructured.SetNestedMap(obj.Object, m, path...); err != nil {
		return w, nil, fmt.Errorf("writing the pod template: %w", err)
	}
	return w, obj, nil
}

// resolverDeps parses the env of the pod's original kubernetes-entrypoint init
// container as the resolver does; nil when it has none.
func resolverDeps(ps *corev1.PodSpec) (*spec.Spec, error) {
	for _, c := range ps.InitContainers {
		if !strings.HasPrefix(c.Image, oshOriginalImage) {
			continue
		}
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.FieldRef != nil:
				// The downward API's values are the pod's own, unknown before it
				// exists: a stand-in that parses, so that a same-node item does.
				env[e.Name] = "rendered-" + strings.ReplaceAll(e.ValueFrom.FieldRef.FieldPath, ".", "-")
			}
		}
		// Relative names resolve in the namespace the pod runs in.
		env[spec.EnvNamespace] = openstackhelm.Namespace
		s, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			return nil, fmt.Errorf("init container %s: %w", c.Name, err)
		}
		return s, nil
	}
	return nil, nil
}

// readsAPI tells whether a resolver with deps reads the API server.
func readsAPI(deps *spec.Spec) bool {
	if deps == nil {
		return false
	}
	for _, it := range kube.Items(deps, kube.LookupOptions{}) {
		if it.Place == kube.InAPI || it.Place == kube.OnNode || it.Place == kube.OwnPod {
			return true
		}
	}
	return false
}

// makeRunnable applies the file comment's changes to a pod spec, counting them.
func (p *oshPlan) makeRunnable(ps *corev1.PodSpec, job bool) {
	note := func(s string) { p.Notes[s]++ }
	deps, _ := resolverDeps(ps) // parsed without error by runnable already
	api := readsAPI(deps)
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		if strings.HasPrefix(c.Image, oshOriginalImage) {
			c.Image, c.ImagePullPolicy = resolverImage, corev1.PullNever
			note("kubernetes-entrypoint init container → resolverImage, env and command unchanged")
			if api {
				// Appended, in a fixed order: the chart's own variables keep their places.
				env := apiServerEnv()
				for _, k := range []string{"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} {
					c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: env[k]})
				}
				note("init container reading the API: + KUBERNETES_SERVICE_HOST/PORT (loopback)")
			}
			continue
		}
		*c = testappContainer(*c, "run", "0")
		note("chart script init container → testapp run 0")
	}
	for i := range ps.Containers {
		c := &ps.Containers[i]
		if job {
			*c = testappContainer(*c, "run", "1")
			note("Job container → testapp run 1")
			continue
		}
		probed := c.ReadinessProbe != nil
		*c = testappContainer(*c, "sleep")
		if probed {
			c.ReadinessProbe = &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{testapp, "exists", testapp}}},
				PeriodSeconds: 1,
				// A busy 2-core node may take over the default 1 s to exec.
				TimeoutSeconds: 5,
			}
			note("readiness probe → exec testapp exists (period 1 s)")
		}
		note("application container → testapp sleep")
	}
	if api && !ps.HostNetwork {
		ps.HostNetwork = true
		note("pod whose resolver reads the API → host network")
	}
	for i := range ps.Volumes {
		v := &ps.Volumes[i]
		switch {
		case v.HostPath != nil:
			v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
			note("hostPath volume → emptyDir")
		case v.PersistentVolumeClaim != nil:
			v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
			note("persistentVolumeClaim volume → emptyDir")
		}
	}
}

// testappContainer is c running the test app with args: its name, env, mounts,
// ports, resources and security context stay; what belongs to the chart's image
// (command, args, probes, hooks) goes.
func testappContainer(c corev1.Container, args ...string) corev1.Container {
	c.Image, c.ImagePullPolicy = appImage, corev1.PullNever
	c.Command, c.Args = []string{testapp}, args
	c.ReadinessProbe, c.LivenessProbe, c.StartupProbe, c.Lifecycle = nil, nil, nil, nil
	return c
}

// openvswitchStandIn is the openvswitch server the Open vSwitch agent waits for on
// its node (a chart of its own, openstack-helm-infra's openvswitch, which is not
// rendered here): a DaemonSet with its labels, Ready by the test app's probe.
func (p *oshPlan) openvswitchStandIn() (oshWorkload, *unstructured.Unstructured, error) {
	labels := map[string]string{"application": "openvswitch", "component": "server", "release_group": "openvswitch"}
	c := container("openvswitch-vswitchd", "sleep")
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{testapp, "exists", testapp}}},
		PeriodSeconds:  1,
		TimeoutSeconds: 5,
	}
	ps := corev1.PodSpec{
		NodeSelector:                  map[string]string{"openvswitch": "enabled"},
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		Containers:                    []corev1.Container{c},
	}
	ds := &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "openvswitch", Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: ps},
		},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ds)
	if err != nil {
		return oshWorkload{}, nil, fmt.Errorf("the openvswitch stand-in: %w", err)
	}
	return oshWorkload{Chart: "openvswitch", Kind: "DaemonSet", Name: "openvswitch", Rendered: ps, Runnable: ps, StandIn: true},
		&unstructured.Unstructured{Object: m}, nil
}

// checkReferences makes sure that every Secret and ConfigMap a workload mounts is
// created too (not optional ones), and that every Role a RoleBinding names is: a
// missing one would leave pods in ContainerCreating, or a resolver forbidden, for
// reasons that have nothing to do with dependencies.
func (p *oshPlan) checkReferences() error {
	have := map[string]bool{}
	for _, objs := range p.Plain {
		for _, o := range objs {
			have[o.GetKind()+"/"+o.GetName()] = true
		}
	}
	var missing []string
	for _, w := range p.workloads() {
		for _, v := range w.Runnable.Volumes {
			switch {
			case v.Secret != nil && !ptr.Deref(v.Secret.Optional, false) && !have["Secret/"+v.Secret.SecretName]:
				missing = append(missing, w.key()+" mounts Secret "+v.Secret.SecretName)
			case v.ConfigMap != nil && !ptr.Deref(v.ConfigMap.Optional, false) && !have["ConfigMap/"+v.ConfigMap.Name]:
				missing = append(missing, w.key()+" mounts ConfigMap "+v.ConfigMap.Name)
			}
		}
		if sa := w.Runnable.ServiceAccountName; sa != "" && !w.StandIn && !have["ServiceAccount/"+sa] {
			missing = append(missing, w.key()+" runs as ServiceAccount "+sa)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the plan creates workloads whose objects it does not create: %s", strings.Join(missing, "; "))
	}
	return nil
}

// summary is the plan in a few lines, for the log.
func (p *oshPlan) summary() string {
	var b strings.Builder
	n := 0
	for _, chart := range oshCharts() {
		n += len(p.Plain[chart])
	}
	fmt.Fprintf(&b, "%d objects as rendered (RBAC, Secrets, ConfigMaps, Services, PDBs); workloads:", n)
	for _, w := range p.workloads() {
		fmt.Fprintf(&b, " %s", w.key())
	}
	b.WriteString("\nchanged (count):")
	keys := make([]string, 0, len(p.Notes))
	for k := range p.Notes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("\n  " + strconv.Itoa(p.Notes[k]) + " × " + k)
	}
	b.WriteString("\nskipped:")
	for _, s := range p.Skipped {
		b.WriteString("\n  " + s)
	}
	return b.String()
}
