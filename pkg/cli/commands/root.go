// Package commands is the command line of kubectl-entrypoint, the kubectl plugin
// (kubectl entrypoint ...): cobra commands over pkg/cli's packages, with kubectl's
// own connection flags (k8s.io/cli-runtime).
package commands

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/buildinfo"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// ExitError ends the command with Code after its output; Err, when set, is
// printed first.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes: 1 is the answer "there is a problem" (lint found one, why found a
// blocking dependency); 2 means the command could not give an answer.
const (
	ExitProblems = 1
	ExitFailure  = 2
)

// New is the root command, kubectl-entrypoint, writing to streams.
func New(streams genericiooptions.IOStreams, version string) *cobra.Command {
	return newRoot(streams, version, env{})
}

// env is what the commands reach outside the process through; tests replace it.
type env struct {
	// registry, when set, is the registry lookup of --registry-lookup.
	registry inject.ImageConfigLookup
}

func newRoot(streams genericiooptions.IOStreams, version string, e env) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-entrypoint",
		Short: "Check, preview and explain kubernetes-entrypoint's dependencies",
		Long: `kubectl entrypoint works with the entrypoint.io/ annotations of kubernetes-entrypoint:

  lint     the webhook's own validation of manifests, offline, with file and line
  inject   the webhook's mutation of manifests, offline
  why      what a pod waits for, dependency by dependency, read live from the cluster
  status   the workloads whose pods wait, with their blockers, read live from the cluster
  graph    the dependency graph of a namespace's workloads`,
		Version: version,
		// Run by kubectl as a plugin: usage lines read "kubectl entrypoint ...".
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl entrypoint"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// As the other two binaries print theirs; the text holds no template actions.
	root.SetVersionTemplate(buildinfo.Text("kubectl-entrypoint", version))
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newLint(flags, streams, e), newInject(flags, streams, e), newWhy(flags, streams), newStatus(flags, streams), newGraph(flags, streams))
	return root
}

// Execute runs the command line args and returns the process's exit status,
// having printed any error to streams.ErrOut.
func Execute(streams genericiooptions.IOStreams, version string, args []string) int {
	return execute(New(streams, version), streams, args)
}

func execute(root *cobra.Command, streams genericiooptions.IOStreams, args []string) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			printError(streams.ErrOut, exit.Err)
		}
		return exit.Code
	}
	printError(streams.ErrOut, err)
	return ExitFailure
}

// printError prints err, which may quote an object or an annotation, escaped.
func printError(w io.Writer, err error) {
	fprintf(w, "error: %s\n", safeout.Lines(err.Error(), "  "))
}

// namespace is the namespace of -n, else of the kubeconfig's context, else
// "default": with no kubeconfig at all, still an answer (lint needs no cluster).
func namespace(flags *genericclioptions.ConfigFlags) string {
	if flags.Namespace != nil && *flags.Namespace != "" {
		return *flags.Namespace
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// fprintf is how the commands write text: every string argument (names,
// messages, reasons) is escaped by safeout.Fprintf, so that none can drive the
// terminal; JSON and YAML are written as bytes, made by safeout.JSON and YAML.
func fprintf(w io.Writer, format string, args ...any) { _, _ = safeout.Fprintf(w, format, args...) }
