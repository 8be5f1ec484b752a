package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Runner runs the controller in a manager of its own, so that losing the leader
// election (an API server unreachable for longer than the Lease's renew deadline)
// stops only the controller, never the webhook serving in the same process: it
// campaigns again, and a new leader resumes from the pods' state in the API.
type Runner struct {
	Config *rest.Config
	// LeaderElect: campaign for LeaseName in Namespace before running.
	LeaderElect bool
	Namespace   string
	// Lease timings of the election; zero: controller-runtime's (15 s, 10 s,
	// 2 s). A shorter LeaseDuration hands over sooner after a leader dies, at
	// the price of more Lease writes.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Options of the controller; Options.Dynamic is made from Config when nil.
	Options Options
	// Retry is the pause before campaigning again; 0 means 2 s.
	Retry time.Duration
	// Cache is the process's cache, started by its own manager, for the
	// controller to read and watch through (sharedCache): one watch per kind
	// in the process. It must hold the pods as CacheByObject says. nil: the
	// controller's manager has a cache of its own.
	Cache cache.Cache
}

// NeedLeaderElection is false: the Runner campaigns by itself, not through the
// manager it is added to (which serves the webhook on every replica).
func (r *Runner) NeedLeaderElection() bool { return false }

// Start runs the controller until ctx ends, again after every lost election.
func (r *Runner) Start(ctx context.Context) error {
	log := r.Options.Log
	retry := r.Retry
	if retry <= 0 {
		retry = 2 * time.Second
	}
	for {
		err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Error(err, "the dependency controller stopped; campaigning again", "after", retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

func (r *Runner) runOnce(ctx context.Context) error {
	mgr, err := ctrl.NewManager(r.Config, ctrl.Options{
		Logger:                        r.Options.Log,
		Metrics:                       metricsserver.Options{BindAddress: "0"}, // the webhook's server serves the registry
		HealthProbeBindAddress:        "0",
		Cache:                         cache.Options{ByObject: CacheByObject()},
		LeaderElection:                r.LeaderElect,
		LeaderElectionID:              LeaseName,
		LeaderElectionNamespace:       r.Namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 durationOrNil(r.LeaseDuration),
		RenewDeadline:                 durationOrNil(r.RenewDeadline),
		RetryPeriod:                   durationOrNil(r.RetryPeriod),
		// The same controller is set up again after a lost election.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		NewCache:   r.newCache(),
	})
	if err != nil {
		return fmt.Errorf("creating the controller's manager: %w", err)
	}
	if _, err := SetupWithManager(mgr, r.Options); err != nil {
		return err
	}
	err = mgr.Start(ctx)
	if err == nil && ctx.Err() == nil {
		err = errors.New("the controller's manager ended")
	}
	return err
}

// newCache is the manager's NewCache: nil (its own) without a shared cache.
func (r *Runner) newCache() cache.NewCacheFunc {
	if r.Cache == nil {
		return nil
	}
	return func(*rest.Config, cache.Options) (cache.Cache, error) { return newSharedCache(r.Cache), nil }
}

// durationOrNil is d for a manager option, nil (its default) when d is zero.
func durationOrNil(d time.Duration) *time.Duration {
	if d <= 0 {
		return nil
	}
	return &d
}
