// Command cluster runs a real single-node Kubernetes cluster on this machine, on loopback:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet built from
// the Go module proxy (hack/build-k8s.sh), with containerd 2.x also built from the Go
// module proxy (hack/build-containerd.sh), and runc and the CNI plugins from Debian's
// packages. Every file lives under one state directory; down removes every
// process, mount, network link, cgroup and iptables chain that up made, also after a
// failed up.
//
//	go run ./hack/cluster prepare   install missing Debian packages, build missing binaries
//	go run ./hack/cluster up        start (installs missing Debian packages, builds binaries once)
//	go run ./hack/cluster down      stop and clean up; safe to run at any time
//	go run ./hack/cluster status    what runs and whether the node is Ready
//	go run ./hack/cluster restart NAME [SECONDS]  stop one component (kube-apiserver, kubelet, ...),
//	                                wait SECONDS (default 0), start it with the same flags
//	go run ./hack/cluster image NAME:TAG PKG...  build Go packages into an image and import it
//	go run ./hack/cluster smoke     run pods from a locally built image (one with an image
//	                                volume) and read their logs
//	go run ./hack/cluster kubectl ARGS...        the cached kubectl with the admin kubeconfig
//	go run ./hack/cluster env       shell exports (KUBECONFIG, CONTAINERD_ADDRESS, PATH for ctr, ...)
//
// The state directory is $KE_CLUSTER_DIR, default /tmp/ke-cluster. The logic lives in
// internal/localcluster, which the end-to-end tests (test/e2e) use as well.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: go run ./hack/cluster prepare|up|down|status|smoke|env
       go run ./hack/cluster restart NAME [SECONDS]
       go run ./hack/cluster image NAME:TAG PKG [PKG...]
       go run ./hack/cluster kubectl ARGS...
state directory: $KE_CLUSTER_DIR (default /tmp/ke-cluster)`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	c, err := localcluster.New(localcluster.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "up":
		err = c.Start(ctx)
		if err != nil {
			c.Logf("up failed: %v", err)
			c.Logf("logs are in %s; run `go run ./hack/cluster down` to clean up", c.Path("logs"))
			os.Exit(1) //nolint:gocritic // stop only gives the signals back, which exiting does too

		}
	case "prepare":
		err = c.Prepare()
	case "down":
		err = c.Down()
	case "status":
		err = c.Status(ctx)
	case "smoke":
		err = c.Smoke(ctx)
	case "restart":
		if len(args) < 1 || len(args) > 2 {
			usage()
		}
		pause := 0
		if len(args) == 2 {
			if pause, err = strconv.Atoi(args[1]); err != nil || pause < 0 {
				usage()
			}
		}
		if err = c.StopComponent(args[0], 5*time.Second); err == nil {
			time.Sleep(time.Duration(pause) * time.Second)
			err = c.StartComponent(ctx, args[0], 2*time.Minute)
		}
	case "env":
		fmt.Print(c.Env())
	case "image":
		if len(args) < 2 {
			usage()
		}
		err = c.BuildAndImport(ctx, args[0], args[1:])
	case "kubectl":
		err = c.Kubectl(args)
	default:
		usage()
	}
	if err != nil {
		c.Logf("%s: %v", os.Args[1], err)
		os.Exit(1)
	}
}
