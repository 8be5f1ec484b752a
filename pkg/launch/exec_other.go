//go:build !unix

package launch

import (
	"errors"
	"io"
)

var errExecUnsupported = errors.New("replacing the process (execve) is only supported on Unix")

// Exec is only implemented on Unix; see exec_unix.go. Elsewhere it fails without
// starting anything, so a misbuilt binary says so instead of forking a child.
func Exec(argv []string, stdout io.Writer) error {
	if len(argv) == 0 {
		return newError(ExitNoCommand, "", "", ErrNoCommand, "cannot start the application: %v", ErrNoCommand)
	}
	return newError(ExitCannotExecute, argv[0], "", errExecUnsupported,
		"cannot execute %q: %v", argv[0], errExecUnsupported)
}
