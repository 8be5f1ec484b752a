package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// Defaults for HTTP.
const (
	DefaultHTTPInterval       = time.Second
	DefaultHTTPRequestTimeout = 2 * time.Second
)

// drainLimit caps how much of a response body is read before closing it. Reading
// the rest lets the connection be reused for the next poll; the cap keeps a
// misbehaving endpoint that streams forever from holding the check.
const drainLimit = 64 << 10

// maxRedirects bounds the redirects followed within the URL's origin.
const maxRedirects = 5

// HTTP is ready once a GET of URL answers 2xx. Redirects within the URL's origin
// (same scheme, host and port) are followed, at most maxRedirects, and the final
// status is judged. A redirect anywhere else is not followed: the dependency is
// not ready and says where it was sent, since a health check that lands on
// another server (a login page, a cloud metadata address) proves nothing about
// this one and must not be made to reach it.
type HTTP struct {
	// URL is an absolute http:// or https:// URL.
	URL string
	// Interval is the time between requests; zero means DefaultHTTPInterval.
	Interval time.Duration
	// RequestTimeout bounds one request, redirects included; zero means
	// DefaultHTTPRequestTimeout.
	RequestTimeout time.Duration
	// Client sends the requests; nil means a client with http.DefaultTransport.
	// Its redirect policy is replaced by the one above. Tests inject httptest's
	// client here to trust its certificate.
	Client *http.Client
}

// NewHTTP returns an HTTP dependency on rawURL with default timings and client.
func NewHTTP(rawURL string) *HTTP {
	return &HTTP{URL: rawURL}
}

// String names the dependency: "http https://x/healthz". A password in the URL
// is masked, since this text ends up in logs and Events.
func (h *HTTP) String() string {
	if u, err := url.Parse(h.URL); err == nil {
		return "http " + u.Redacted()
	}
	return "http " + h.URL
}

// Wait requests URL until it answers 2xx or ctx ends. A URL that is not an
// absolute http or https URL is a terminal error.
func (h *HTTP) Wait(ctx context.Context, report func(resolve.Status)) error {
	u, err := url.Parse(h.URL)
	if err != nil {
		return resolve.Terminal("%s: invalid URL: %v", h, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return resolve.Terminal("%s: URL scheme must be http or https, not %q", h, u.Scheme)
	}
	if u.Host == "" {
		return resolve.Terminal("%s: URL has no host", h)
	}

	client := &http.Client{}
	if h.Client != nil {
		c := *h.Client // a copy: the caller's client keeps its own policy
		client = &c
	}
	client.CheckRedirect = redirectPolicy(u)
	timeout := orDefault(h.RequestTimeout, DefaultHTTPRequestTimeout)
	return pollUntilReady(ctx, orDefault(h.Interval, DefaultHTTPInterval), report,
		func(ctx context.Context) (resolve.Status, error) {
			return h.get(ctx, client, u.String(), timeout), nil
		})
}

// get sends one GET and judges the final response.
func (h *HTTP) get(ctx context.Context, client *http.Client, target string, timeout time.Duration) resolve.Status {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return resolve.Status{Reason: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		if reason, ok := redirectReason(err); ok {
			return resolve.Status{Reason: reason}
		}
		return resolve.Status{Reason: shortNetError(err, timeout)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resolve.Status{Reason: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	return resolve.Status{Ready: true}
}

// offOrigin is the error a redirect out of the URL's origin ends the request with.
type offOrigin struct{ to *url.URL }

func (e *offOrigin) Error() string {
	// Only the origin: the path and query of the target may carry tokens.
	return fmt.Sprintf("redirected to %s://%s, another host; not followed", e.to.Scheme, e.to.Host)
}

var errTooManyRedirects = fmt.Errorf("more than %d redirects", maxRedirects)

// redirectPolicy follows redirects that stay within origin's scheme, host and
// port, at most maxRedirects of them.
func redirectPolicy(origin *url.URL) func(*http.Request, []*http.Request) error {
	want := originOf(origin)
	return func(req *http.Request, via []*http.Request) error {
		if originOf(req.URL) != want {
			return &offOrigin{to: req.URL}
		}
		if len(via) > maxRedirects {
			return errTooManyRedirects
		}
		return nil
	}
}

// originOf is scheme://host:port with the scheme's default port filled in and the
// host lower-cased, so that http://X and http://x:80 are the same origin.
func originOf(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// redirectReason says why a request ended at a redirect, if it did.
func redirectReason(err error) (string, bool) {
	var off *offOrigin
	switch {
	case errors.As(err, &off):
		return off.Error(), true
	case errors.Is(err, errTooManyRedirects):
		return errTooManyRedirects.Error(), true
	}
	return "", false
}
