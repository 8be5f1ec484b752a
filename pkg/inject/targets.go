package inject

import (
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// knownSidecars are regular containers that other injectors add next to the
// application. They are not wrapped unless entrypoint.io/containers names them: a
// proxy that waited for the app's dependencies could keep them from becoming ready.
func knownSidecars() []string {
	return []string{
		"istio-proxy",     // Istio
		"linkerd-proxy",   // Linkerd
		"vault-agent",     // HashiCorp Vault Agent Injector
		"cloud-sql-proxy", // Google Cloud SQL Auth Proxy
		"cloudsql-proxy",  // its older name
	}
}

// meshInitContainers are init containers of service meshes that must run before any
// other: they set up the pod's network. The install init container goes after them.
func meshInitContainers() []string {
	return []string{"istio-init", "istio-validation", "linkerd-init", "linkerd-network-validator"}
}

// containerKind is what a name is in a pod.
type containerKind int

const (
	notInPod           containerKind = iota
	regularContainer                 // spec.containers
	nativeSidecar                    // spec.initContainers with restartPolicy Always
	plainInitContainer               // spec.initContainers, run to completion
)

// containerKinds says what each container name is in pod; a name missing from it
// is notInPod. A regular container wins over an init container of the same name
// (the API server rejects such a pod later), and the first of equal names wins.
func containerKinds(pod *corev1.Pod) map[string]containerKind {
	kinds := make(map[string]containerKind, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if _, seen := kinds[c.Name]; seen {
			continue
		}
		if isNativeSidecar(c) {
			kinds[c.Name] = nativeSidecar
		} else {
			kinds[c.Name] = plainInitContainer
		}
	}
	for i := range pod.Spec.Containers {
		kinds[pod.Spec.Containers[i].Name] = regularContainer
	}
	return kinds
}

// containerNamed is the path of the container called name, which is in pod.
func containerNamed(pod *corev1.Pod, name string) *field.Path {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return field.NewPath("spec", "containers").Index(i)
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return field.NewPath("spec", "initContainers").Index(i)
		}
	}
	return field.NewPath("spec", "containers")
}

func isNativeSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// runsAlongside tells whether kind is a container that runs while the app does: a
// regular container or a native sidecar. Only those can be waited for (see
// pkg/resolve/kube) and only those are wrapped: a plain init container could be
// too, but init containers are left to run exactly as written.
func runsAlongside(kind containerKind) bool {
	return kind == regularContainer || kind == nativeSidecar
}

// containerNames lists the pod's init containers, then its containers, in order.
func containerNames(pod *corev1.Pod) []string {
	names := make([]string, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		names = append(names, pod.Spec.InitContainers[i].Name)
	}
	for i := range pod.Spec.Containers {
		names = append(names, pod.Spec.Containers[i].Name)
	}
	return names
}

// containerOf returns the container t refers to.
func containerOf(pod *corev1.Pod, t target) *corev1.Container {
	if t.sidecar {
		return &pod.Spec.InitContainers[t.index]
	}
	return &pod.Spec.Containers[t.index]
}

// targets works out which containers to wrap: those entrypoint.io/containers names,
// else every regular container but the known sidecars. Native sidecars come first,
// as the kubelet starts them first, then regular containers, each in pod order.
// needOne reports a pod where that leaves none: it is set unless the gate
// holds the pod for everything, when no container is wrapped anyway.
func (pl *planner) targets(needOne bool) []target {
	var (
		wanted   func(c *corev1.Container, sidecar bool) bool
		explicit = pl.ours[keyContainers]
	)
	if explicit != "" {
		names, ok := parseChunked(pl, keyContainers, spec.ParseNames)
		if !ok {
			return nil
		}
		if !pl.checkNamesInPod(keyContainers, "a regular container or native sidecar of this pod", runsAlongside) {
			return nil
		}
		named := make(map[string]bool, len(names))
		for _, name := range names {
			named[name] = true
		}
		wanted = func(c *corev1.Container, _ bool) bool { return named[c.Name] }
	} else {
		wanted = func(c *corev1.Container, sidecar bool) bool {
			return !sidecar && !slices.Contains(knownSidecars(), c.Name)
		}
	}

	var out []target
	for i := range pl.pod.Spec.InitContainers {
		if c := &pl.pod.Spec.InitContainers[i]; isNativeSidecar(c) && wanted(c, true) {
			out = append(out, target{name: c.Name, sidecar: true, index: i})
		}
	}
	for i := range pl.pod.Spec.Containers {
		if c := &pl.pod.Spec.Containers[i]; wanted(c, false) {
			out = append(out, target{name: c.Name, index: i})
		}
	}
	if needOne && len(out) == 0 && explicit == "" {
		pl.invalid(field.NewPath("spec", "containers"), "no container to wrap: every container of this pod is a known sidecar ("+
			listNames(containerNames(pl.pod))+"); name the ones to wrap in annotation "+AnnotationPrefix+keyContainers)
	}
	return out
}

// initContainerIndex is where the install init container goes: first, but after
// the leading init containers of a service mesh.
func initContainerIndex(pod *corev1.Pod) int {
	index := 0
	for i := range pod.Spec.InitContainers {
		if slices.Contains(meshInitContainers(), pod.Spec.InitContainers[i].Name) {
			index = i + 1
		}
	}
	return index
}

// checkTarget reports what keeps container c, target t, from being wrapped: a
// variable the plan sets that the container sets too, a mount where the resolver's
// volume goes, or (for a native sidecar) a place before the install init container.
func (pl *planner) checkTarget(c *corev1.Container, t target, initIndex int, deps dependencies) {
	at := containerPath(t)
	for i, e := range c.Env {
		if key, conflict := deps.conflicts[e.Name]; conflict {
			pl.invalid(at.Child("env").Index(i), "container "+quoted(c.Name)+" already sets "+e.Name+" in its env, which conflicts with annotation "+
				AnnotationPrefix+key+"; declare these dependencies in one place, the env or the annotation")
		}
	}
	for i, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == pl.cfg.MountPath {
			pl.invalid(at.Child("volumeMounts").Index(i), "container "+quoted(c.Name)+" already mounts volume "+quoted(m.Name)+" at "+pl.cfg.MountPath+
				", where the webhook mounts the resolver; mount it elsewhere")
		}
	}
	if deps.waitedFor[c.Name] {
		key := annotationOf(spec.EnvContainers)
		pl.invalid(annotationPath(key), "container "+quoted(c.Name)+" is wrapped and listed in annotation "+AnnotationPrefix+key+
			", so it would wait for itself; leave it out of one of them (annotation "+AnnotationPrefix+keyContainers+
			" chooses which containers are wrapped)")
	}
	if t.sidecar && t.index < initIndex {
		pl.invalid(at, "native sidecar "+quoted(c.Name)+" comes before the service mesh's init containers ("+
			strings.Join(meshInitContainers(), ", ")+"), so it would start before the resolver is installed after them; "+
			"move it after them, or leave it out of annotation "+AnnotationPrefix+keyContainers)
	}
}
