package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSocketString(t *testing.T) {
	if got, want := NewSocket("/var/run/x.sock").String(), "socket /var/run/x.sock"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestSocketReadyWhenListenerAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sock")
	rec := &statusRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startWait(ctx, &Socket{Path: path, Interval: fastPoll}, rec)

	rec.waitForReason(t, "does not exist")
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer listener.Close()

	if err := waitResult(t, done); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	rec.requireEndsReady(t)
	rec.requireNoRepeats(t)
}

func TestSocketReadyAtOnceForExistingPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"file": file, "directory": dir} {
		t.Run(name, func(t *testing.T) {
			rec := &statusRecorder{}
			if err := (&Socket{Path: path}).Wait(context.Background(), rec.report); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			rec.requireEndsReady(t)
		})
	}
}

func TestSocketMissingHonoursCancel(t *testing.T) {
	rec := &statusRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The default interval: cancellation must not wait for the next poll.
	done := startWait(ctx, NewSocket(filepath.Join(t.TempDir(), "missing.sock")), rec)
	rec.waitForReason(t, "does not exist")
	requireCancelReturns(t, cancel, done)
}

func TestSocketEmptyPathIsTerminal(t *testing.T) {
	requireTerminal(t, (&Socket{}).Wait(context.Background(), nil), "empty path")
}

// asNobodyEnv marks a test binary re-run without root privileges.
const asNobodyEnv = "LOCAL_TEST_RERUN_AS_NOBODY"

// TestSocketNotReadable needs a process that access(2) can refuse. Root is never
// refused, so as root the test re-runs itself as user nobody.
func TestSocketNotReadable(t *testing.T) {
	if os.Geteuid() == 0 {
		if os.Getenv(asNobodyEnv) != "" {
			t.Fatal("re-run as nobody but still root")
		}
		rerunAsNobody(t)
		return
	}

	dir := t.TempDir()
	unreadableFile := filepath.Join(dir, "unreadable.sock")
	if err := os.WriteFile(unreadableFile, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	closedDir := filepath.Join(dir, "closed")
	if err := os.Mkdir(closedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	behindClosedDir := filepath.Join(closedDir, "db.sock")
	if err := os.WriteFile(behindClosedDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closedDir, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(closedDir, 0o700) }) // so TempDir can remove it

	for name, path := range map[string]string{
		"mode 0000":                unreadableFile,
		"directory not searchable": behindClosedDir,
	} {
		t.Run(name, func(t *testing.T) {
			rec := &statusRecorder{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := startWait(ctx, &Socket{Path: path, Interval: fastPoll}, rec)
			rec.waitForReason(t, "not readable: permission denied")
			requireCancelReturns(t, cancel, done)
		})
	}
}

// rerunAsNobody runs the calling test in a copy of this test binary as user
// nobody (65534), and fails if the copy fails or does not run the test.
func rerunAsNobody(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The build directory is private to root, so nobody gets its own copy in a
	// directory it can enter, and a temporary directory it can write to.
	dir, err := os.MkdirTemp("", "local-test-as-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tmp := filepath.Join(dir, "tmp")
	for path, mode := range map[string]os.FileMode{dir: 0o755, tmp: 0o777 | os.ModeSticky} {
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	binary := filepath.Join(dir, "local.test")
	if err := copyFile(self, binary, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), asNobodyEnv+"=1", "TMPDIR="+tmp, "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Skipf("cannot run as nobody, so the unreadable case is not covered here: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("re-run as nobody failed (%v):\n%s", err, out)
	}
	t.Logf("re-run as nobody:\n%s", out)
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func TestSocketReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{syscall.ENOENT, "does not exist"},
		{syscall.ENOTDIR, "does not exist: a parent is not a directory"},
		{syscall.EACCES, "not readable: permission denied"},
		{syscall.ELOOP, "cannot check: " + syscall.ELOOP.Error()},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			if got := socketReason(tc.err); got != tc.want {
				t.Errorf("socketReason(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
