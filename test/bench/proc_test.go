package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// resolver is one running kubernetes-entrypoint process.
type resolver struct {
	cmd            *exec.Cmd
	stdout, stderr *testenv.Buffer
	done           chan struct{} // closed when the process exited
	err            error         // from Wait, valid once done is closed
}

// startResolver starts the binary with exactly envVars (nothing inherited) and
// stops it, if still running, when the benchmark ends.
func startResolver(b *testing.B, envVars []string, args ...string) *resolver {
	b.Helper()
	r := &resolver{cmd: exec.Command(binary, args...), stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan struct{})}
	r.cmd.Env = envVars
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		b.Fatalf("starting the resolver: %v", err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.done) }()
	b.Cleanup(r.stop)
	return r
}

// stop ends the resolver the way the kubelet does, SIGTERM then SIGKILL.
func (r *resolver) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *resolver) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitExit waits for the process to end and fails the benchmark if it does not
// within timeout or exits with an error.
func (r *resolver) waitExit(b *testing.B, timeout time.Duration, what string) {
	b.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		b.Fatalf("%s: the resolver still runs after %s; stderr:\n%s", what, timeout, r.stderr.String())
	}
	if r.err != nil {
		b.Fatalf("%s: the resolver failed: %v; stderr:\n%s", what, r.err, r.stderr.String())
	}
}

// stampTime is the start time the stamp application printed after the exec.
func (r *resolver) stampTime(b *testing.B) time.Time {
	b.Helper()
	for _, line := range strings.Split(r.stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "stamp "); ok {
			ns, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("bad stamp %q", line)
			}
			return time.Unix(0, ns)
		}
	}
	b.Fatalf("the application did not run (no stamp); stdout %q, stderr:\n%s", r.stdout.String(), r.stderr.String())
	return time.Time{}
}

// waitAll waits until cond holds for every resolver, polling, and fails if one
// exits first or the timeout passes.
func waitAll(b *testing.B, rs []*resolver, timeout time.Duration, what string, cond func(*resolver) bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for _, r := range rs {
			if r.exited() {
				b.Fatalf("waiting for %s: a resolver exited (%v); stderr:\n%s", what, r.err, r.stderr.String())
			}
			if !cond(r) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			for _, r := range rs {
				if !cond(r) {
					b.Fatalf("timed out after %s waiting for %s; stderr of one resolver:\n%s", timeout, what, r.stderr.String())
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logged(msg string) func(*resolver) bool {
	return func(r *resolver) bool { return strings.Contains(r.stderr.String(), msg) }
}

// procStatusMB reads a memory field (VmRSS, VmHWM, ...) of /proc/<pid>/status in MB.
func procStatusMB(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: unexpected %q", pid, line)
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, err
		}
		return kb * 1024 / 1e6, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
