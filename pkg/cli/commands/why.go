package commands

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/why"
)

func newWhy(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var output string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "why POD | TYPE/NAME",
		Short: "Say what a pod waits for, dependency by dependency, read live from the cluster",
		Long: `why reads a pod's dependencies as the dependency controller does (the webhook's
injection, or the DEPENDENCY_* variables of a pod that runs the original image), judges
each one now by the resolver's own rules (a few GETs and LISTs), and shows the
controller's condition ` + string(api.ConditionType) + ` when it is set.
For a workload (deployment/NAME, statefulset/NAME, daemonset/NAME, job/NAME,
cronjob/NAME, replicaset/NAME) it judges each of its pods and sums them up: one line per
blocker with the number of pods it blocks, and the pods' condition reasons; -v adds each
pod's report (a workload of one pod gets its report), -o json gives the summary with every
report. A workload without pods is
explained from its pod template.

Sockets, TCP ports and HTTP endpoints are checked inside the pod by the resolver only:
they show as unknown.

Exit status: 0 when nothing blocks, 1 when a dependency is waiting (or the scheduling
gate still holds the pod), 2 when the question could not be answered.`,
		Example: `  kubectl entrypoint why web-6d8f7c9b5-x2x7q
  kubectl entrypoint why -n openstack deployment/keystone-api -v
  kubectl entrypoint why -n openstack deployment/keystone-api -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reports, workload, err := whyReports(cmd.Context(), flags, args[0])
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if workload != "" {
				err = printSummary(streams.Out, output, verbose, why.Summarize(workload, reports))
			} else {
				err = printReports(streams.Out, output, reports)
			}
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			for _, r := range reports {
				if r.Blocked {
					return &ExitError{Code: ExitProblems}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "for a workload, each pod's report too, after the summary")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: empty for a table per pod, or json, yaml")
	return cmd
}

// whyReports are the reports on target's pods; workload ("deployment ns/web")
// is set when target is a workload with pods, to be summed up.
func whyReports(ctx context.Context, flags *genericclioptions.ConfigFlags, target string) (reports []why.Report, workload string, err error) {
	cs, dyn, mapper, err := clients(flags)
	if err != nil {
		return nil, "", err
	}
	ns := namespace(flags)
	obj, err := getTarget(ctx, dyn, mapper, ns, target)
	if err != nil {
		return nil, "", err
	}
	pods, err := podsOf(ctx, cs, obj)
	if err != nil {
		return nil, "", err
	}
	x := why.Explainer{Client: dyn, Mapper: mapper}
	if len(pods) == 0 {
		// No pods (not created yet, or denied by the webhook): what they
		// would wait for, from the template.
		tmpl, ok, err := podTemplate(obj)
		if err != nil {
			return nil, "", err
		}
		if !ok {
			return nil, "", fmt.Errorf("%s %s/%s has no pods to explain", strings.ToLower(obj.GetKind()), obj.GetNamespace(), obj.GetName())
		}
		return []why.Report{x.ExplainTemplate(ctx, strings.ToLower(obj.GetKind()), obj.GetNamespace(), obj.GetName(), tmpl)}, "", nil
	}
	if obj.GetKind() != "Pod" {
		// A workload's current pods: those that finished (a Job's, a
		// CronJob's) wait for nothing, unless there are no others.
		current := slices.DeleteFunc(slices.Clone(pods), func(p corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		if len(current) > 0 {
			pods = current
		}
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for i := range pods {
		reports = append(reports, x.Explain(ctx, &pods[i]))
	}
	if obj.GetKind() != "Pod" {
		workload = strings.ToLower(obj.GetKind()) + " " + obj.GetNamespace() + "/" + obj.GetName()
	}
	return reports, workload, nil
}

// getTarget reads POD or TYPE/NAME in namespace ns, TYPE as kubectl takes it
// (deployment, deploy, deployments.apps, sts ...). The REST mapper of kubectl's
// flags expands short names; kubectl's resource builder would do the same, but
// brings kustomize into the binary.
func getTarget(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, ns, target string) (*unstructured.Unstructured, error) {
	kind, name, found := strings.Cut(target, "/")
	if !found {
		kind, name = "pods", target
	}
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%q: want POD or TYPE/NAME, such as deployment/web", target)
	}
	gvr, err := mapper.ResourceFor(schema.ParseGroupResource(kind).WithVersion(""))
	if err != nil {
		return nil, fmt.Errorf("%q: the server has no resource type %q (kubectl api-resources lists them)", target, kind)
	}
	obj, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", target, err)
	}
	return obj, nil
}

// podTemplate is a workload's pod template.
func podTemplate(obj *unstructured.Unstructured) (corev1.PodTemplateSpec, bool, error) {
	path := []string{"spec", "template"}
	if obj.GetKind() == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "template"}
	}
	raw, found, err := unstructured.NestedMap(obj.Object, path...)
	if err != nil || !found {
		return corev1.PodTemplateSpec{}, false, nil
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl); err != nil {
		return tmpl, false, fmt.Errorf("reading the pod template of %s %s: %w", strings.ToLower(obj.GetKind()), obj.GetName(), err)
	}
	return tmpl, true, nil
}

// podsOf is the pod itself, or the pods of a workload: those its selector
// matches and it controls (a CronJob through its Jobs).
func podsOf(ctx context.Context, cs kubernetes.Interface, obj *unstructured.Unstructured) ([]corev1.Pod, error) {
	if obj.GetKind() == "Pod" {
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pod); err != nil {
			return nil, fmt.Errorf("reading pod %s: %w", obj.GetName(), err)
		}
		return []corev1.Pod{pod}, nil
	}
	if obj.GetKind() == "CronJob" {
		jobs, err := cs.BatchV1().Jobs(obj.GetNamespace()).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing the jobs of cronjob %s: %w", obj.GetName(), err)
		}
		var pods []corev1.Pod
		for _, j := range jobs.Items {
			if owner := metav1.GetControllerOf(&j); owner == nil || owner.UID != obj.GetUID() {
				continue
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&j)
			if err != nil {
				return nil, err
			}
			job := &unstructured.Unstructured{Object: u}
			job.SetKind("Job")
			more, err := podsOf(ctx, cs, job)
			if err != nil {
				return nil, err
			}
			pods = append(pods, more...)
		}
		return pods, nil
	}
	sel, err := why.Selector(obj)
	if err != nil {
		return nil, err
	}
	list, err := cs.CoreV1().Pods(obj.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s %s: %w", strings.ToLower(obj.GetKind()), obj.GetName(), err)
	}
	return list.Items, nil
}

// printReports writes why's reports. Every line goes through fprintf, which
// escapes what the pod, its annotations and the API server said; a problem of
// several lines has its further lines indented.
func printReports(out io.Writer, format string, reports []why.Report) error {
	switch format {
	case "json", "yaml":
		return printStructured(out, format, reports)
	case "":
	default:
		return fmt.Errorf("--output=%s: want json or yaml, or nothing for a table", format)
	}
	for i, r := range reports {
		if i > 0 {
			fprintf(out, "\n")
		}
		if r.Workload != "" {
			fprintf(out, "%s has no pods; what they would wait for, from %s\n", r.Workload, r.Source)
		} else {
			fprintf(out, "pod %s/%s: dependencies %s\n", r.Namespace, r.Pod, r.Source)
		}
		if r.Gated {
			held := "released by the controller"
			if r.HeldByGate {
				held = "held before scheduling by the gate until they are ready"
			}
			fprintf(out, "gate mode: %s\n", held)
		}
		if r.Problem != "" {
			fprintf(out, "problem: %s\n", safeout.Lines(r.Problem, "  "))
		}
		if len(r.Dependencies) > 0 {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			// A gated pod's dependencies say what checks each: the gate, or the pod.
			checkedBy := slices.ContainsFunc(r.Dependencies, func(d why.Dependency) bool { return d.CheckedBy != "" })
			if checkedBy {
				fprintf(tw, "DEPENDENCY\tSTATE\tCHECKED BY\tWHY\n")
			} else {
				fprintf(tw, "DEPENDENCY\tSTATE\tWHY\n")
			}
			for _, d := range r.Dependencies {
				if checkedBy {
					fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.State, d.CheckedBy, d.Reason)
				} else {
					fprintf(tw, "%s\t%s\t%s\n", d.Name, d.State, d.Reason)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if c := r.Condition; c != nil {
			fprintf(out, "condition %s=%s (%s): %s\n", api.ConditionType, c.Status, c.Reason, c.Message)
		} else if r.Workload == "" {
			fprintf(out, "condition %s: not set (a gated pod gets it once it has waited about a second; or the dependency controller has not seen the pod, or does not run)\n", api.ConditionType)
		}
		waiting := 0
		for _, d := range r.Dependencies {
			if d.State == why.StateWaiting {
				waiting++
			}
		}
		switch {
		case r.Blocked && waiting > 0:
			fprintf(out, "blocked: %d of %d dependencies waiting\n", waiting, len(r.Dependencies))
		case r.Blocked:
			fprintf(out, "blocked\n")
		default:
			fprintf(out, "nothing blocks\n")
		}
	}
	return nil
}

// summaryReasonWidth is the most of a reason why's summary shows, in bytes.
const summaryReasonWidth = 120

// printSummary writes why's summary of a workload's pods, and with verbose
// each pod's report after it (of a single pod, its report only); -o json|yaml writes the summary with every
// report.
func printSummary(out io.Writer, format string, verbose bool, s why.Summary) error {
	switch format {
	case "json", "yaml":
		return printStructured(out, format, s)
	case "":
	default:
		return fmt.Errorf("--output=%s: want json or yaml, or nothing for a table", format)
	}
	fprintf(out, "%s: %d of %d pods blocked\n", s.Workload, s.Blocked, s.Pods)
	if len(s.Reports) == 1 {
		// One pod: its report says it all, and more.
		return printReports(out, "", s.Reports)
	}
	if len(s.Blockers) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fprintf(tw, "BLOCKER\tPODS\tWHY\n")
		for _, b := range s.Blockers {
			// Each reason cut (-v shows them whole), then escaped: its line
			// breaks show as \n, in its cell.
			reasons := make([]string, len(b.Reasons))
			for i, r := range b.Reasons {
				reasons[i] = safetext.Truncate(r, summaryReasonWidth)
			}
			fprintf(tw, "%s\t%d/%d\t%s\n", b.Name, b.Pods, s.Pods, strings.Join(reasons, " | "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(s.Unknown) > 0 {
		fprintf(out, "only the resolver in the pods can check: %s\n", strings.Join(s.Unknown, ", "))
	}
	counts := make([]string, len(s.Conditions))
	for i, c := range s.Conditions {
		counts[i] = fmt.Sprintf("%s on %d", c.Reason, c.Pods)
	}
	fprintf(out, "condition %s: %s\n", api.ConditionType, strings.Join(counts, ", "))
	if !verbose {
		fprintf(out, "(-v shows each pod's report)\n")
		return nil
	}
	fprintf(out, "\n")
	return printReports(out, "", s.Reports)
}
