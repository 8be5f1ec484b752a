package benchgate

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// process is one running binary under test, its output kept for diagnosis.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *testenv.Buffer
	done           chan struct{} // closed when the process exited
	err            error         // from Wait, valid once done is closed
	ended          time.Time     // when Wait returned, valid once done is closed
}

func start(name string, env []string, path string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(path, args...), stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); p.ended = time.Now(); close(p.done) }()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process the way the kubelet does, SIGTERM then SIGKILL.
func (p *process) stop() {
	if p.exited() {
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

// kill ends the process with SIGKILL, as a node that dies or the OOM killer
// does: no cleanup, no release of its Lease. It returns once it exited.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// excerpt is the process's stderr, for a diagnosis: whole up to 30 lines, else
// its first 5 (a failure to start, e.g. an unknown flag, comes first) and its last 25.
func (p *process) excerpt() string {
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	if len(lines) <= 30 {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:5], "\n") + fmt.Sprintf("\n[... %d lines ...]\n", len(lines)-30) + strings.Join(lines[len(lines)-25:], "\n")
}

// diagnosis says whether the process still runs and what it logged last.
func (p *process) diagnosis() string {
	state := "still running"
	if p.exited() {
		state = fmt.Sprintf("exited (%v)", p.err)
	}
	return fmt.Sprintf("%s (pid %d) %s; its stderr:\n%s", p.name, p.pid(), state, p.excerpt())
}

// running is nil while the process runs, else an error with its diagnosis.
func (p *process) running() error {
	if p.exited() {
		return fmt.Errorf("%s", p.diagnosis())
	}
	return nil
}

// usage is a process's resource use so far.
type usage struct {
	hwmMB float64 // peak resident memory (VmHWM)
	rssMB float64 // resident memory now (VmRSS)
	cpu   time.Duration
}

func usageOf(pid int) (usage, error) {
	var u usage
	var err error
	if u.hwmMB, err = statusMB(pid, "VmHWM"); err != nil {
		return u, err
	}
	if u.rssMB, err = statusMB(pid, "VmRSS"); err != nil {
		return u, err
	}
	st, err := readProcStat(pid)
	if err != nil {
		return u, err
	}
	u.cpu = st.cpu
	return u, nil
}

// controllerEnv is the controller's environment: the harness's own, without a
// KUBECONFIG of the person running it (the controller gets --kubeconfig).
func controllerEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

// clientLimits are the controller's client-side request limits: GATE_KUBE_API_QPS
// and GATE_KUBE_API_BURST, or the defaults given.
func clientLimits(defQPS, defBurst int) (qps, burst int, err error) {
	read := func(name string, def int) (int, error) {
		v := os.Getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
		}
		return n, nil
	}
	if qps, err = read("GATE_KUBE_API_QPS", defQPS); err != nil {
		return 0, 0, err
	}
	burst, err = read("GATE_KUBE_API_BURST", defBurst)
	return qps, burst, err
}
