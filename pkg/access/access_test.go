package access

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeReviewer allows what allow says and counts the reviews.
type fakeReviewer struct {
	allow func(*authorizationv1.SubjectAccessReview) bool
	err   error
	calls atomic.Int32
	delay time.Duration
}

func (f *fakeReviewer) Create(_ context.Context, r *authorizationv1.SubjectAccessReview, _ metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	if f.err != nil {
		return nil, f.err
	}
	r.Status.Allowed = f.allow(r)
	return r, nil
}

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func request(ns string) Request {
	return Request{PodNamespace: "tenant", ServiceAccount: "app", Verb: "get", Resource: configMaps, Namespace: ns, Name: "db"}
}

func TestCheckerCachesAndExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	allowed := false
	f := &fakeReviewer{allow: func(r *authorizationv1.SubjectAccessReview) bool {
		if r.Spec.User != "system:serviceaccount:tenant:app" || r.Spec.ResourceAttributes.Namespace != "other" ||
			r.Spec.ResourceAttributes.Name != "db" || r.Spec.ResourceAttributes.Verb != "get" {
			t.Errorf("review of %+v", r.Spec)
		}
		return allowed
	}}
	c := NewChecker(f, Options{AllowedFor: time.Minute, DeniedFor: 5 * time.Second, Now: func() time.Time { return now }})
	ctx := context.Background()

	steps := []struct {
		name    string
		advance time.Duration
		allow   bool
		want    bool
		calls   int32
	}{
		{"first: reviewed, refused", 0, false, false, 1},
		{"refusal believed for a while", 4 * time.Second, true, false, 1},
		{"then asked again", 2 * time.Second, true, true, 2},
		{"allowance believed longer", 50 * time.Second, false, true, 2},
		{"until it expires too", 20 * time.Second, false, false, 3},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		allowed = s.allow
		got, err := c.Allowed(ctx, request("other"))
		if err != nil || got != s.want || f.calls.Load() != s.calls {
			t.Fatalf("%s: Allowed = %v, %v after %d reviews; want %v after %d", s.name, got, err, f.calls.Load(), s.want, s.calls)
		}
	}
}

func TestCheckerOwnNamespaceNeedsNoReview(t *testing.T) {
	f := &fakeReviewer{allow: func(*authorizationv1.SubjectAccessReview) bool { return false }}
	c := NewChecker(f, Options{})
	if ok, err := c.Allowed(context.Background(), request("tenant")); !ok || err != nil || f.calls.Load() != 0 {
		t.Fatalf("own namespace: Allowed = %v, %v with %d reviews; want true without review", ok, err, f.calls.Load())
	}
	cluster := request("")
	if !cluster.Needed() {
		t.Fatal("a cluster-scoped read needs a review")
	}
}

func TestCheckerErrorsAreNotCached(t *testing.T) {
	f := &fakeReviewer{err: errors.New("connection refused")}
	c := NewChecker(f, Options{})
	for i := 0; i < 2; i++ {
		if _, err := c.Allowed(context.Background(), request("other")); err == nil || !strings.Contains(err.Error(), "system:serviceaccount:tenant:app may get configmaps") {
			t.Fatalf("Allowed = %v, want the review's error with context", err)
		}
	}
	if f.calls.Load() != 2 {
		t.Fatalf("%d reviews, want 2: an error is not an answer", f.calls.Load())
	}
}

func TestCheckerSharesConcurrentReviews(t *testing.T) {
	f := &fakeReviewer{allow: func(*authorizationv1.SubjectAccessReview) bool { return true }, delay: 50 * time.Millisecond}
	c := NewChecker(f, Options{})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := c.Allowed(context.Background(), request("other")); !ok || err != nil {
				t.Errorf("Allowed = %v, %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d reviews for 20 concurrent equal requests, want 1", n)
	}
}

func TestCheckerBounded(t *testing.T) {
	f := &fakeReviewer{allow: func(*authorizationv1.SubjectAccessReview) bool { return true }}
	c := NewChecker(f, Options{MaxCached: 10})
	for i := 0; i < 100; i++ {
		r := request("other")
		r.Name = strings.Repeat("x", i+1)
		if _, err := c.Allowed(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.answers.Len(); n != 10 {
		t.Fatalf("%d answers kept, want the bound 10", n)
	}
}

func TestDenied(t *testing.T) {
	tests := []struct {
		r    Request
		want string
	}{
		{request("other"), `serviceaccount tenant/app may not get configmaps "db" in other: grant it get on configmaps with a Role in other and a RoleBinding to the ServiceAccount`},
		{Request{PodNamespace: "t", ServiceAccount: "default", Verb: "list", Resource: schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}},
			`serviceaccount t/default may not list apiservices.apiregistration.k8s.io (cluster-scoped): grant it list on apiservices.apiregistration.k8s.io with a ClusterRole and a ClusterRoleBinding to the ServiceAccount`},
	}
	for _, tt := range tests {
		if got := tt.r.Denied(); got != tt.want {
			t.Errorf("Denied() =\n%s\nwant\n%s", got, tt.want)
		}
	}
}
