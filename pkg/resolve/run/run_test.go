package run

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// specFrom parses env the way the binary does, so these tests start from the
// DEPENDENCY_* contract rather than from hand-built structs.
func specFrom(t *testing.T, env map[string]string) *spec.Spec {
	t.Helper()
	s, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("parsing %v: %v", env, err)
	}
	return s
}

// unreachableAPI is a client config for an API server nobody listens on: building
// the plan must not contact it.
func unreachableAPI() (*rest.Config, error) {
	return &rest.Config{Host: "http://127.0.0.1:1"}, nil
}

// Every kind of the contract table becomes a dependency: a kind added to
// spec.Kinds but not to dependencies fails here.
func TestEveryKindIsWaitedFor(t *testing.T) {
	for _, k := range spec.Kinds() {
		t.Run(k.Env, func(t *testing.T) {
			s := specFrom(t, map[string]string{"NAMESPACE": "openstack", "POD_NAME": "api-0", k.Env: k.Example})
			p, err := dependencies(s, Options{Log: logr.Discard(), RESTConfig: unreachableAPI})
			if err != nil {
				t.Fatalf("dependencies: %v", err)
			}
			if len(p.list) == 0 {
				t.Errorf("%s=%s: nothing to wait for", k.Env, k.Example)
			}
			if uses := p.events != nil; uses != k.API { // the recorder comes with the API client
				t.Errorf("%s: uses the API %v, want %v", k.Env, uses, k.API)
			}
		})
	}
}

func TestDependenciesFollowTheContractOrder(t *testing.T) {
	s := specFrom(t, map[string]string{
		"NAMESPACE":                  "openstack",
		"POD_NAME":                   "api-0",
		"DEPENDENCY_HTTP":            "http://127.0.0.1:9/healthz",
		"DEPENDENCY_TCP":             "127.0.0.1:9",
		"DEPENDENCY_SOCKET":          "/run/app.sock",
		"DEPENDENCY_CONFIG":          "/etc/app/app.conf",
		"DEPENDENCY_CUSTOM_RESOURCE": `[{"apiVersion":"example.com/v1","kind":"Widget","name":"w"}]`,
		"DEPENDENCY_POD_JSON":        `[{"labels":{"app":"agent"}}]`,
		"DEPENDENCY_CONTAINER":       "sidecar",
		"DEPENDENCY_DAEMONSET":       "ovs",
		"DEPENDENCY_JOBS":            "db-sync",
		"DEPENDENCY_SERVICE":         "mariadb,kube-system:dns",
	})
	p, err := dependencies(s, Options{Log: logr.Discard(), RESTConfig: unreachableAPI})
	if err != nil {
		t.Fatalf("dependencies: %v", err)
	}
	var got []string
	for _, d := range p.list {
		got = append(got, d.String())
	}
	want := []string{
		"service openstack/mariadb",
		"service kube-system/dns",
		"job openstack/db-sync",
		"daemonset openstack/ovs",
		"container sidecar",
		"pods in openstack with labels app=agent",
		"widget openstack/w (example.com/v1)",
		"config /etc/app/app.conf",
		"socket /run/app.sock",
		"tcp 127.0.0.1:9",
		"http http://127.0.0.1:9/healthz",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dependencies in order:\n got %q\nwant %q", got, want)
	}
	if p.events == nil {
		t.Error("a plan with API dependencies has no event recorder")
	}
}

func TestLocalOnlyPlanNeedsNoAPI(t *testing.T) {
	s := specFrom(t, map[string]string{"DEPENDENCY_TCP": "127.0.0.1:9"})
	called := false
	p, err := dependencies(s, Options{Log: logr.Discard(), RESTConfig: func() (*rest.Config, error) {
		called = true
		return nil, errors.New("no API here")
	}})
	if err != nil {
		t.Fatalf("dependencies: %v", err)
	}
	if called {
		t.Error("the client config was read although no dependency needs the API")
	}
	if p.events != nil {
		t.Error("a plan without API dependencies records events")
	}
	if len(p.list) != 1 {
		t.Errorf("got %d dependencies, want 1", len(p.list))
	}
}

func TestRunRefusesAPIDependenciesWithoutAClient(t *testing.T) {
	s := specFrom(t, map[string]string{"DEPENDENCY_SERVICE": "mariadb"})
	for _, tc := range []struct {
		name       string
		restConfig func() (*rest.Config, error)
		wantText   string
	}{
		{"no client config at all", nil, "need the Kubernetes API"},
		{"client config fails", func() (*rest.Config, error) {
			return nil, errors.New("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST must be defined")
		}, "KUBERNETES_SERVICE_HOST must be defined"},
		{"client config is unusable", func() (*rest.Config, error) {
			return &rest.Config{Host: "http://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{CAFile: "/nonexistent/ca.crt"}}, nil
		}, "/nonexistent/ca.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			execed := false
			err := Run(context.Background(), s, Options{
				Log: logr.Discard(), Argv: []string{"app"}, RESTConfig: tc.restConfig,
				Exec: func([]string, io.Writer) error { execed = true; return nil },
			})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Run returned %v, want an error wrapping ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
			if execed {
				t.Error("the application was started despite the configuration error")
			}
		})
	}
}

func TestRunExecsTheRightArgvOnceReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ready := ln.Addr().String()

	execErr := errors.New("exec failed: permission denied")
	for _, tc := range []struct {
		name     string
		env      map[string]string
		argv     []string
		execErr  error
		wantArgv []string // nil: the application must not be started
		wantErr  error
	}{
		{
			name:     "argv after -- wins over COMMAND",
			env:      map[string]string{"COMMAND": "legacy start", "DEPENDENCY_TCP": ready},
			argv:     []string{"/bin/app", "--flag=a b"},
			wantArgv: []string{"/bin/app", "--flag=a b"},
		},
		{
			name:     "COMMAND split on whitespace when there is no argv",
			env:      map[string]string{"COMMAND": "  /bin/app   serve ", "DEPENDENCY_TCP": ready},
			wantArgv: []string{"/bin/app", "serve"},
		},
		{
			name: "nothing to run: init-container mode exits without exec",
			env:  map[string]string{"DEPENDENCY_TCP": ready},
		},
		{
			name:     "no dependencies at all",
			env:      map[string]string{"COMMAND": "/bin/app"},
			wantArgv: []string{"/bin/app"},
		},
		{
			name:     "exec failure is returned",
			env:      map[string]string{"DEPENDENCY_TCP": ready},
			argv:     []string{"/bin/app"},
			execErr:  execErr,
			wantArgv: []string{"/bin/app"},
			wantErr:  execErr,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotArgv []string
			execs := 0
			err := Run(context.Background(), specFrom(t, tc.env), Options{
				Log: logr.Discard(), Argv: tc.argv, Timeout: 30 * time.Second,
				Exec: func(argv []string, _ io.Writer) error { execs++; gotArgv = argv; return tc.execErr },
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Run returned %v, want %v", err, tc.wantErr)
			}
			wantExecs := 0
			if tc.wantArgv != nil {
				wantExecs = 1
			}
			if execs != wantExecs {
				t.Fatalf("exec called %d times, want %d", execs, wantExecs)
			}
			if !reflect.DeepEqual(gotArgv, tc.wantArgv) {
				t.Errorf("exec'd %q, want %q", gotArgv, tc.wantArgv)
			}
		})
	}
}

func TestRunTimesOutNamingWhatBlocks(t *testing.T) {
	// A port that was just free: nothing accepts on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	execed := false
	err = Run(context.Background(), specFrom(t, map[string]string{"DEPENDENCY_TCP": closed}), Options{
		Log: logr.Discard(), Argv: []string{"/bin/app"}, Timeout: 300 * time.Millisecond,
		Exec: func([]string, io.Writer) error { execed = true; return nil },
	})
	var blocked *resolve.BlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("Run returned %v, want a BlockedError", err)
	}
	if !errors.Is(blocked.Cause, context.DeadlineExceeded) {
		t.Errorf("cause is %v, want the deadline", blocked.Cause)
	}
	if len(blocked.Blocking) != 1 || !strings.Contains(blocked.Blocking[0], "tcp "+closed) {
		t.Errorf("blocking %q, want the tcp dependency on %s", blocked.Blocking, closed)
	}
	if execed {
		t.Error("the application was started although its dependency never became ready")
	}
}

func TestRunRendersConfigsFromTheTemplateDirBeforeExec(t *testing.T) {
	templates := t.TempDir()
	dest := filepath.Join(t.TempDir(), "etc", "app.conf")
	if err := os.MkdirAll(filepath.Join(templates, "app.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(templates, "app.conf", "app.conf"), []byte("listen {{ .IP }}:8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var atExec string
	err := Run(context.Background(), specFrom(t, map[string]string{
		"DEPENDENCY_CONFIG": dest,
		"POD_IP":            "10.1.2.3",
	}), Options{
		Log: logr.Discard(), Argv: []string{"/bin/app"}, TemplateDir: templates,
		Exec: func([]string, io.Writer) error {
			b, err := os.ReadFile(dest)
			if err != nil {
				return err
			}
			atExec = string(b)
			return nil
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := "listen 10.1.2.3:8080\n"; atExec != want {
		t.Errorf("at exec %s held %q, want %q", dest, atExec, want)
	}
}
