// Package launch starts the application once the resolver is done, and installs the
// resolver binary into a pod volume.
//
// Exec replaces the resolver with the application (same PID, so signals reach the
// application directly) using the exact argv it is given: nothing is split, joined or
// passed through a shell. Install copies the running binary into a directory without
// needing a shell or cp, so the webhook's init container works on distroless images.
package launch

import (
	"errors"
	"fmt"
)

// BinaryName is the file name of the resolver binary, both in the image and in the
// directory Install copies it into.
const BinaryName = "kubernetes-entrypoint"

// Exit codes carried by Error.ExitCode. 126 and 127 are what a POSIX shell reports for
// the same failures, so existing probes and charts read them the same way.
const (
	// ExitNoCommand: Exec got an empty argv. This is a bug in the caller, not in
	// the application, so it uses the usage-error code rather than a shell code.
	ExitNoCommand = 2
	// ExitBuiltinFailed: the echo builtin could not write its output.
	ExitBuiltinFailed = 1
	// ExitCannotExecute: the program exists but cannot be run (not executable, a
	// directory, wrong format, found only relative to the working directory, ...).
	ExitCannotExecute = 126
	// ExitNotFound: no such program in PATH, or the given path does not exist.
	ExitNotFound = 127
)

// ErrNoCommand is the cause of the error Exec returns for an empty argv.
var ErrNoCommand = errors.New("no command to run: argv is empty")

// Error says why Exec could not start the application, and which exit code the
// resolver should use for it. Unwrap gives the cause (exec.ErrNotFound, exec.ErrDot,
// a syscall.Errno, ...), so errors.Is works.
type Error struct {
	// Command is argv[0] as the caller gave it.
	Command string
	// Path is the file Exec tried to run, or found but could not run; empty when no
	// file was found.
	Path string
	// Err is the underlying cause.
	Err error

	exitCode int
	message  string
}

func (e *Error) Error() string { return e.message }

func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the exit code the resolver should exit with: 127 not found, 126 found
// but not runnable, 2 empty argv, 1 echo builtin failed to write.
func (e *Error) ExitCode() int { return e.exitCode }

func newError(exitCode int, command, path string, cause error, format string, args ...any) *Error {
	return &Error{
		Command:  command,
		Path:     path,
		Err:      cause,
		exitCode: exitCode,
		message:  fmt.Sprintf(format, args...),
	}
}
