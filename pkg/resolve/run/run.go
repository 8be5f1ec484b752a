// Package run is one resolver run: the parsed environment contract turned into
// dependencies, the wait, and the exec of the application.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/launch"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/local"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// ErrConfig marks a run that cannot start because of its configuration.
var ErrConfig = errors.New("bad configuration")

// Options is everything one run needs besides the Spec.
type Options struct {
	Log logr.Logger
	// Argv is the exact application argv given after "--"; it wins over COMMAND.
	Argv []string
	// Timeout bounds the whole wait; zero means none.
	Timeout        time.Duration
	PollInterval   time.Duration
	ReportInterval time.Duration
	// OptionalAfter, when positive, starts the application after this long even
	// with dependencies still blocking (a Warning Event names them).
	OptionalAfter time.Duration
	// WaitForFailedJobs keeps waiting on a failed Job instead of failing the run.
	WaitForFailedJobs bool
	// TemplateDir holds the config templates (local.DefaultTemplateDir when empty).
	TemplateDir string
	// RESTConfig returns the API server's client config; called only when a
	// dependency needs the API.
	RESTConfig func() (*rest.Config, error)
	// Stdout receives the output of builtins (the echo of legacy COMMANDs).
	Stdout io.Writer
	// Exec replaces the process with argv; launch.Exec when nil (tests swap it).
	Exec func(argv []string, stdout io.Writer) error
}

// Run waits for every dependency of s, then execs the application. It returns nil
// when there is nothing to exec (init-container mode) or a builtin ran; on success
// with a command it does not return.
func Run(ctx context.Context, s *spec.Spec, o Options) error {
	argv := o.Argv
	if argv == nil {
		argv = s.Command
	}
	deps, err := dependencies(s, o)
	if err != nil {
		return err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	var recorder resolve.Recorder
	if r := deps.events; r != nil {
		recorder = r
	}
	if err := resolve.Wait(ctx, deps.list, resolve.Options{Log: o.Log, ReportInterval: o.ReportInterval, Recorder: recorder, OptionalAfter: o.OptionalAfter}); err != nil {
		return err
	}
	if len(argv) == 0 {
		o.Log.Info("no command to run; exiting")
		return nil
	}
	o.Log.Info("starting application", "argv", argv)
	exec := o.Exec
	if exec == nil {
		exec = launch.Exec
	}
	return exec(argv, o.Stdout)
}

type plan struct {
	list   []resolve.Dependency
	events *kube.EventRecorder
}

// dependencies builds one Dependency per item of the spec, in the contract's order.
func dependencies(s *spec.Spec, o Options) (plan, error) {
	var p plan
	if needsAPI(s) {
		if o.RESTConfig == nil {
			return p, fmt.Errorf("%w: dependencies need the Kubernetes API but no client config is available", ErrConfig)
		}
		cfg, err := o.RESTConfig()
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		c, err := kube.NewClient(cfg, kube.Options{
			Log: o.Log, PollInterval: o.PollInterval, WaitForFailedJobs: o.WaitForFailedJobs,
			Namespace: s.Namespace, PodName: s.PodName, NodeName: s.NodeName,
		})
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		p.events = c.Events()
		for _, it := range kube.Items(s, kube.LookupOptions{}) {
			if d := it.Waiter(c); d != nil {
				p.list = append(p.list, d)
			}
		}
	}
	for _, k := range spec.Kinds() {
		if waiters, ok := localWaiters[k.Env]; ok {
			p.list = append(p.list, waiters(s, o)...)
		}
	}
	return p, nil
}

// localWaiters are the resolver's dependencies of the kinds it checks in the
// pod, not through the API (kube.InPod and kube.Rendered items), by kind.
var localWaiters = map[string]func(s *spec.Spec, o Options) []resolve.Dependency{
	spec.EnvConfigs: func(s *spec.Spec, o Options) []resolve.Dependency {
		var list []resolve.Dependency
		for _, dest := range s.Configs {
			cfg := local.NewConfig(dest, s.InterfaceName)
			cfg.PodIP = s.PodIP
			if o.TemplateDir != "" {
				cfg.TemplateDir = o.TemplateDir
			}
			list = append(list, cfg)
		}
		return list
	},
	spec.EnvSockets: func(s *spec.Spec, _ Options) []resolve.Dependency {
		return each(s.Sockets, func(path string) resolve.Dependency { return local.NewSocket(path) })
	},
	spec.EnvTCP: func(s *spec.Spec, _ Options) []resolve.Dependency {
		return each(s.TCP, func(addr string) resolve.Dependency { return local.NewTCP(addr) })
	},
	spec.EnvHTTP: func(s *spec.Spec, _ Options) []resolve.Dependency {
		return each(s.HTTP, func(u string) resolve.Dependency { return local.NewHTTP(u) })
	},
}

func each(items []string, dep func(string) resolve.Dependency) []resolve.Dependency {
	var list []resolve.Dependency
	for _, it := range items {
		list = append(list, dep(it))
	}
	return list
}

// needsAPI tells whether s has a dependency the resolver reads from the API.
func needsAPI(s *spec.Spec) bool {
	for _, k := range spec.Kinds() {
		if k.API && k.Count(s) > 0 {
			return true
		}
	}
	return false
}
