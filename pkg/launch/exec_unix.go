//go:build unix

package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Exec replaces the current process with the program argv[0], passing argv unchanged
// (argv[0] included) and the current environment. On success it does not return.
//
// argv[0] is found the way execvp finds it: a name containing "/" is used as is;
// otherwise PATH is searched with exec.LookPath's rules, so a match that is only
// relative to the working directory (an empty or relative PATH entry) is refused
// (exec.ErrDot) unless GODEBUG=execerrdot=0. Unlike execvp, a file without a "#!"
// line is not handed to /bin/sh: the images this runs in may have no shell.
//
// Compatibility: older openstack-helm charts run COMMAND="echo done" in images that
// have no echo program. When argv[0] is "echo" and PATH holds no echo, Exec writes
// the other arguments, joined by single spaces, and a newline to stdout (os.Stdout
// if nil) and returns nil. It parses no options: "-n" is printed like any word. So
// a nil return means the builtin ran and the caller should exit 0.
//
// Any error is an *Error whose ExitCode is what a shell would exit with.
// Output the caller buffered and did not flush before Exec is lost.
func Exec(argv []string, stdout io.Writer) error {
	if len(argv) == 0 {
		return newError(ExitNoCommand, "", "", ErrNoCommand, "cannot start the application: %v", ErrNoCommand)
	}
	command := argv[0]

	path := command
	if !strings.Contains(command, "/") {
		found, err := exec.LookPath(command)
		switch {
		case err == nil:
			path = found
		case errors.Is(err, exec.ErrDot):
			return newError(ExitCannotExecute, command, found, exec.ErrDot,
				"refusing to run command %q: PATH (%s) finds it only as %q, relative to the working directory; "+
					"put an absolute directory in PATH, or name the file with a path such as %q",
				command, os.Getenv("PATH"), found, "./"+found)
		case command == "echo":
			return echo(argv[1:], stdout)
		default:
			return notFoundInPath(command)
		}
	}

	err := syscall.Exec(path, argv, os.Environ())
	return execFailed(command, path, err)
}

// echo stands in for an echo program the image does not have.
func echo(args []string, stdout io.Writer) error {
	if stdout == nil {
		stdout = os.Stdout
	}
	if _, err := io.WriteString(stdout, strings.Join(args, " ")+"\n"); err != nil {
		return newError(ExitBuiltinFailed, "echo", "", err,
			"echo (builtin, no echo program in PATH): writing output: %v", err)
	}
	return nil
}

// notFoundInPath explains a failed PATH search. Like a shell, it reports 126 rather
// than 127 when PATH does hold a file of that name that may not be executed: "not
// found" would send the reader looking for the wrong problem.
func notFoundInPath(command string) *Error {
	pathList := os.Getenv("PATH")
	shownPath := pathList
	if shownPath == "" {
		shownPath = "PATH is empty or unset"
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue // exec.LookPath would refuse a match there anyway
		}
		candidate := filepath.Join(dir, command)
		info, err := os.Stat(candidate)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		return newError(ExitCannotExecute, command, candidate, os.ErrPermission,
			"command %q found in PATH at %q, but this process may not execute it (mode %v, uid %d)",
			command, candidate, info.Mode().Perm(), os.Geteuid())
	}
	return newError(ExitNotFound, command, "", exec.ErrNotFound,
		"command %q not found in PATH (%s)", command, shownPath)
}

// execFailed explains why syscall.Exec returned.
func execFailed(command, path string, err error) *Error {
	target := fmt.Sprintf("%q", path)
	if path != command {
		target = fmt.Sprintf("%q (command %q)", path, command)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return newError(ExitCannotExecute, command, path, err, "cannot execute %s: %v", target, err)
	}
	switch errno {
	case syscall.ENOENT:
		if _, statErr := os.Stat(path); statErr == nil {
			// The kernel reports ENOENT for a missing interpreter too, which is the
			// usual story when a script or dynamically linked binary meets a
			// distroless image.
			return newError(ExitNotFound, command, path, errno,
				"cannot execute %s: %v: the file exists, so the interpreter named on its \"#!\" line "+
					"or its dynamic loader is missing from this image", target, errno)
		}
		return newError(ExitNotFound, command, path, errno, "cannot execute %s: %v", target, errno)
	case syscall.EACCES:
		if info, statErr := os.Stat(path); statErr == nil && info.IsDir() {
			return newError(ExitCannotExecute, command, path, errno,
				"cannot execute %s: %v: it is a directory", target, errno)
		}
		return newError(ExitCannotExecute, command, path, errno,
			"cannot execute %s: %v (the file must be executable, and its filesystem not mounted noexec)",
			target, errno)
	case syscall.ENOEXEC:
		return newError(ExitCannotExecute, command, path, errno,
			"cannot execute %s: %v: it is neither a program for this machine nor a script "+
				"starting with \"#!\" (there is no fallback to /bin/sh)", target, errno)
	default:
		return newError(ExitCannotExecute, command, path, errno, "cannot execute %s: %v", target, errno)
	}
}
