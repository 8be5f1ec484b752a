// Command kubernetes-entrypoint waits for a pod's dependencies, renders its config
// templates and then execs the application with its exact argv.
//
//	kubernetes-entrypoint [flags]                 legacy: DEPENDENCY_* and COMMAND from the environment
//	kubernetes-entrypoint [flags] -- ARGV...      wait, then exec ARGV exactly
//	kubernetes-entrypoint install DIR             copy this binary into DIR (init container)
//	kubernetes-entrypoint version
//
// Exit codes: 0 resolved (and no command, or a builtin ran); 1 internal error;
// 2 bad configuration; 3 timeout; 4 a dependency failed terminally; 126 the
// command cannot be executed; 127 the command was not found; 128+N stopped by
// signal N while waiting. After exec the application's own codes apply.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/buildinfo"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/launch"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/local"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/run"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// version is stamped in at build time (-ldflags "-X main.version=...").
var version = "dev"

const (
	exitOK       = 0
	exitInternal = 1
	exitConfig   = 2
	exitTimeout  = 3
	exitFailed   = 4
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// settings are the resolver's behaviour knobs: flags, defaulted from environment
// variables so they can be set on a container without changing its command.
type settings struct {
	kubeconfig     string
	timeout        time.Duration
	pollInterval   time.Duration
	reportInterval time.Duration
	failFast       bool
	waitForFailed  bool
	optionalAfter  time.Duration
	logFormat      string
	verbosity      int
	templateDir    string
}

func realMain(args []string, stdout, stderr io.Writer) int {
	before, argv, hasArgv := splitArgv(args)
	if len(before) > 0 && !hasArgv {
		switch before[0] {
		case "install":
			return install(before[1:], stdout, stderr)
		case "version":
			fmt.Fprint(stdout, buildinfo.Text("kubernetes-entrypoint", version))
			return exitOK
		}
	}
	var s settings
	fs, err := flagSet(&s, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kubernetes-entrypoint:", err)
		return exitConfig
	}
	if err := fs.Parse(before); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kubernetes-entrypoint: unexpected argument %q: put the command to run after \"--\", e.g. kubernetes-entrypoint -- /app/server --port 8080\n", fs.Arg(0))
		return exitConfig
	}
	if hasArgv && len(argv) == 0 {
		fmt.Fprintln(stderr, "kubernetes-entrypoint: nothing after \"--\": give the command to run, or drop \"--\" to only wait")
		return exitConfig
	}
	log, flush, err := newLogger(s.logFormat, s.verbosity, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kubernetes-entrypoint:", err)
		return exitConfig
	}
	defer flush()
	log = log.WithValues("version", version)

	sp, err := spec.FromEnv(os.LookupEnv)
	if err != nil {
		log.Error(err, "invalid dependency configuration in the environment")
		return exitConfig
	}
	ctx, stop, received := notifyContext(syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = run.Run(ctx, sp, run.Options{
		Log:            log,
		Argv:           argv,
		Timeout:        s.timeout,
		PollInterval:   s.pollInterval,
		ReportInterval: s.reportInterval,
		// --fail-fast is the default; turning it off is the old spelling of
		// --wait-for-failed-jobs.
		WaitForFailedJobs: s.waitForFailed || !s.failFast,
		OptionalAfter:     s.optionalAfter,
		TemplateDir:       s.templateDir,
		RESTConfig:        func() (*rest.Config, error) { return restConfig(s.kubeconfig) },
		Stdout:            stdout,
		Exec: func(argv []string, out io.Writer) error {
			flush() // the process image is about to be replaced
			stop()
			return launch.Exec(argv, out)
		},
	})
	return exitCode(log, err, received())
}

// notifyContext is cancelled by the first of sigs; received tells which one came.
func notifyContext(sigs ...os.Signal) (ctx context.Context, stop func(), received func() os.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	var got atomic.Value
	go func() {
		select {
		case sig := <-ch:
			got.Store(sig)
			cancel()
		case <-ctx.Done():
		}
	}()
	stop = func() {
		signal.Stop(ch)
		cancel()
	}
	received = func() os.Signal {
		sig, _ := got.Load().(os.Signal)
		return sig
	}
	return ctx, stop, received
}

func exitCode(log logr.Logger, err error, sig os.Signal) int {
	var blocked *resolve.BlockedError
	var launchErr *launch.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &launchErr):
		log.Error(err, "cannot start the application")
		return launchErr.ExitCode()
	case errors.Is(err, run.ErrConfig):
		log.Error(err, "cannot start")
		return exitConfig
	case errors.As(err, &blocked) && errors.Is(err, context.DeadlineExceeded):
		log.Error(err, "timed out", "blocking", blocked.Blocking)
		return exitTimeout
	case errors.As(err, &blocked) && sig != nil:
		log.Info("stopped by signal while waiting", "signal", sig.String(), "blocking", blocked.Blocking)
		if s, ok := sig.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return exitInternal
	case errors.Is(err, resolve.ErrTerminal):
		log.Error(err, "dependency failed")
		return exitFailed
	}
	log.Error(err, "unexpected error")
	return exitInternal
}

// splitArgv splits args at the first "--": the application's argv follows it
// verbatim, never re-split.
func splitArgv(args []string) (before, argv []string, found bool) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

func flagSet(s *settings, stderr io.Writer) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("kubernetes-entrypoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var errs []error
	envDuration := func(name string, def time.Duration) time.Duration {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a non-negative Go duration such as 30s or 10m", name, v))
			return def
		}
		return d
	}
	envBool := func(name string, def bool) bool {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
			return def
		}
		return b
	}
	envString := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	verbosity := 0
	if v := os.Getenv("ENTRYPOINT_VERBOSITY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("ENTRYPOINT_VERBOSITY=%q: want a non-negative integer", v))
		}
		verbosity = n
	}
	fs.StringVar(&s.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config, else $KUBECONFIG or ~/.kube/config")
	fs.DurationVar(&s.timeout, "timeout", envDuration(spec.EnvTimeout, 0), "give up waiting after this long, exit 3 (0: never) [$"+spec.EnvTimeout+"]")
	fs.DurationVar(&s.optionalAfter, "optional-after", envDuration(spec.EnvOptionalAfter, 0), "start the application after this long even if dependencies still block, with a Warning Event naming them (0: never) [$"+spec.EnvOptionalAfter+"]")
	fs.DurationVar(&s.pollInterval, "poll-interval", envDuration("ENTRYPOINT_POLL_INTERVAL", kube.DefaultPollInterval), "poll interval where RBAC forbids watch; up to 1.5 times it while nothing changes [$ENTRYPOINT_POLL_INTERVAL]")
	fs.DurationVar(&s.reportInterval, "report-interval", envDuration("ENTRYPOINT_REPORT_INTERVAL", resolve.DefaultReportInterval), "how often to log what still blocks [$ENTRYPOINT_REPORT_INTERVAL]")
	fs.BoolVar(&s.failFast, "fail-fast", envBool("ENTRYPOINT_FAIL_FAST", true), "exit 4 as soon as a dependency fails terminally, e.g. a Job failed (the default; false is --wait-for-failed-jobs) [$ENTRYPOINT_FAIL_FAST]")
	fs.BoolVar(&s.waitForFailed, "wait-for-failed-jobs", envBool(spec.EnvWaitForFailedJobs, false), "keep waiting on a failed Job in case it is re-run, instead of exiting 4 [$"+spec.EnvWaitForFailedJobs+"]")
	fs.StringVar(&s.logFormat, "log-format", envString("ENTRYPOINT_LOG_FORMAT", "json"), "json or console [$ENTRYPOINT_LOG_FORMAT]")
	fs.IntVar(&s.verbosity, "v", verbosity, "log verbosity; 1 adds retries and watch restarts [$ENTRYPOINT_VERBOSITY]")
	fs.StringVar(&s.templateDir, "template-dir", envString("ENTRYPOINT_TEMPLATE_DIR", local.DefaultTemplateDir), "where DEPENDENCY_CONFIG templates live, as <dir>/<name>/<name> [$ENTRYPOINT_TEMPLATE_DIR]")
	return fs, errors.Join(errs...)
}

func newLogger(format string, verbosity int, out io.Writer) (logr.Logger, func(), error) {
	var enc zapcore.Encoder
	switch format {
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.RFC3339TimeEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return logr.Discard(), func() {}, fmt.Errorf("--log-format %q: want json or console", format)
	}
	ws := zapcore.Lock(zapcore.AddSync(out))
	core := zapcore.NewCore(enc, ws, zap.NewAtomicLevelAt(zapcore.Level(-verbosity)))
	z := zap.New(core)
	return zapr.NewLogger(z), func() { _ = z.Sync() }, nil
}

// restConfig: an explicit --kubeconfig wins; else the in-cluster config; else
// $KUBECONFIG or ~/.kube/config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes client configuration (not in a cluster, and no usable kubeconfig): %w", err)
	}
	cfg.UserAgent = "kubernetes-entrypoint/" + version
	return cfg, nil
}

func install(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: kubernetes-entrypoint install DIR")
		return exitConfig
	}
	dest, err := launch.Install(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "kubernetes-entrypoint install:", err)
		return exitInternal
	}
	fmt.Fprintln(stdout, "installed", dest)
	return exitOK
}
