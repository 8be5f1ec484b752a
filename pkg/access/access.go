// Package access decides, with SubjectAccessReviews, whether a pod's
// ServiceAccount may read what one of its dependencies names. The dependency
// controller reads with cluster-wide rights on behalf of whoever creates a pod;
// it judges a dependency outside the pod's namespace only when the pod itself
// could read it, so that it never answers for the pod what the pod may not
// know (a confused deputy). The webhook asks the same at admission, to warn.
package access

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/lru"
)

// Request is one read a pod's ServiceAccount would make: Verb (get for an
// object by name, list for objects by labels) on Resource in Namespace ("" for
// a cluster-scoped resource), of the object Name when Verb is get.
type Request struct {
	// ServiceAccount is the pod's: its namespace and name.
	PodNamespace   string
	ServiceAccount string

	Verb      string
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
}

// Needed tells whether the request needs a review: objects of the pod's own
// namespace do not (whoever may create pods there may already mount its
// ConfigMaps and Secrets); other namespaces and cluster-scoped objects do.
func (r Request) Needed() bool { return r.Namespace != r.PodNamespace }

// User is the ServiceAccount's user name, as the API server authenticates it.
func (r Request) User() string {
	return "system:serviceaccount:" + r.PodNamespace + ":" + r.ServiceAccount
}

// resourceName is "configmaps" or "jobs.batch", as RBAC and kubectl name it.
func (r Request) resourceName() string {
	if r.Resource.Group == "" {
		return r.Resource.Resource
	}
	return r.Resource.Resource + "." + r.Resource.Group
}

// Denied says what RBAC is missing and how to grant it, never anything of the
// object: "serviceaccount tenant/app may not get configmaps "db" in other:
// grant it with a Role in other and a RoleBinding to the ServiceAccount".
func (r Request) Denied() string {
	var what strings.Builder
	fmt.Fprintf(&what, "serviceaccount %s/%s may not %s %s", r.PodNamespace, r.ServiceAccount, r.Verb, r.resourceName())
	if r.Name != "" {
		fmt.Fprintf(&what, " %q", r.Name)
	}
	if r.Namespace == "" {
		fmt.Fprintf(&what, " (cluster-scoped): grant it %s on %s with a ClusterRole and a ClusterRoleBinding to the ServiceAccount", r.Verb, r.resourceName())
	} else {
		fmt.Fprintf(&what, " in %s: grant it %s on %s with a Role in %s and a RoleBinding to the ServiceAccount", r.Namespace, r.Verb, r.resourceName(), r.Namespace)
	}
	return what.String()
}

func (r Request) review() *authorizationv1.SubjectAccessReview {
	return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   r.User(),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + r.PodNamespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: r.Namespace, Verb: r.Verb, Group: r.Resource.Group, Version: r.Resource.Version,
			Resource: r.Resource.Resource, Name: r.Name,
		},
	}}
}

// Reviewer creates SubjectAccessReviews: the clientset's
// AuthorizationV1().SubjectAccessReviews().
type Reviewer interface {
	Create(ctx context.Context, review *authorizationv1.SubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error)
}

// Defaults of a Checker.
const (
	// DefaultAllowedFor is how long an allowed read is believed: a revoked
	// RoleBinding takes at most this long to count.
	DefaultAllowedFor = 30 * time.Second
	// DefaultDeniedFor is how long a refused read is believed: a new
	// RoleBinding takes at most this long to release a pod.
	DefaultDeniedFor = 5 * time.Second
	// DefaultMaxCached bounds the answers kept; past it the least recently used
	// go first.
	DefaultMaxCached = 10_000
	// reviewTimeout bounds one review.
	reviewTimeout = 5 * time.Second
)

// Checker answers Requests with reviews, cached briefly and bounded. It is
// safe for concurrent use.
type Checker struct {
	reviewer           Reviewer
	allowedFor, denied time.Duration
	now                func() time.Time
	answers            *lru.Cache

	mu       sync.Mutex
	inFlight map[Request]*call
}

type answer struct {
	allowed bool
	until   time.Time
}

type call struct {
	done    chan struct{}
	allowed bool
	err     error
}

// Options of a Checker; zero values take the defaults.
type Options struct {
	AllowedFor, DeniedFor time.Duration
	MaxCached             int
	Now                   func() time.Time
}

// NewChecker returns a Checker that asks reviewer.
func NewChecker(reviewer Reviewer, o Options) *Checker {
	if o.AllowedFor <= 0 {
		o.AllowedFor = DefaultAllowedFor
	}
	if o.DeniedFor <= 0 {
		o.DeniedFor = DefaultDeniedFor
	}
	if o.MaxCached <= 0 {
		o.MaxCached = DefaultMaxCached
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Checker{reviewer: reviewer, allowedFor: o.AllowedFor, denied: o.DeniedFor, now: o.Now,
		answers: lru.New(o.MaxCached), inFlight: map[Request]*call{}}
}

// DeniedFor is how long a refusal is believed: when to ask again.
func (c *Checker) DeniedFor() time.Duration { return c.denied }

// Allowed tells whether the request's ServiceAccount may make the read. A
// request that needs no review is allowed. Concurrent equal requests share one
// review; an error (the API server unreachable) is not cached.
func (c *Checker) Allowed(ctx context.Context, r Request) (bool, error) {
	if !r.Needed() {
		return true, nil
	}
	if v, ok := c.answers.Get(r); ok {
		if a := v.(answer); c.now().Before(a.until) {
			return a.allowed, nil
		}
	}
	c.mu.Lock()
	if cl, ok := c.inFlight[r]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.allowed, cl.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{})}
	c.inFlight[r] = cl
	c.mu.Unlock()

	cl.allowed, cl.err = c.review(ctx, r)
	if cl.err == nil {
		until := c.now().Add(c.denied)
		if cl.allowed {
			until = c.now().Add(c.allowedFor)
		}
		c.answers.Add(r, answer{allowed: cl.allowed, until: until})
	}
	c.mu.Lock()
	delete(c.inFlight, r)
	c.mu.Unlock()
	close(cl.done)
	return cl.allowed, cl.err
}

func (c *Checker) review(ctx context.Context, r Request) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	out, err := c.reviewer.Create(ctx, r.review(), metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("checking whether %s may %s %s: %w", r.User(), r.Verb, r.resourceName(), err)
	}
	return out.Status.Allowed && !out.Status.Denied, nil
}
