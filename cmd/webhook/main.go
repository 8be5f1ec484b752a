// Command entrypoint-webhook is the mutating admission webhook that injects
// kubernetes-entrypoint into annotated pods.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/buildinfo"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// version is stamped in at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	opts := server.DefaultOptions()
	opts.Version = version
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Print(buildinfo.Text("entrypoint-webhook", version))
		return
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	if limit, why := goMemoryLimit(os.Getenv("GOMEMLIMIT"), os.Getenv(memoryLimitEnv)); limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info("Go memory limit set to nine tenths of the container's", "bytes", limit, memoryLimitEnv, os.Getenv(memoryLimitEnv))
	} else {
		log.V(1).Info("Go memory limit left as it is", "why", why)
	}
	if err := server.Run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), opts, log); err != nil {
		log.Error(err, "entrypoint-webhook stopped")
		os.Exit(1)
	}
}
