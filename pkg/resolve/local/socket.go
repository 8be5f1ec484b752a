package local

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// DefaultSocketInterval is how often Socket re-checks its path. Checking is a
// single access(2) call, so it can be frequent.
const DefaultSocketInterval = 250 * time.Millisecond

// accessReadable is R_OK for access(2); package syscall does not name it.
const accessReadable = 4

// Socket is ready when Path exists and this process may read it. It suits unix
// sockets (such as /run/openvswitch/db.sock) as well as plain files and
// directories. It is the DEPENDENCY_SOCKET item.
type Socket struct {
	// Path is the file to wait for.
	Path string
	// Interval is the time between checks; zero means DefaultSocketInterval.
	Interval time.Duration
}

// NewSocket returns a Socket for path with the default interval.
func NewSocket(path string) *Socket {
	return &Socket{Path: path}
}

// String names the dependency: "socket /run/openvswitch/db.sock".
func (s *Socket) String() string {
	return "socket " + s.Path
}

// Wait polls until Path is readable or ctx ends.
func (s *Socket) Wait(ctx context.Context, report func(resolve.Status)) error {
	if s.Path == "" {
		return resolve.Terminal("%s: empty path", s)
	}
	return pollUntilReady(ctx, orDefault(s.Interval, DefaultSocketInterval), report,
		func(context.Context) (resolve.Status, error) {
			// access(2), unlike stat, also answers "could we open it for reading",
			// which is what the waiting application will need.
			err := syscall.Access(s.Path, accessReadable)
			if err == nil {
				return resolve.Status{Ready: true}, nil
			}
			return resolve.Status{Reason: socketReason(err)}, nil
		})
}

// socketReason turns an access(2) failure into words for a person.
func socketReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "does not exist"
	case errors.Is(err, syscall.ENOTDIR):
		return "does not exist: a parent is not a directory"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "not readable: " + err.Error()
	default:
		return fmt.Sprintf("cannot check: %v", err)
	}
}
