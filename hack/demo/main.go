// Command demo shows the whole path on a real single-node cluster on this machine
// (internal/localcluster): it starts the cluster, builds and imports the project's
// image, installs the chart with Helm, applies examples/ (through hack/demo/overlay,
// which adapts it to the loopback network and adds the same app in gate mode), and
// narrates what happens in both modes side by side: the pods the webhook mutated, the
// resolver's waiting lines in one, the scheduling gate of the other, the dependency
// controller's condition on both (kubectl get pods with a WAITING-FOR column, kubectl
// describe), the dependencies becoming ready, the gate removed and both applications
// starting; it ends with the kubectl plugin's graph of the namespace and its why of the
// app. Then it takes everything down.
//
//	go run ./hack/demo [-keep]     (make demo)
//
// It needs Linux and root: the kubelet, containerd and runc mount, make cgroups and
// network namespaces.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localinstall"
)

// projectImages are the project's images as the release builds them, for this
// machine's architecture.
func projectImages() localcluster.ProjectImages { return localcluster.ProjectImageRefs("demo") }

const (
	// busyboxImage is what examples/ runs; here a stand-in built from Debian's
	// busybox-static (the same 1.35 release) is imported under that name.
	busyboxImage = "docker.io/library/busybox:1.35"
	ns           = "demo"
	// overlayDir adapts examples/ to the loopback cluster (see its comments).
	overlayDir = "hack/demo/overlay"
)

func main() {
	keep := flag.Bool("keep", false, "leave the cluster running at the end (stop it with: go run ./hack/cluster down)")
	flag.Parse()
	if why := cannotRun(); why != "" {
		fmt.Fprintln(os.Stderr, "make demo cannot run here: "+why)
		os.Exit(2)
	}
	n := newNarrator(os.Stdout)
	if err := run(n, *keep); err != nil {
		n.say("demo failed: %v", err)
		os.Exit(1)
	}
}

// cannotRun says why this machine cannot run the demo, or "".
func cannotRun() string {
	if runtime.GOOS != "linux" {
		return fmt.Sprintf("it runs a real kubelet with containerd and runc, which need Linux; this is %s. "+
			"Run it in a Linux VM as root.", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Sprintf("it runs a real kubelet with containerd and runc, which need root "+
			"(mounts, cgroups, network namespaces, iptables); this is uid %d. Run `sudo make demo`, or "+
			"`make demo-envtest`, which shows the webhook and the resolver on an API server without a node, as any user.", os.Geteuid())
	}
	return ""
}

func run(n *narrator, keep bool) error {
	c, err := localcluster.New(localcluster.Options{Logf: n.indented("cluster")})
	if err != nil {
		return err
	}
	if running := c.Running(); len(running) > 0 {
		return fmt.Errorf("a local cluster already runs in %s (%v); stop it first: go run ./hack/cluster down", c.Dir(), running)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n.step("Preparing what the cluster needs: Debian packages (runc, CNI plugins, busybox-static) and the Kubernetes and containerd binaries, built from the Go module proxy once and cached (the Kubernetes binaries in %s, containerd next to them)", c.BinDir())
	if err := c.Prepare(); err != nil {
		return err
	}
	if err := c.EnsurePackages(localcluster.DebianPackage{File: busyboxBinary, Name: "busybox-static"}); err != nil {
		return err
	}

	var downOnce sync.Once
	down := func() {
		downOnce.Do(func() {
			if keep {
				n.step("Leaving the cluster running (-keep). Try:\n    go run ./hack/cluster kubectl -n %s get pods\n    go run ./hack/cluster down", ns)
				return
			}
			n.step("Tearing everything down")
			if err := c.Down(); err != nil {
				n.say("teardown: %v", err)
			}
		})
	}
	defer down()

	n.step("Starting a single-node cluster on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet (state in %s)", c.Dir())
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("cluster up: %w (logs in %s)", err, c.Path("logs"))
	}

	n.step("Building images without Docker (go-containerregistry) and importing them into containerd, and the kubectl plugin kubectl-entrypoint")
	if err := buildImages(ctx, c); err != nil {
		return err
	}
	pluginDir := c.Path("plugins")
	if err := buildPlugin(ctx, c.Repo(), pluginDir); err != nil {
		return err
	}

	n.step("Installing the chart charts/kubernetes-entrypoint with Helm: self-signed TLS, the webhook on the host network, registered at a URL on 127.0.0.1, and the dependency controller (leader-elected) in a Deployment of its own, each as its own ServiceAccount")
	if _, err := localinstall.Install(ctx, localinstall.Options{
		Repo:          c.Repo(),
		Kubeconfig:    c.KubeconfigPath(),
		Image:         projectImages().Webhook,
		ResolverImage: projectImages().Resolver,
		APIServerHost: "127.0.0.1",
		APIServerPort: localcluster.APIServerPort,
		Logf:          n.indented("helm"),
	}); err != nil {
		return err
	}

	restConfig, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	d := &demo{n: n, c: c, cs: cs, pluginDir: pluginDir}
	if err := d.play(ctx); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return errors.New("interrupted")
		}
		return err
	}
	return nil
}

// narrator prints numbered steps and timestamped lines: the wall clock and the
// seconds since the demo began.
type narrator struct {
	mu    sync.Mutex
	out   *bufio.Writer
	began time.Time
	steps int
}

func newNarrator(f *os.File) *narrator {
	return &narrator{out: bufio.NewWriter(f), began: time.Now()}
}

func (n *narrator) stamp(t time.Time) string {
	return fmt.Sprintf("%s %6.1fs", t.Format("15:04:05.000"), t.Sub(n.began).Seconds())
}

func (n *narrator) write(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, _ = n.out.WriteString(s)
	n.out.Flush()
}

// step starts a new part of the story.
func (n *narrator) step(format string, args ...any) {
	n.mu.Lock()
	n.steps++
	s := n.steps
	n.mu.Unlock()
	n.write(fmt.Sprintf("\n%s  == %d. %s\n", n.stamp(time.Now()), s, fmt.Sprintf(format, args...)))
}

// say prints one line stamped now.
func (n *narrator) say(format string, args ...any) { n.sayAt(time.Now(), format, args...) }

// sayAt prints one line stamped t (when a log line says when it happened).
func (n *narrator) sayAt(t time.Time, format string, args ...any) {
	n.write(fmt.Sprintf("%s  %s\n", n.stamp(t), fmt.Sprintf(format, args...)))
}

// block prints lines indented, under the last line.
func (n *narrator) block(text string) {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("                        " + l + "\n")
	}
	n.write(b.String())
}

// indented is a Logf for a component's progress lines.
func (n *narrator) indented(who string) func(string, ...any) {
	return func(format string, args ...any) { n.say("  %s: %s", who, fmt.Sprintf(format, args...)) }
}

// podReady tells whether the pod's Ready condition is true.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
