// Package benchproc runs the binaries a benchmark measures as processes of their
// own and reads what Linux says of them (/proc): CPU time, peak and current
// resident memory, and a parent's child by name (the kube-apiserver envtest
// starts). A process keeps its output for the diagnosis a failing benchmark
// gives.
package benchproc

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// Process is one running binary, its output kept for diagnosis.
type Process struct {
	Name           string
	cmd            *exec.Cmd
	stdout, stderr *testenv.Buffer
	done           chan struct{} // closed when the process exited
	err            error         // from Wait, valid once done is closed
	ended          time.Time     // when Wait returned, valid once done is closed
}

// Start runs path with args and env (nil: none); name is what diagnoses call it.
func Start(name string, env []string, path string, args ...string) (*Process, error) {
	p := &Process{Name: name, cmd: exec.Command(path, args...), stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); p.ended = time.Now(); close(p.done) }()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited tells whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process the way the kubelet does, SIGTERM then, after 10s, SIGKILL.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL, as a node that dies or the OOM killer
// does: no cleanup, no release of a Lease. It returns once the process exited.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Err is what waiting for the process returned (nil: it exited 0); nil while
// it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Ended is when the process exited; zero while it runs.
func (p *Process) Ended() time.Time {
	if !p.Exited() {
		return time.Time{}
	}
	return p.ended
}

// Output is what the process wrote, stdout then stderr (components log to either).
func (p *Process) Output() string { return p.stdout.String() + p.stderr.String() }

// Excerpt is the process's output, whole up to 30 lines, else its first 5 (a
// failure to start, e.g. an unknown flag, comes first) and its last 25.
func (p *Process) Excerpt() string { return excerpt(p.Output(), 5, 25) }

func excerpt(text string, head, tail int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) <= head+tail {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:head], "\n") + fmt.Sprintf("\n[... %d lines ...]\n", len(lines)-head-tail) + strings.Join(lines[len(lines)-tail:], "\n")
}

// Diagnosis says whether the process still runs and what it logged last.
func (p *Process) Diagnosis() string {
	state := "still running"
	if p.Exited() {
		state = fmt.Sprintf("exited (%v)", p.err)
	}
	return fmt.Sprintf("%s (pid %d) %s; its output:\n%s", p.Name, p.Pid(), state, p.Excerpt())
}

// Running is nil while the process runs, else an error with its diagnosis.
func (p *Process) Running() error {
	if p.Exited() {
		return fmt.Errorf("%s", p.Diagnosis())
	}
	return nil
}
