package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"
)

// shortNetError says why a connection attempt failed in a few words
// ("connection refused") rather than Go's full chain
// ("dial tcp 10.0.0.7:5432: connect: connection refused"): the dependency's
// String already names the address, and the reason is repeated in logs.
func shortNetError(err error, timeout time.Duration) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}

	var dnsErr *net.DNSError
	var errno syscall.Errno
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("cannot resolve %s: no such host", dnsErr.Name)
		}
		return fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &errno):
		return errno.Error()
	default:
		return err.Error()
	}
}
