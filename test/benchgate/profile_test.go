package benchgate

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// profiler takes CPU profiles of the API server and the controller while pods
// are released, when GATE_PROFILE_DIR names a directory: to see where the
// two cores go (GATE_PROFILE_SECONDS long, default 10). Off by default: a
// profile costs CPU itself.
type profiler struct {
	dir     string
	seconds int
}

func profilerFromEnv() (*profiler, error) {
	dir := os.Getenv("GATE_PROFILE_DIR")
	if dir == "" {
		return nil, nil
	}
	p := &profiler{dir: dir, seconds: 10}
	if s := os.Getenv("GATE_PROFILE_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 300 {
			return nil, fmt.Errorf("GATE_PROFILE_SECONDS=%q: want whole seconds from 1 to 300", s)
		}
		p.seconds = n
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("GATE_PROFILE_DIR: %w", err)
	}
	return p, nil
}

// controllerArgs are the controller's flags that serve its profiles on a free
// loopback port, and that port's address ("" when not profiling).
func (p *profiler) controllerArgs() ([]string, string, error) {
	if p == nil {
		return nil, "", nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := l.Addr().String()
	l.Close()
	return []string{"--pprof-bind-address=" + addr}, addr, nil
}

// start begins CPU profiles of the API server (through its /debug/pprof) and,
// when controllerAddr is set, of the controller; wait returns once both are
// written to <dir>/<name>-apiserver.pprof and <name>-controller.pprof.
func (p *profiler) start(ctx context.Context, r *rig, name, controllerAddr string) (wait func() error) {
	if p == nil {
		return func() error { return nil }
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		b, err := r.env.Client.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(p.seconds)).Timeout(time.Duration(p.seconds+30) * time.Second).DoRaw(ctx)
		if err == nil {
			err = os.WriteFile(filepath.Join(p.dir, name+"-apiserver.pprof"), b, 0o644)
		}
		errs[0] = err
	})
	if controllerAddr != "" {
		wg.Go(func() {
			errs[1] = fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", controllerAddr, p.seconds),
				filepath.Join(p.dir, name+"-controller.pprof"))
		})
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("profiling %s: %w", name, err)
			}
		}
		return nil
	}
}

func fetchProfile(ctx context.Context, url, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
