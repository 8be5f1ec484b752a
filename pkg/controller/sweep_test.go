package controller

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

// An informer no pod waits for, and none asked for since the idle time, is
// stopped and forgotten (asked for again, it starts anew); one in use, one asked
// for lately, and the Jobs informer (the memory of completed Jobs) stay.
func TestSweepStopsIdleInformers(t *testing.T) {
	now := time.Unix(1000, 0)
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		kube.ClaimsResource: "PersistentVolumeClaimList", kube.ConfigMapsResource: "ConfigMapList", jobsResource: "JobList",
		podsResource: "PodList",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := &kindInformers{client: client, log: logr.Discard(), kinds: map[schema.GroupVersionResource]*kindInformer{},
		now:     func() time.Time { return now },
		changed: func(schema.GroupVersionResource, *unstructured.Unstructured, *unstructured.Unstructured) {},
		synced:  func(schema.GroupVersionResource) {}}
	k.start(ctx)
	claims := k.get(kube.ClaimsResource)
	for _, gvr := range []schema.GroupVersionResource{kube.ConfigMapsResource, jobsResource, podsResource} {
		k.get(gvr)
	}
	now = now.Add(10 * time.Minute)
	k.get(podsResource) // asked for lately

	stopped := k.sweep(map[schema.GroupVersionResource]bool{kube.ConfigMapsResource: true}, 5*time.Minute)
	if len(stopped) != 1 || stopped[0] != kube.ClaimsResource {
		t.Fatalf("stopped %v, want only the claims informer", stopped)
	}
	if k.count() != 3 {
		t.Fatalf("%d informers left, want 3 (configmaps in use, pods asked for lately, jobs)", k.count())
	}
	select {
	case <-time.After(10 * time.Second):
		t.Fatal("the stopped informer still runs")
	case <-waitStopped(claims):
	}
	if again := k.get(kube.ClaimsResource); again == claims || again == nil {
		t.Fatal("asked for again, the claims informer did not start anew")
	}
}

// waitStopped is closed once ki's informer stopped.
func waitStopped(ki *kindInformer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for !ki.informer.IsStopped() {
			time.Sleep(10 * time.Millisecond)
		}
		close(done)
	}()
	return done
}
