package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// HTTP is ready once a GET of URL answers 2xx. Redirects are followed (up to the
// client's limit, ten for the default) and the final status is judged.
type HTTP struct {
	// URL is an absolute http:// or https:// URL.
	URL string
	// Interval is the time between requests; zero means DefaultHTTPInterval.
	Interval time.Duration
	// RequestTimeout bounds one request, redirects included; zero means
	// DefaultHTTPRequestTimeout.
	RequestTimeout time.Duration
	// Client sends the requests; nil means a client with http.DefaultTransport
	// and default redirect handling. Tests inject httptest's client here to
	// trust its certificate.
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

	client := h.Client
	if client == nil {
		client = &http.Client{}
	}
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
		return resolve.Status{Reason: shortNetError(err, timeout)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resolve.Status{Reason: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	return resolve.Status{Ready: true}
}
