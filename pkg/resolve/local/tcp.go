package local

import (
	"context"
	"net"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// Defaults for TCP.
const (
	DefaultTCPDialTimeout = time.Second
	DefaultTCPInterval    = time.Second
)

// TCP is ready once a TCP connection to Address succeeds. The connection is
// closed at once; nothing is sent.
type TCP struct {
	// Address is "host:port"; host may be a name, an IPv4 address or a bracketed
	// IPv6 address.
	Address string
	// DialTimeout bounds one connection attempt; zero means DefaultTCPDialTimeout.
	DialTimeout time.Duration
	// Interval is the time between attempts; zero means DefaultTCPInterval.
	Interval time.Duration
}

// NewTCP returns a TCP dependency on address ("host:port") with default timings.
func NewTCP(address string) *TCP {
	return &TCP{Address: address}
}

// String names the dependency: "tcp db:5432".
func (t *TCP) String() string {
	return "tcp " + t.Address
}

// Wait dials Address until a connection succeeds or ctx ends. A malformed
// address is a terminal error, since no amount of waiting will fix it.
func (t *TCP) Wait(ctx context.Context, report func(resolve.Status)) error {
	host, port, err := net.SplitHostPort(t.Address)
	if err != nil {
		return resolve.Terminal("%s: want host:port: %v", t, err)
	}
	if host == "" || port == "" {
		return resolve.Terminal("%s: want host:port, both non-empty", t)
	}

	timeout := orDefault(t.DialTimeout, DefaultTCPDialTimeout)
	dialer := net.Dialer{Timeout: timeout}
	return pollUntilReady(ctx, orDefault(t.Interval, DefaultTCPInterval), report,
		func(ctx context.Context) (resolve.Status, error) {
			conn, err := dialer.DialContext(ctx, "tcp", t.Address)
			if err != nil {
				return resolve.Status{Reason: shortNetError(err, timeout)}, nil
			}
			conn.Close()
			return resolve.Status{Ready: true}, nil
		})
}
