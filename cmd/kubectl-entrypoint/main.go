// Command kubectl-entrypoint is the kubectl plugin of kubernetes-entrypoint
// (kubectl entrypoint lint|inject|why|status|graph); see pkg/cli/commands.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/commands"
)

// version is stamped in at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(commands.Execute(streams, version, os.Args[1:]))
}
