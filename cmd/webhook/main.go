// Command entrypoint-webhook is the mutating admission webhook that injects
// kubernetes-entrypoint into annotated pods.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

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
		fmt.Println("entrypoint-webhook", version)
		return
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	if err := server.Run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), opts, log); err != nil {
		log.Error(err, "entrypoint-webhook stopped")
		os.Exit(1)
	}
}
