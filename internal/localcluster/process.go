package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A component is one long-running process of the cluster.
type component struct {
	name  string
	path  string
	args  []string
	ready func(ctx context.Context) error // nil error once it serves

	exited chan error // closed with the exit status when the process ends while up runs
}

// startComponent starts the process in its own session (so it outlives `up` and no
// terminal signal reaches it), logs to <dir>/logs/<name>.log and records its pid in
// <dir>/run/<name>.pid.
func (c *Cluster) startComponent(p *component) error {
	if pid, ok := c.alive(p.name); ok {
		return fmt.Errorf("%s already runs as pid %d; run down first", p.name, pid)
	}
	for _, d := range []string{"logs", "run"} {
		if err := os.MkdirAll(c.Path(d), 0o755); err != nil {
			return err
		}
	}
	logPath := c.Path("logs", p.name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n==== %s %s %s\n", time.Now().Format(time.RFC3339), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	if err := os.WriteFile(c.pidFile(p.name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- cmd.Wait(); close(p.exited) }()
	c.Logf("started %-24s pid %-7d log %s", p.name, cmd.Process.Pid, logPath)
	return nil
}

// waitReady polls p.ready until it succeeds, the process exits, or the timeout passes.
func (c *Cluster) waitReady(ctx context.Context, p *component, timeout time.Duration) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = p.ready(ctx); last == nil {
			c.Logf("%s ready after %s", p.name, time.Since(began).Round(time.Millisecond))
			return nil
		}
		select {
		case err := <-p.exited:
			return fmt.Errorf("%s exited (%v); the end of %s:\n%s", p.name, err, c.Path("logs", p.name+".log"), tail(c.Path("logs", p.name+".log"), 25)) //nolint:errorlint // err is nil when it exited 0: %v says <nil>
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; the end of its log:\n%s", p.name, timeout, last, tail(c.Path("logs", p.name+".log"), 25))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) pidFile(name string) string { return c.Path("run", name+".pid") }

// alive reports the pid recorded for name and whether that process still runs and is
// still ours (its command line names the state directory).
func (c *Cluster) alive(name string) (int, bool) {
	b, err := os.ReadFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, c.ours(pid)
}

// ours tells whether pid is a live (not zombie) process whose command line mentions the
// state directory: every component, shim included, gets a flag or config path under it.
func (c *Cluster) ours(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
			return false
		}
	}
	return strings.Contains(string(cmdline), c.dir+"/") || strings.HasSuffix(strings.TrimRight(string(cmdline), "\x00"), c.dir)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// httpsClient trusts the cluster CA and presents the admin certificate.
func (c *Cluster) httpsClient() (*http.Client, error) {
	caPEM, err := os.ReadFile(c.Path("pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in pki/ca.crt")
	}
	cert, err := tls.LoadX509KeyPair(c.Path("pki", "admin.crt"), c.Path("pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

// httpOK returns a readiness check that wants 200 from url.
func httpOK(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// fileExists returns a readiness check that wants path to exist.
func fileExists(path string) func(context.Context) error {
	return func(context.Context) error {
		_, err := os.Stat(path)
		return err
	}
}

// run runs a short command and returns its combined output in the error.
func run(name string, args ...string) (string, error) {
	return runCmd(exec.Command(name, args...))
}

// runCmd is run for a command made by the caller (with its own environment, say).
func runCmd(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// httpPlain is for the loopback health endpoints that speak plain HTTP (etcd, kubelet).
var httpPlain = &http.Client{Timeout: 2 * time.Second}

// execReplace replaces this process with path (for kubectl: its exit status is ours).
func execReplace(path string, argv []string) error {
	return syscall.Exec(path, argv, os.Environ())
}
