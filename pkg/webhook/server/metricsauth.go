package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// How long review results are reused, as controller-runtime's filters do: a
// token's identity for a minute, an allow for five, a deny for thirty seconds.
const (
	authnTTL      = time.Minute
	allowTTL      = 5 * time.Minute
	denyTTL       = 30 * time.Second
	reviewsKept   = 1024 // entries of each cache; both are emptied when full
	reviewTimeout = 10 * time.Second
)

// metricsAuth is a metrics FilterProvider: the caller's bearer token is
// authenticated with a TokenReview and `get` on the request's path authorized
// with a SubjectAccessReview, like controller-runtime's
// filters.WithAuthenticationAndAuthorization (the kubebuilder scaffold), whose
// k8s.io/apiserver dependency would double the webhook's binary (37 to 70 MB).
// No token: 401. Not allowed: 403.
func metricsAuth(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("a client for the metrics endpoint's token and access reviews: %w", err)
	}
	r := &reviewer{client: cs, users: map[[32]byte]reviewed[*authenticationv1.UserInfo]{}, decisions: map[string]reviewed[bool]{}}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			if !ok || token == "" {
				http.Error(w, "Unauthorized: send a Kubernetes bearer token", http.StatusUnauthorized)
				return
			}
			ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
			defer cancel()
			user, err := r.authenticate(ctx, token)
			if err != nil {
				log.Error(err, "authenticating a metrics request")
				http.Error(w, "Authentication failed", http.StatusInternalServerError)
				return
			}
			if user == nil {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			verb := strings.ToLower(req.Method)
			allowed, err := r.authorize(ctx, user, verb, req.URL.Path)
			if err != nil {
				log.Error(err, "authorizing a metrics request", "user", user.Username)
				http.Error(w, "Authorization failed", http.StatusInternalServerError)
				return
			}
			if !allowed {
				log.V(1).Info("metrics request refused", "user", user.Username, "verb", verb, "path", req.URL.Path)
				http.Error(w, fmt.Sprintf("Forbidden: %s may not %s %s", user.Username, verb, req.URL.Path), http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, req)
		}), nil
	}, nil
}

type reviewed[T any] struct {
	value   T
	expires time.Time
}

// reviewer asks the API server and remembers its answers for a while.
type reviewer struct {
	client kubernetes.Interface

	mu        sync.Mutex
	users     map[[32]byte]reviewed[*authenticationv1.UserInfo] // by the token's hash; nil: not authenticated
	decisions map[string]reviewed[bool]
}

func (r *reviewer) authenticate(ctx context.Context, token string) (*authenticationv1.UserInfo, error) {
	key := sha256.Sum256([]byte(token))
	r.mu.Lock()
	if c, ok := r.users[key]; ok && time.Now().Before(c.expires) {
		r.mu.Unlock()
		return c.value, nil
	}
	r.mu.Unlock()
	review, err := r.client.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating a TokenReview: %w", err)
	}
	var user *authenticationv1.UserInfo
	if review.Status.Authenticated {
		user = &review.Status.User
	}
	r.mu.Lock()
	if len(r.users) >= reviewsKept {
		clear(r.users)
	}
	r.users[key] = reviewed[*authenticationv1.UserInfo]{user, time.Now().Add(authnTTL)}
	r.mu.Unlock()
	return user, nil
}

func (r *reviewer) authorize(ctx context.Context, user *authenticationv1.UserInfo, verb, path string) (bool, error) {
	key := fmt.Sprintf("%q %q %q %q %s", user.Username, user.UID, user.Groups, verb, path)
	r.mu.Lock()
	if c, ok := r.decisions[key]; ok && time.Now().Before(c.expires) {
		r.mu.Unlock()
		return c.value, nil
	}
	r.mu.Unlock()
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	review, err := r.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: verb, Path: path},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("creating a SubjectAccessReview: %w", err)
	}
	ttl := denyTTL
	if review.Status.Allowed {
		ttl = allowTTL
	}
	r.mu.Lock()
	if len(r.decisions) >= reviewsKept {
		clear(r.decisions)
	}
	r.decisions[key] = reviewed[bool]{review.Status.Allowed, time.Now().Add(ttl)}
	r.mu.Unlock()
	return review.Status.Allowed, nil
}
