package imageconfig

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Bounds of what an error repeats of its input: the image reference, a
// namespace, a registry's answer, any other cause. A denial quoting them all
// stays under 2 KiB.
const (
	maxQuotedImage   = 256
	maxQuotedName    = 64
	maxRegistryText  = 200
	maxCauseText     = 400
	maxSecretErrText = 250
)

// errTimedOut is the cause of a lookup's context when its own timeout fires,
// as opposed to the caller's context ending.
var errTimedOut = errors.New("lookup timed out")

// timeoutError reports a lookup that ran out of time. It matches
// context.DeadlineExceeded with errors.Is.
type timeoutError struct {
	after time.Duration
	stage string
	// waited is how much of after went to waiting for one of slots.
	waited time.Duration
	slots  int
}

func (e *timeoutError) Error() string {
	s := fmt.Sprintf("timed out after %s", e.after)
	if e.stage != "" {
		s += " while " + e.stage
	}
	if e.busy() {
		s += fmt.Sprintf(", %s of it waiting for a free slot: too many registry lookups in flight (%d)", e.waited.Round(time.Millisecond), e.slots)
	}
	return s
}

// busy says whether waiting for a slot took a good part of the time.
func (e *timeoutError) busy() bool { return e.waited >= e.after/4 }

func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// busyError reports a lookup that found no free slot in time. It matches
// context.DeadlineExceeded with errors.Is.
type busyError struct {
	limit int
	after time.Duration // the lookup's own timeout; 0 when the caller gave up
	cause error
}

func (e *busyError) Error() string {
	if e.after > 0 {
		return fmt.Sprintf("too many registry lookups in flight (%d): none finished within the lookup's %s", e.limit, e.after)
	}
	return fmt.Sprintf("too many registry lookups in flight (%d): gave up waiting for one to finish: %v", e.limit, e.cause)
}

func (e *busyError) Is(target error) bool { return target == context.DeadlineExceeded }

const annotationHint = "set annotation entrypoint.io/command.<container> to the container's argv"

// fail builds the error returned for ref: it names the image, the platform
// and the cause, and says what the user can do about it. stage says what the
// lookup was doing; secretsErr is why the pod's pull secrets could not be
// read, if they could not. What it quotes of its inputs is bounded.
func (l *Lookup) fail(ref inject.ImageRef, stage string, cause, secretsErr error) error {
	var busy *busyError
	if !errors.As(cause, &busy) && errors.Is(cause, errTimedOut) {
		cause = &timeoutError{after: l.timeout, stage: stage}
	}
	var (
		timeout   *timeoutError
		big       *tooLargeError
		forbidden *forbiddenAddrError
	)
	hint := annotationHint
	switch {
	case busy != nil, errors.As(cause, &timeout) && timeout.busy():
		hint = "raise --registry-max-in-flight, or " + annotationHint
	case errors.As(cause, &big):
		if f := big.flag(); f != "" {
			hint = "raise " + f + ", or " + annotationHint
		}
	case errors.As(cause, &forbidden):
	case untrusted(cause):
		hint = "give the webhook the registry's CA (--registry-ca-file), or " + annotationHint
	case errors.Is(cause, context.DeadlineExceeded) && stage == stageSecrets:
		hint = "check that the API server answers the webhook, or " + annotationHint
	case errors.Is(cause, context.DeadlineExceeded):
		hint = "check that the registry is reachable from the webhook (--registry-timeout), or " + annotationHint
	case secretsErr != nil && apierrors.IsForbidden(secretsErr):
		ns := quote(cmp.Or(ref.Namespace, "default"), maxQuotedName)
		hint = fmt.Sprintf("the pod's pull secrets could not be read: the webhook may not read Secrets and ServiceAccounts in namespace %s (%s): "+
			"add %s to the chart value registryLookup.pullSecretNamespaces (a RoleBinding granting get on secrets and serviceaccounts there), or %s",
			ns, safetext.Truncate(secretsErr.Error(), maxSecretErrText), ns, annotationHint)
	case secretsErr != nil:
		hint = fmt.Sprintf("the pod's pull secrets could not be read (%s); fix that, or %s", safetext.Truncate(secretsErr.Error(), maxSecretErrText), annotationHint)
	case isAuth(cause):
		hint = "add the pull secret to the pod or its ServiceAccount, or " + annotationHint
	case isNotFound(cause):
		hint = "check the image name and tag, or " + annotationHint
	}
	return &lookupError{image: ref.Image, platform: l.platform.String(), cause: cause, hint: hint}
}

// lookupError is the error of a failed lookup. It unwraps to its cause but
// describes it in its own bounded words.
type lookupError struct {
	image, platform string
	cause           error
	hint            string
}

func (e *lookupError) Error() string {
	return fmt.Sprintf("reading the config of image %s (platform %s): %s; %s", quote(e.image, maxQuotedImage), e.platform, describe(e.cause), e.hint)
}

func (e *lookupError) Unwrap() error { return e.cause }

// describe says what went wrong without repeating what a registry or a URL
// may hold in bulk.
func describe(err error) string {
	var (
		big       *tooLargeError
		forbidden *forbiddenAddrError
		busy      *busyError
		timeout   *timeoutError
		cve       *tls.CertificateVerificationError
		terr      *transport.Error
		uerr      *url.Error
	)
	switch {
	case errors.As(err, &big):
		return big.Error()
	case errors.As(err, &forbidden):
		return forbidden.Error()
	case errors.As(err, &busy):
		return safetext.Truncate(busy.Error(), maxCauseText)
	case errors.As(err, &timeout):
		return timeout.Error()
	case errors.As(err, &cve):
		return safetext.Truncate("the registry's TLS certificate is not trusted: "+cve.Err.Error(), maxCauseText)
	case errors.As(err, &terr):
		return registryAnswer(terr)
	case errors.As(err, &uerr) && err == error(uerr): //nolint:errorlint // only a url.Error that is the whole error: wrapped, its wrapper says more
		// The URL repeats the image reference, quoted already.
		return safetext.Truncate(uerr.Op+": "+uerr.Err.Error(), maxCauseText)
	}
	return safetext.Truncate(err.Error(), maxCauseText)
}

// registryAnswer is a registry's error answer as its HTTP status and its
// first error code and message, within maxRegistryText bytes; never the body.
func registryAnswer(e *transport.Error) string {
	s := fmt.Sprintf("the registry answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Request != nil && e.Request.Method == http.MethodHead {
		s = "the registry answered HEAD with " + strings.TrimPrefix(s, "the registry answered ")
	}
	if len(e.Errors) > 0 {
		d := e.Errors[0]
		s += ": " + safetext.Truncate(string(d.Code), 40)
		more := ""
		if len(e.Errors) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(e.Errors)-1)
		}
		if d.Message != "" {
			// Whatever room is left goes to the message, quoted.
			room := maxRegistryText - len(s) - len(more) - len(` ""`)
			for room > len("...") {
				q := strconv.Quote(safetext.Truncate(d.Message, room))
				if len(q) <= room+2 {
					s += " " + q
					break
				}
				room -= len(q) - (room + 2)
			}
		}
		s += more
	}
	return safetext.Truncate(s, maxRegistryText)
}

// quote quotes s, cut to limit bytes (on a character boundary) and marked so.
func quote(s string, limit int) string {
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s (%d bytes)", strconv.Quote(safetext.Truncate(s, limit)), len(s))
}

// untrusted says whether err is a registry certificate the webhook does not
// trust (as opposed to one for another name, or expired).
func untrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

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
