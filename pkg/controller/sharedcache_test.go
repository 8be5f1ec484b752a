package controller

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// A Runner on the process's cache: each term of the controller watches through
// it and works, and a term that ends leaves no event handler behind on the
// informers, which live on with the process.
func TestRunnerOnSharedCache(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared, err := cache.New(env.Config, cache.Options{ByObject: CacheByObject()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = shared.Start(ctx) }()
	if !shared.WaitForCacheSync(ctx) {
		t.Fatal("the shared cache did not sync")
	}
	podInformer, err := shared.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}

	// A handler added through a sharedCache is removed when its Start ends;
	// one added to the informer directly stays.
	sc := newSharedCache(shared)
	scCtx, scStop := context.WithCancel(ctx)
	scDone := make(chan error, 1)
	go func() { scDone <- sc.Start(scCtx) }()
	lent, err := sc.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	var throughShared, direct atomic.Int64
	// Only this test's pods count: the informer sees every namespace's.
	counter := func(n *atomic.Int64) toolscache.ResourceEventHandlerFuncs {
		return toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok && p.Namespace == ns {
				n.Add(1)
			}
		}}
	}
	if _, err := lent.AddEventHandler(counter(&throughShared)); err != nil {
		t.Fatal(err)
	}
	if _, err := podInformer.AddEventHandler(counter(&direct)); err != nil {
		t.Fatal(err)
	}
	createPod(t, managedPod(t, ns, "first", map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
	eventually(t, "both handlers see the first pod", func() bool { return throughShared.Load() >= 1 && direct.Load() >= 1 })
	scStop()
	if err := <-scDone; err != nil {
		t.Fatal(err)
	}
	if err := sc.RemoveInformer(ctx, &corev1.Pod{}); err == nil {
		t.Error("the controller's manager removed an informer of the shared cache")
	}
	seen, seenDirect := throughShared.Load(), direct.Load()
	createPod(t, managedPod(t, ns, "second", map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
	eventually(t, "the direct handler sees the second pod", func() bool { return direct.Load() > seenDirect })
	if n := throughShared.Load(); n != seen {
		t.Errorf("the handler of a stopped sharedCache still ran: %d events, %d when it stopped", n, seen)
	}

	// Two terms of a Runner on the shared cache: the second releases.
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	term := func() (stop func()) {
		r := &Runner{Config: env.Config, Namespace: ns, Cache: shared,
			Options: Options{Dependencies: testDependencies, Dynamic: dyn, Log: testLogger(t)}}
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Start(rctx) }()
		return func() {
			rcancel()
			if err := <-done; err != nil {
				t.Errorf("runner: %v", err)
			}
		}
	}
	stop := term()
	waitPod(t, ns, "first", "condition Waiting (first term)", hasCondition(corev1.ConditionFalse, ReasonWaiting, "db"))
	stop()
	stop = term()
	defer stop()
	readySlice(t, ns, "db")
	waitPod(t, ns, "second", "released by the second term", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
