package imageconfig

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// errTimedOut is the cause of a lookup's context when its own timeout fires,
// as opposed to the caller's context ending.
var errTimedOut = errors.New("lookup timed out")

// timeoutError reports a lookup that ran out of time. It matches
// context.DeadlineExceeded with errors.Is.
type timeoutError struct {
	after time.Duration
	stage string
}

func (e *timeoutError) Error() string {
	if e.stage == "" {
		return fmt.Sprintf("timed out after %s", e.after)
	}
	return fmt.Sprintf("timed out after %s while %s", e.after, e.stage)
}

func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

const annotationHint = "set annotation entrypoint.io/command.<container> to the container's argv"

// fail builds the error returned for image: it names the image, the platform
// and the cause, and says what the user can do about it. stage says what the
// lookup was doing; secretsErr is why the pod's pull secrets could not be
// read, if they could not.
func (l *Lookup) fail(image, stage string, cause, secretsErr error) error {
	if errors.Is(cause, errTimedOut) {
		cause = &timeoutError{after: l.timeout, stage: stage}
	}
	hint := annotationHint
	switch {
	case secretsErr != nil:
		hint = fmt.Sprintf("the pod's pull secrets could not be read (%v); fix that, or %s", secretsErr, hint)
	case isAuth(cause):
		hint = "add the pull secret to the pod or its ServiceAccount, or " + hint
	case errors.Is(cause, context.DeadlineExceeded):
		hint = "check that the registry is reachable from the webhook, or " + hint
	case isNotFound(cause):
		hint = "check the image name and tag, or " + hint
	}
	return &lookupError{image: image, platform: l.platform.String(), cause: cause, hint: hint}
}

// lookupError is the error of a failed lookup. It unwraps to its cause.
type lookupError struct {
	image, platform string
	cause           error
	hint            string
}

func (e *lookupError) Error() string {
	return fmt.Sprintf("reading the config of image %q (platform %s): %v; %s", e.image, e.platform, e.cause, e.hint)
}

func (e *lookupError) Unwrap() error { return e.cause }

func isAuth(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// httpsOnly refuses plain-HTTP requests to hosts that are not listed as
// insecure registries. go-containerregistry falls back to HTTP for loopback,
// *.local and private (RFC 1918) registries; the kubelet's runtime does not
// without configuration, and credentials must not leak in clear text.
type httpsOnly struct {
	next     http.RoundTripper
	insecure map[string]bool
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.insecure[req.URL.Host] {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to %s (not an insecure registry of the webhook)", req.URL.Host)
	}
	return t.next.RoundTrip(req)
}
