package commands

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/status"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The bounds of status's table: rows, and the width of its text cells.
const (
	statusMaxRows       = 50
	statusBlockersWidth = 60
	statusReasonWidth   = 30
)

func newStatus(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the workloads whose pods wait for their dependencies, read live from the cluster",
		Long: `status lists the pods the webhook manages (label ` + inject.LabelManaged + `=true), with one
LIST, and shows each workload with pods waiting: held by the scheduling gate, or whose
condition ` + string(api.ConditionType) + ` is not True. A ReplicaSet's pods count under
their Deployment, a Job's under its CronJob.

WAITING is waiting/all of the workload's managed pods that are not finished; REASON the
conditions' reasons (` + status.NotJudged + ` for a gated pod the controller has not judged yet);
BLOCKERS what the conditions name, those holding the most pods first.
why TYPE/NAME then says why each one waits.

Exit status: 0 when nothing waits, 1 when a workload waits, 2 when the cluster could not
be read.`,
		Example: `  kubectl entrypoint status -n openstack
  kubectl entrypoint status -A -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns := namespace(flags)
			if all {
				ns = ""
			}
			cs, _, _, err := clients(flags)
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			workloads, err := status.List(cmd.Context(), cs, status.Options{Namespace: ns})
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if err := printStatus(streams.Out, output, ns, all, workloads); err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if len(workloads) > 0 {
				return &ExitError{Code: ExitProblems}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: empty for a table, or json, yaml")
	return cmd
}

func printStatus(out io.Writer, format, ns string, all bool, workloads []status.Workload) error {
	switch format {
	case "json", "yaml":
		if workloads == nil {
			workloads = []status.Workload{}
		}
		return printStructured(out, format, workloads)
	case "":
	default:
		return fmt.Errorf("--output=%s: want json or yaml, or nothing for a table", format)
	}
	if len(workloads) == 0 {
		where := "namespace " + ns
		if all {
			where = "any namespace"
		}
		fprintf(out, "no pod waits for its dependencies in %s\n", where)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if all {
		fprintf(tw, "NAMESPACE\t")
	}
	fprintf(tw, "WORKLOAD\tWAITING\tREASON\tBLOCKERS\n")
	for i, w := range workloads {
		if i == statusMaxRows {
			break
		}
		if all {
			fprintf(tw, "%s\t", w.Namespace)
		}
		reason := safetext.Truncate(strings.Join(w.Reasons, ","), statusReasonWidth)
		fprintf(tw, "%s\t%d/%d\t%s\t%s\n", w.Name, w.Waiting, w.Pods, reason, blockerCell(w))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := len(workloads) - statusMaxRows; n > 0 {
		fprintf(out, "... and %d more workloads waiting (-o json lists them all)\n", n)
	}
	return nil
}

// blockerCell names w's blockers in order, as many as fit in
// statusBlockersWidth, then "(+k more)" for the rest and those the
// conditions did not name; escaped (safetext.Escape) before it is measured.
func blockerCell(w status.Workload) safeout.Escaped {
	var shown []string
	width := 0
	for i, b := range w.Blockers {
		name := safetext.Escape(b.Name)
		if i > 0 && width+len(", ")+len(name) > statusBlockersWidth {
			break
		}
		if i == 0 {
			name = safetext.Truncate(name, statusBlockersWidth)
		} else {
			width += len(", ")
		}
		width += len(name)
		shown = append(shown, name)
	}
	cell := strings.Join(shown, ", ")
	if more := len(w.Blockers) - len(shown) + w.Unnamed; more > 0 {
		cell = strings.TrimSpace(cell + fmt.Sprintf(" (+%d more)", more))
	}
	if cell == "" {
		return "-"
	}
	return safeout.Escaped(cell)
}
