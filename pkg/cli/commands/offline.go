package commands

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/offline"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/imageconfig"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject/options"
)

// webhookFlags are the entrypoint-webhook flags that change its decision about a
// pod, with the same names and defaults.
type webhookFlags struct {
	files          []string
	output         string
	image          string
	pullPolicy     string
	mountPath      string
	runAsUser      int64
	controller     bool
	gateAll        bool
	namespaceGated bool
	adoptAll       bool
	namespaceAdopt bool
	registryLookup bool
	secrets        bool
	injectionMode  string
}

func (w *webhookFlags) bind(cmd *cobra.Command, lookupHelp string) {
	d := options.Default()
	fs := cmd.Flags()
	fs.StringSliceVarP(&w.files, "filename", "f", nil, "manifest file, directory of them, or - for standard input (repeatable)")
	fs.StringVar(&w.image, "image", d.Image, "the webhook's --image: image of the injected init container")
	fs.StringVar(&w.pullPolicy, "image-pull-policy", d.ImagePullPolicy, "the webhook's --image-pull-policy")
	fs.StringVar(&w.mountPath, "mount-path", d.MountPath, "the webhook's --mount-path")
	fs.Int64Var(&w.runAsUser, "run-as-user", d.RunAsUser, "the webhook's --run-as-user")
	fs.BoolVar(&w.controller, "controller", d.Controller, "the webhook's --controller: the dependency controller runs (gate mode is possible)")
	fs.BoolVar(&w.gateAll, "gate-all-namespaces", d.GateAllNamespaces, "the webhook's --gate-all-namespaces")
	fs.BoolVar(&w.namespaceGated, "namespace-gated", false, "as if the objects' namespace carried the label "+inject.NamespaceLabelGate+"=true")
	fs.BoolVar(&w.adoptAll, "adopt-all-namespaces", d.AdoptAllNamespaces, "the webhook's --adopt-all-namespaces (chart value webhook.adoptAllNamespaces)")
	fs.BoolVar(&w.namespaceAdopt, "namespace-adopted", false, "as if the objects' namespace carried the label "+inject.NamespaceLabelAdopt+"=true: pods without "+inject.AnnotationPrefix+" annotations whose init container carries the original image's DEPENDENCY_SERVICE env are adopted")
	fs.BoolVar(&w.registryLookup, "registry-lookup", false, lookupHelp)
	fs.BoolVar(&w.secrets, "secret-dependencies", d.SecretDependencies, "the webhook's --secret-dependencies: the controller watches Secrets, so gate mode holds pods for them too")
	fs.StringVar(&w.injectionMode, "injection-mode", string(inject.ModeInitContainer), "the webhook's --injection-mode, as it decided for the cluster: init-container (an emptyDir and an init container copying the resolver) or image-volume (the image as a volume; no init container); a pod's "+inject.AnnotationInjectionMode+" annotation overrides it")
	_ = cmd.MarkFlagRequired("filename")
}

// offlineOptions turn the flags into pkg/offline's, as entrypoint-webhook turns
// its own into pkg/inject's config (pkg/inject/options: same checks, same errors).
func (w *webhookFlags) offlineOptions(flags *genericclioptions.ConfigFlags, e env) (offline.Options, error) {
	o := options.Default()
	o.Image, o.ImagePullPolicy, o.MountPath, o.RunAsUser = w.image, w.pullPolicy, w.mountPath, w.runAsUser
	o.Controller, o.GateAllNamespaces, o.RegistryLookup = w.controller, w.gateAll, w.registryLookup
	o.SecretDependencies, o.AdoptAllNamespaces = w.secrets, w.adoptAll
	cfg, err := o.InjectConfig()
	if err != nil {
		return offline.Options{}, &ExitError{Code: ExitFailure, Err: err}
	}
	cfg.NamespaceGated, cfg.NamespaceAdopted = w.namespaceGated, w.namespaceAdopt
	mode, err := offlineInjectionMode(w.injectionMode)
	if err != nil {
		return offline.Options{}, &ExitError{Code: ExitFailure, Err: err}
	}
	cfg.InjectionMode = mode
	switch {
	case w.registryLookup && e.registry != nil:
		cfg.ImageConfig = e.registry
	case w.registryLookup:
		opts, err := o.ImageConfigOptions()
		if err != nil {
			return offline.Options{}, &ExitError{Code: ExitFailure, Err: err}
		}
		// Anonymous pulls: offline, the pod's pull secrets are not read.
		cfg.ImageConfig = imageconfig.New(opts)
	}
	return offline.Options{Config: cfg, Namespace: namespace(flags)}, nil
}

// offlineInjectionMode reads --injection-mode. The webhook's auto is not
// accepted: it is decided from the cluster's nodes, which offline are unknown.
func offlineInjectionMode(value string) (inject.InjectionMode, error) {
	mode := inject.InjectionMode(value)
	for _, m := range inject.InjectionModes() {
		if m == mode {
			return mode, nil
		}
	}
	if value == "auto" {
		return "", fmt.Errorf("--injection-mode=auto: the webhook decides auto from the cluster's nodes, which are not read here; give the mode it decided, %s or %s",
			inject.ModeInitContainer, inject.ModeImageVolume)
	}
	return "", fmt.Errorf("--injection-mode=%s: want %s or %s", value, inject.ModeInitContainer, inject.ModeImageVolume)
}

func readDocs(cmd *cobra.Command, files []string) ([]*manifest.Document, error) {
	docs, err := manifest.Read(files, cmd.InOrStdin())
	if err != nil {
		return nil, &ExitError{Code: ExitFailure, Err: err}
	}
	return docs, nil
}

func newLint(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, e env) *cobra.Command {
	var w webhookFlags
	cmd := &cobra.Command{
		Use:   "lint -f FILE|DIR|-",
		Short: "Check the entrypoint.io/ annotations of manifests as the webhook would, offline",
		Long: `lint runs the webhook's own validation (the same code, the same messages) on every
Pod and pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) of
the manifests, and prints each problem at its file and line. It needs no cluster.

Exit status: 0 when the webhook would admit every pod, 1 when it would deny one, 2 when
the manifests could not be read.

lint warns (exit status 0) about a Deployment whose pods may wait for their dependencies
longer than its spec.progressDeadlineSeconds (600 when unset): its entrypoint.io/optional-after
or entrypoint.io/timeout is longer, or it waits for a Job of the same manifests whose
activeDeadlineSeconds is. Past the deadline the rollout is marked failed
(ProgressDeadlineExceeded), which Argo CD and kubectl rollout status report.

Containers without a command get their argv from their image, which the webhook reads
from the registry: lint notes them and, unless --registry-lookup, does not read it.

With --namespace-adopted (or --adopt-all-namespaces), lint notes for each pod without
entrypoint.io/ annotations whose init container runs the original kubernetes-entrypoint
image what adoption would move to the scheduling gate and what stays for that container,
or why the pod would not be adopted.`,
		Example: `  kubectl entrypoint lint -f deploy/
  helm template openstack/keystone | kubectl entrypoint lint -f -
  helm template openstack/keystone | kubectl entrypoint lint -f - --namespace-adopted`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := w.offlineOptions(flags, e)
			if err != nil {
				return err
			}
			docs, err := readDocs(cmd, w.files)
			if err != nil {
				return err
			}
			results, err := offline.Lint(cmd.Context(), docs, opts)
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if err := printFindings(streams.Out, w.output, offline.Findings(results)); err != nil {
				return err
			}
			summarize(streams.ErrOut, w.output, docs, results)
			if offline.Failed(results) {
				return &ExitError{Code: ExitProblems}
			}
			return nil
		},
	}
	w.bind(cmd, "read the argv of containers without command from their image's registry (anonymously), as the webhook does")
	cmd.Flags().StringVarP(&w.output, "output", "o", "", "output format: empty for lines file:line: message, or json, yaml")
	return cmd
}

func printFindings(out io.Writer, format string, findings []offline.Finding) error {
	if findings == nil {
		findings = []offline.Finding{}
	}
	switch format {
	case "":
		for _, f := range findings {
			printFinding(out, f)
		}
		return nil
	case "json", "yaml":
		return printStructured(out, format, findings)
	}
	return &ExitError{Code: ExitFailure, Err: fmt.Errorf("--output=%s: want json or yaml, or nothing for lines", format)}
}

// printFinding writes f on a line (escaped: its message quotes annotations),
// the further lines of a message of several indented.
func printFinding(w io.Writer, f offline.Finding) {
	fprintf(w, "%s\n", safeout.Lines(f.String(), "    "))
}

// summarize says on stderr how much was checked, for terminals only: scripts
// reading -o json get the findings alone.
func summarize(errOut io.Writer, format string, docs []*manifest.Document, results []offline.Result) {
	if format != "" {
		return
	}
	annotated, adopted, errors, warnings := 0, 0, 0, 0
	for _, r := range results {
		switch {
		case r.Outcome.Reason == inject.ReasonAdopted:
			adopted++
		case r.Outcome.Reason == inject.ReasonNoAnnotations, strings.HasPrefix(r.Outcome.Reason, "adopt-"):
		default:
			annotated++
		}
		for _, f := range r.Findings {
			switch f.Severity {
			case offline.SeverityError:
				errors++
			case offline.SeverityWarning:
				warnings++
			}
		}
	}
	adoptedPart := ""
	if adopted > 0 {
		adoptedPart = fmt.Sprintf(", %d adopted", adopted)
	}
	warningsPart := ""
	if warnings > 0 {
		warningsPart = fmt.Sprintf(", %d warnings", warnings)
	}
	fprintf(errOut, "%d objects, %d pods or pod templates, %d with %s annotations%s; %d problems%s\n",
		len(docs), len(results), annotated, inject.AnnotationPrefix, adoptedPart, errors, warningsPart)
}

func newInject(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, e env) *cobra.Command {
	var w webhookFlags
	cmd := &cobra.Command{
		Use:   "inject -f FILE|DIR|-",
		Short: "Print manifests as the webhook would mutate their pods, offline",
		Long: `inject runs the webhook's mutation (the same code) on every Pod and pod template of
the manifests and prints them, each workload with its pod template mutated in place;
objects the webhook leaves alone are printed unchanged. Pods the webhook would deny are
printed unchanged too, and their problems go to standard error as lint prints them.

Exit status: 0 when every pod was injected or left alone, 1 when one would be denied,
2 when the manifests could not be read.

A container without a command needs its image's ENTRYPOINT and CMD: --registry-lookup
reads them from the registry (anonymously); without it such a pod is denied as the
webhook with --registry-lookup=false denies it, naming the annotation that gives the
argv instead.`,
		Example: `  kubectl entrypoint inject -f deployment.yaml --image registry.example.com/kubernetes-entrypoint:0.1.0
  helm template . | kubectl entrypoint inject -f - --registry-lookup | kubectl diff -f -
  helm template openstack/keystone | kubectl entrypoint inject -f - --namespace-adopted`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := w.offlineOptions(flags, e)
			if err != nil {
				return err
			}
			docs, err := readDocs(cmd, w.files)
			if err != nil {
				return err
			}
			results, err := offline.Inject(cmd.Context(), docs, opts)
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			if err := writeDocs(streams.Out, w.output, docs); err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			for _, f := range offline.Findings(results) {
				printFinding(streams.ErrOut, f)
			}
			if offline.Failed(results) {
				return &ExitError{Code: ExitProblems}
			}
			return nil
		},
	}
	w.bind(cmd, "read the argv of containers without command from their image's registry (anonymously), as the webhook does")
	cmd.Flags().StringVarP(&w.output, "output", "o", "yaml", "output format: yaml (documents separated by ---) or json (a v1 List)")
	return cmd
}

func writeDocs(out io.Writer, format string, docs []*manifest.Document) error {
	switch format {
	case "yaml":
		return manifest.Write(out, docs)
	case "json":
		items := make([]any, len(docs))
		for i, d := range docs {
			items[i] = d.Object
		}
		b, err := safeout.JSON(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
		if err != nil {
			return fmt.Errorf("encoding the objects: %w", err)
		}
		fprintf(out, "%s\n", b)
		return nil
	}
	return fmt.Errorf("--output=%s: want yaml or json", format)
}
