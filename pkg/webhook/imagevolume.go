package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Image-volume support, for --injection-mode=auto.
//
// The webhook injects in image-volume mode only when it can tell that every node
// of the cluster runs such a pod: the volume is the resolver image mounted with
// subPath, and the resolver is executed from it. That needs, on each node:
//
//   - a kubelet of Kubernetes 1.35 or later, where image volumes (KEP-4639) are on
//     by default (beta in 1.35, GA and always on since 1.36; the kubelet passes
//     the subPath on to the runtime since 1.33);
//   - containerd 2.2 or later, which mounts image volumes, subPath included,
//     without noexec. containerd 2.1 mounts image volumes but ignores subPath
//     (its support, containerd PR 11578, shipped in 2.2 and was not backported):
//     it would mount the image's root where the binary's directory belongs, and
//     the wrapped container would not start. CRI-O mounts image volumes noexec
//     (its image mounts carry "ro, noexec, nosuid, nodev"), so the resolver
//     could not be executed from one: nodes running CRI-O, or any runtime this
//     code does not know, count as unable.
//
// Nodes report both in status.nodeInfo (kubeletVersion, containerRuntimeVersion,
// such as "containerd://2.2.1"), which the webhook follows through the manager's
// cache, each node reduced to those fields. No node, a node that cannot, a cache
// that has not synced (just started, or no RBAC on nodes) all mean
// init-container, which works everywhere. Pod Security does not enter into it:
// every level, restricted included, admits image volumes (pod-security-admission's
// restrictedVolumes check lists them), so a namespace's policy never decides the
// mode.

// Minimum versions of image-volume mode, see above.
var (
	minKubelet    = version.MajorMinor(1, 35)
	minContainerd = version.MajorMinor(2, 2)
)

// NodeRuntime is what the decision reads of a node.
type NodeRuntime struct {
	Name string
	// KubeletVersion and ContainerRuntimeVersion are status.nodeInfo's.
	KubeletVersion          string
	ContainerRuntimeVersion string
}

// ImageVolumeDecision is whether the cluster's nodes can run pods injected in
// image-volume mode, and why.
type ImageVolumeDecision struct {
	Supported bool
	// Reason is for logs and, when not Supported, for the warning of a pod that
	// asks for image-volume anyway (inject.Config.ImageVolumeCaveat).
	Reason string
}

// DecideImageVolumes decides for nodes, in any order: supported when there is at
// least one and every one runs a kubelet and a runtime that can (see the comment
// at the top of this file). Reason names the first node that cannot, by name, and
// how many more cannot. Pure; the order of nodes does not matter.
func DecideImageVolumes(nodes []NodeRuntime) ImageVolumeDecision {
	if len(nodes) == 0 {
		return ImageVolumeDecision{Reason: "the cluster has no nodes"}
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b NodeRuntime) int { return strings.Compare(a.Name, b.Name) })
	first, unable := "", 0
	for _, n := range sorted {
		if why := nodeCannot(n); why != "" {
			if unable == 0 {
				first = why
			}
			unable++
		}
	}
	switch unable {
	case 0:
		return ImageVolumeDecision{Supported: true, Reason: fmt.Sprintf("all %d nodes run kubelet %s or later and containerd %s or later",
			len(nodes), shortVersion(minKubelet), shortVersion(minContainerd))}
	case 1:
		return ImageVolumeDecision{Reason: first}
	}
	return ImageVolumeDecision{Reason: fmt.Sprintf("%s (and %d more nodes cannot)", first, unable-1)}
}

// nodeCannot says why node n cannot run image-volume pods, or "".
func nodeCannot(n NodeRuntime) string {
	name := "node " + safetext.Truncate(n.Name, maxLoggedName)
	kubelet, err := version.ParseGeneric(n.KubeletVersion)
	switch {
	case err != nil:
		return fmt.Sprintf("%s reports kubelet version %.64q, which is not a version", name, n.KubeletVersion)
	case !kubelet.AtLeast(minKubelet):
		return fmt.Sprintf("%s runs kubelet %.64s (image volumes need %s+)", name, n.KubeletVersion, shortVersion(minKubelet))
	}
	runtime, v, _ := strings.Cut(n.ContainerRuntimeVersion, "://")
	switch runtime {
	case "containerd":
		containerd, err := version.ParseGeneric(v)
		switch {
		case err != nil:
			return fmt.Sprintf("%s reports containerd version %.64q, which is not a version", name, v)
		case !containerd.AtLeast(minContainerd):
			return fmt.Sprintf("%s runs containerd %.64s (image volumes with subPath need %s+)", name, v, shortVersion(minContainerd))
		}
		return ""
	case "cri-o":
		return name + " runs CRI-O, which mounts image volumes noexec"
	}
	return fmt.Sprintf("%s runs container runtime %.64q, not known to mount image volumes executable", name, n.ContainerRuntimeVersion)
}

func shortVersion(v *version.Version) string { return fmt.Sprintf("%d.%d", v.Major(), v.Minor()) }

// InjectionModeSource gives the injection mode of the pods that do not choose
// with inject.AnnotationInjectionMode, per request.
type InjectionModeSource interface {
	// InjectionMode returns the mode, and when it is not image-volume, why
	// image volumes may not work (inject.Config.ImageVolumeCaveat).
	InjectionMode() (mode inject.InjectionMode, caveat string)
}

// NodeImageVolumes is --injection-mode=auto: it follows the cluster's nodes
// through Cache (a controller-runtime cache whose Node objects may be reduced by
// SlimNode) and decides with DecideImageVolumes whenever they change. Until the
// cache has synced, the mode is init-container. Every replica runs one (no
// leader election): each decides for its own requests. RBAC: get, list and
// watch on nodes.
type NodeImageVolumes struct {
	Cache cache.Cache
	// Live, when set, is asked once why the cache has not synced after
	// SyncWarnAfter (usually Forbidden: no RBAC on nodes), for the log.
	Live client.Reader
	Log  logr.Logger
	// SyncWarnAfter is how long the cache may take to sync before that is
	// logged; 0 means DefaultSyncWarnAfter.
	SyncWarnAfter time.Duration

	mu       sync.Mutex
	decision ImageVolumeDecision
	decided  bool // a decision from synced nodes was made (and logged)
}

var _ InjectionModeSource = (*NodeImageVolumes)(nil)

// DefaultSyncWarnAfter is NodeImageVolumes.SyncWarnAfter unless set.
const DefaultSyncWarnAfter = 10 * time.Second

// syncPoll is how often NodeImageVolumes looks whether its cache has synced.
const syncPoll = 250 * time.Millisecond

// notSynced is the decision before the nodes were read.
const notSynced = "the webhook has not read the cluster's nodes yet"

// InjectionMode implements InjectionModeSource.
func (n *NodeImageVolumes) InjectionMode() (inject.InjectionMode, string) {
	d := n.Decision()
	if d.Supported {
		return inject.ModeImageVolume, ""
	}
	return inject.ModeInitContainer, d.Reason
}

// Decision is the current decision.
func (n *NodeImageVolumes) Decision() ImageVolumeDecision {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.decision.Reason == "" {
		return ImageVolumeDecision{Reason: notSynced}
	}
	return n.decision
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica decides.
func (n *NodeImageVolumes) NeedLeaderElection() bool { return false }

// Start follows the nodes until ctx ends.
func (n *NodeImageVolumes) Start(ctx context.Context) error {
	informer, err := n.Cache.GetInformer(ctx, &corev1.Node{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("watching nodes for --injection-mode=auto: %w", err)
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	reg, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() },
		UpdateFunc: func(old, cur any) {
			// Status heartbeats change nothing the decision reads.
			if o, ok := old.(*corev1.Node); ok {
				if c, ok := cur.(*corev1.Node); ok && o.Status.NodeInfo.KubeletVersion == c.Status.NodeInfo.KubeletVersion &&
					o.Status.NodeInfo.ContainerRuntimeVersion == c.Status.NodeInfo.ContainerRuntimeVersion {
					return
				}
			}
			poke()
		},
		DeleteFunc: func(any) { poke() },
	})
	if err != nil {
		return fmt.Errorf("watching nodes for --injection-mode=auto: %w", err)
	}
	defer func() { _ = informer.RemoveEventHandler(reg) }()

	n.Log.Info("injection mode auto: init-container until the nodes are read; image-volume once every node runs kubelet "+
		shortVersion(minKubelet)+"+ and containerd "+shortVersion(minContainerd)+"+", "reason", notSynced)
	warnAfter := n.SyncWarnAfter
	if warnAfter <= 0 {
		warnAfter = DefaultSyncWarnAfter
	}
	started := time.Now()
	warned, stale := false, true
	tick := time.NewTicker(syncPoll)
	defer tick.Stop()
	for {
		switch {
		case informer.HasSynced():
			if stale {
				n.update(ctx)
				stale = false
			}
		case !warned && time.Since(started) > warnAfter:
			warned = true
			n.Log.Info("injection mode auto: the nodes could not be read yet, so pods get init-container", "reason", n.whyNotSynced(ctx))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			stale = true
		case <-tick.C:
		}
	}
}

// update decides from the cached nodes, and logs a change of the decision.
func (n *NodeImageVolumes) update(ctx context.Context) {
	var list corev1.NodeList
	if err := n.Cache.List(ctx, &list); err != nil {
		if ctx.Err() == nil {
			n.Log.Error(err, "injection mode auto: listing the cached nodes")
		}
		return
	}
	nodes := make([]NodeRuntime, 0, len(list.Items))
	for i := range list.Items {
		info := list.Items[i].Status.NodeInfo
		nodes = append(nodes, NodeRuntime{Name: list.Items[i].Name, KubeletVersion: info.KubeletVersion, ContainerRuntimeVersion: info.ContainerRuntimeVersion})
	}
	d := DecideImageVolumes(nodes)
	n.mu.Lock()
	changed := !n.decided || n.decision.Supported != d.Supported
	n.decision, n.decided = d, true
	n.mu.Unlock()
	if changed {
		mode := inject.ModeInitContainer
		if d.Supported {
			mode = inject.ModeImageVolume
		}
		n.Log.Info("injection mode auto: pods without "+inject.AnnotationInjectionMode+" get "+string(mode), "reason", d.Reason, "nodes", len(nodes))
	}
}

// whyNotSynced asks the API server for one node, to say why the cache has not
// synced.
func (n *NodeImageVolumes) whyNotSynced(ctx context.Context) string {
	if n.Live == nil {
		return "the node cache has not synced (the webhook needs get, list and watch on nodes)"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := n.Live.List(ctx, &list, client.Limit(1)); err != nil {
		return "listing nodes: " + err.Error() + " (the webhook needs get, list and watch on nodes)"
	}
	return "the node cache has not synced yet, though nodes can be listed"
}

// SlimNode is a cache transform keeping of a node only what the decision reads:
// its name and resource version, and its kubelet and runtime versions. A
// cluster's nodes' images, conditions and addresses change often and weigh much.
func SlimNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // e.g. a deleted node's tombstone
	}
	slim := &corev1.Node{TypeMeta: node.TypeMeta}
	slim.Name, slim.UID, slim.ResourceVersion = node.Name, node.UID, node.ResourceVersion
	slim.Status.NodeInfo.KubeletVersion = node.Status.NodeInfo.KubeletVersion
	slim.Status.NodeInfo.ContainerRuntimeVersion = node.Status.NodeInfo.ContainerRuntimeVersion
	return slim, nil
}
