package commands

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/graph"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func newGraph(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "graph [-n NAMESPACE | -A] [-o tree|dot|mermaid|json|yaml]",
		Short: "Show the dependency graph of the workloads, with cycles and what nothing can satisfy",
		Long: `graph draws what the namespace's workloads wait for: every workload whose pod template
carries entrypoint.io/ annotations (read as the webhook injects them) or DEPENDENCY_*
variables (openstack-helm charts with the original image), and bare pods that do, grouped
by their controller. Each points at what it waits for (a Service, a Job, Jobs or pods by
labels, a DaemonSet, a rollout, a custom resource or CEL expression, a claim, ConfigMap,
Secret or CRD), and each of those at the workloads that satisfy it: a Service at the
workloads its selector matches, a Job at itself or the CronJob that creates it, a rollout
at its workload, a custom resource or CEL expression naming a workload or a pod at that
workload.

Cycles (found as the dependency controller finds them) are marked, and so is every
dependency nothing in the cluster can satisfy: a Service that does not exist or whose
selector matches no workload, a Job that does not exist and no CronJob creates, a
DaemonSet or rollout whose workload does not exist, a custom resource, CEL object,
claim, ConfigMap or CRD that does not exist (Secrets are not read).

Exit status: 0 when there is neither cycle nor unsatisfiable dependency, 1 when there
is one, 2 when the cluster could not be read.`,
		Example: `  kubectl entrypoint graph -n openstack
  kubectl entrypoint graph -A -o dot | dot -Tsvg > deps.svg
  kubectl entrypoint graph -n openstack -o mermaid`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, err := clusterGraph(cmd.Context(), flags, all)
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if err := writeGraph(streams.Out, output, g); err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if len(g.Cycles) > 0 || len(g.Unsatisfiable()) > 0 {
				return &ExitError{Code: ExitProblems}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "tree", "output format: tree, dot (Graphviz), mermaid, json or yaml")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace")
	return cmd
}

func clusterGraph(ctx context.Context, flags *genericclioptions.ConfigFlags, all bool) (*graph.Graph, error) {
	cs, dyn, mapper, err := clients(flags)
	if err != nil {
		return nil, err
	}
	ns := namespace(flags)
	if all {
		ns = metav1.NamespaceAll
	}
	o, err := listObjects(ctx, cs, ns)
	if err != nil {
		return nil, err
	}
	lookup := func(ref spec.CustomResourceRef) (bool, string) {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return false, err.Error()
		}
		m, err := mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
		if err != nil {
			return false, fmt.Sprintf("kind %s of %s is not served (yet)", ref.Kind, ref.APIVersion)
		}
		r := dyn.Resource(m.Resource)
		var getErr error
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			_, getErr = r.Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		} else {
			_, getErr = r.Get(ctx, ref.Name, metav1.GetOptions{})
		}
		switch {
		case getErr == nil:
			return true, ""
		case apierrors.IsNotFound(getErr):
			return false, ""
		}
		return false, "cannot read it: " + getErr.Error()
	}
	return graph.Build(graph.Workloads(ctx, o), o, lookup), nil
}

// listObjects lists what the graph is made of, in namespace ns ("" for all).
func listObjects(ctx context.Context, cs kubernetes.Interface, ns string) (graph.Objects, error) {
	var o graph.Objects
	opts := metav1.ListOptions{}
	wrap := func(what string, err error) error { return fmt.Errorf("listing %s: %w", what, err) }
	pods, err := cs.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("pods", err)
	}
	o.Pods = pods.Items
	services, err := cs.CoreV1().Services(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("services", err)
	}
	o.Services = services.Items
	deployments, err := cs.AppsV1().Deployments(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("deployments", err)
	}
	o.Deployments = deployments.Items
	statefulSets, err := cs.AppsV1().StatefulSets(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("statefulsets", err)
	}
	o.StatefulSets = statefulSets.Items
	daemonSets, err := cs.AppsV1().DaemonSets(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("daemonsets", err)
	}
	o.DaemonSets = daemonSets.Items
	replicaSets, err := cs.AppsV1().ReplicaSets(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("replicasets", err)
	}
	o.ReplicaSets = replicaSets.Items
	jobs, err := cs.BatchV1().Jobs(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("jobs", err)
	}
	o.Jobs = jobs.Items
	cronJobs, err := cs.BatchV1().CronJobs(ns).List(ctx, opts)
	if err != nil {
		return o, wrap("cronjobs", err)
	}
	o.CronJobs = cronJobs.Items
	return o, nil
}

func writeGraph(out io.Writer, format string, g *graph.Graph) error {
	switch format {
	case "tree", "":
		return graph.WriteTree(out, g)
	case "dot":
		return graph.WriteDOT(out, g)
	case "mermaid":
		return graph.WriteMermaid(out, g)
	case "json", "yaml":
		return printStructured(out, format, g)
	}
	return fmt.Errorf("--output=%s: want tree, dot, mermaid, json or yaml", format)
}

// clients are the typed and dynamic clients and the REST mapper of the
// kubeconfig and context the flags name.
func clients(flags *genericclioptions.ConfigFlags) (kubernetes.Interface, dynamic.Interface, meta.RESTMapper, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("making a client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("making a client: %w", err)
	}
	mapper, err := flags.ToRESTMapper()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the API server's kinds: %w", err)
	}
	return cs, dyn, mapper, nil
}

// printStructured writes v as indented JSON or as YAML, for -o json|yaml: the
// same values, with control and bidirectional characters written as escapes
// (safeout.JSON, safeout.YAML).
func printStructured(out io.Writer, format string, v any) error {
	if format == "json" {
		b, err := safeout.JSON(v)
		if err != nil {
			return err
		}
		fprintf(out, "%s\n", b)
		return nil
	}
	b, err := safeout.YAML(v)
	if err != nil {
		return err
	}
	fprintf(out, "%s", b)
	return nil
}
