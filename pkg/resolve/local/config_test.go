package local

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// configFixture lays out a template directory the way the ConfigMap mounts
// of the original entrypoint do.
type configFixture struct {
	templateDir string
	destDir     string
}

func newConfigFixture(t *testing.T) configFixture {
	t.Helper()
	root := t.TempDir()
	return configFixture{templateDir: filepath.Join(root, "configmaps"), destDir: filepath.Join(root, "etc")}
}

// addTemplate writes the template for a destination named base.
func (f configFixture) addTemplate(t *testing.T, base, text string) {
	t.Helper()
	dir := filepath.Join(f.templateDir, base)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, base), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f configFixture) config(dest, iface string) *Config {
	return &Config{
		Destination:   dest,
		TemplateDir:   f.templateDir,
		InterfaceName: iface,
		Hostname:      func() (string, error) { return "mariadb-0", nil },
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigStringAndTemplatePath(t *testing.T) {
	c := NewConfig("/etc/foo/bar.conf", "eth0")
	if got, want := c.String(), "config /etc/foo/bar.conf"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := c.TemplatePath(), "/configmaps/bar.conf/bar.conf"; got != want {
		t.Errorf("TemplatePath() = %q, want %q", got, want)
	}
}

func TestConfigRenders(t *testing.T) {
	staticAddrs := func(addrs ...string) func(string) ([]net.Addr, error) {
		return func(string) ([]net.Addr, error) {
			var out []net.Addr
			for _, a := range addrs {
				ip, ipNet, err := net.ParseCIDR(a)
				if err != nil {
					panic(err)
				}
				ipNet.IP = ip
				out = append(out, ipNet)
			}
			return out, nil
		}
	}
	for _, tc := range []struct {
		name     string
		template string
		iface    string
		addrs    func(string) ([]net.Addr, error)
		want     string
	}{
		{
			name:     "loopback",
			template: "ip={{.IP}} erlang={{.IP_ERLANG}} host={{.HOSTNAME}}\n",
			iface:    "lo",
			want:     "ip=127.0.0.1 erlang=127,0,0,1 host=mariadb-0\n",
		},
		{
			name:     "IPv4 wins over an earlier IPv6",
			template: "{{.IP}} {{.IP_ERLANG}}",
			iface:    "eth0",
			addrs:    staticAddrs("2001:db8::7/64", "10.0.0.7/24", "10.0.0.8/24"),
			want:     "10.0.0.7 10,0,0,7",
		},
		{
			name:     "first IPv6 when there is no IPv4",
			template: "{{.IP}}",
			iface:    "eth0",
			addrs:    staticAddrs("2001:db8::7/64", "2001:db8::8/64"),
			want:     "2001:db8::7",
		},
		{
			name:     "no interface needed without .IP",
			template: "host={{.HOSTNAME}}",
			iface:    "",
			want:     "host=mariadb-0",
		},
		{
			name:     "unknown interface harmless without .IP",
			template: "static",
			iface:    "nonexistent0",
			want:     "static",
		},
		{
			name:     "IP used repeatedly",
			template: "{{.IP}}{{if .IP}} again {{.IP}}{{end}}",
			iface:    "lo",
			want:     "127.0.0.1 again 127.0.0.1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newConfigFixture(t)
			f.addTemplate(t, "my.cnf", tc.template)
			dest := filepath.Join(f.destDir, "my.cnf")
			c := f.config(dest, tc.iface)
			c.InterfaceAddrs = tc.addrs

			rec := &statusRecorder{}
			if err := c.Wait(context.Background(), rec.report); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if got := readFile(t, dest); got != tc.want {
				t.Errorf("rendered %q, want %q", got, tc.want)
			}
			rec.requireEndsReady(t)
		})
	}
}

func TestConfigDefaultHostname(t *testing.T) {
	want, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name to compare with: %v", err)
	}
	f := newConfigFixture(t)
	f.addTemplate(t, "host", "{{.HOSTNAME}}")
	dest := filepath.Join(f.destDir, "host")
	if err := (&Config{Destination: dest, TemplateDir: f.templateDir}).Wait(context.Background(), nil); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := readFile(t, dest); got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
}

func TestConfigFailuresAreTerminal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template *string // nil: no template at all
		iface    string
		addrs    func(string) ([]net.Addr, error)
		hostname func() (string, error)
		dest     func(f configFixture) string
		want     []string // besides the template path and the destination
	}{
		{
			name:  "missing template",
			want:  []string{"cannot read template", "no such file or directory"},
			iface: "lo",
		},
		{
			name:     "template syntax",
			template: ptr("{{.IP"),
			iface:    "lo",
			want:     []string{"invalid", "unclosed action"},
		},
		{
			name:     "unknown value",
			template: ptr("{{.PORT}}"),
			iface:    "lo",
			want:     []string{"PORT"},
		},
		{
			name:     "IP without INTERFACE_NAME",
			template: ptr("{{.IP}}"),
			want:     []string{"INTERFACE_NAME and POD_IP are empty"},
		},
		{
			name:     "IP_ERLANG without INTERFACE_NAME",
			template: ptr("{{.IP_ERLANG}}"),
			want:     []string{"IP_ERLANG", "INTERFACE_NAME and POD_IP are empty"},
		},
		{
			name:     "unknown interface",
			template: ptr("{{.IP}}"),
			iface:    "nonexistent0",
			want:     []string{`"nonexistent0" (INTERFACE_NAME)`, "no such network interface"},
		},
		{
			name:     "interface without address",
			template: ptr("{{.IP}}"),
			iface:    "eth0",
			addrs:    func(string) ([]net.Addr, error) { return nil, nil },
			want:     []string{`"eth0" (INTERFACE_NAME) has no IP address`},
		},
		{
			name:     "host name unavailable",
			template: ptr("{{.HOSTNAME}}"),
			hostname: func() (string, error) { return "", errors.New("uts namespace gone") },
			want:     []string{"host name", "uts namespace gone"},
		},
		{
			name:     "destination parent is a file",
			template: ptr("static"),
			dest: func(f configFixture) string {
				if err := os.MkdirAll(f.destDir, 0o755); err != nil {
					panic(err)
				}
				if err := os.WriteFile(filepath.Join(f.destDir, "file"), nil, 0o644); err != nil {
					panic(err)
				}
				return filepath.Join(f.destDir, "file", "app.conf")
			},
			want: []string{"cannot write", "not a directory"},
		},
		{
			name:     "destination is a directory",
			template: ptr("static"),
			dest: func(f configFixture) string {
				dest := filepath.Join(f.destDir, "app.conf")
				if err := os.MkdirAll(filepath.Join(dest, "inside"), 0o755); err != nil {
					panic(err)
				}
				return dest
			},
			want: []string{"cannot write", "replacing the file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newConfigFixture(t)
			dest := filepath.Join(f.destDir, "app.conf")
			if tc.dest != nil {
				dest = tc.dest(f)
			}
			if tc.template != nil {
				f.addTemplate(t, filepath.Base(dest), *tc.template)
			}
			c := f.config(dest, tc.iface)
			c.InterfaceAddrs = tc.addrs
			if tc.hostname != nil {
				c.Hostname = tc.hostname
			}

			rec := &statusRecorder{}
			err := c.Wait(context.Background(), rec.report)
			requireTerminal(t, err, append([]string{c.TemplatePath(), dest}, tc.want...)...)

			if info, statErr := os.Stat(dest); statErr == nil && !info.IsDir() {
				t.Errorf("%s was written although rendering failed", dest)
			}
			requireNoTempFiles(t, filepath.Dir(dest))
			if all := rec.all(); len(all) != 1 || all[0].Ready || all[0].Reason == "" {
				t.Errorf("reported %+v, want one not-ready status with a reason", all)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// requireNoTempFiles fails if dir holds anything but final files.
func requireNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // a directory that could not be created holds nothing
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", filepath.Join(dir, e.Name()))
		}
	}
}

func TestConfigCreatesParentDirectory(t *testing.T) {
	f := newConfigFixture(t)
	f.addTemplate(t, "nova.conf", "[DEFAULT]\n")
	dest := filepath.Join(f.destDir, "nova", "deep", "nova.conf")
	if err := f.config(dest, "").Wait(context.Background(), nil); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := readFile(t, dest); got != "[DEFAULT]\n" {
		t.Errorf("rendered %q", got)
	}
}

func TestConfigReplacesExistingFile(t *testing.T) {
	f := newConfigFixture(t)
	f.addTemplate(t, "app.conf", "new")
	if err := os.MkdirAll(f.destDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(f.destDir, "app.conf")
	if err := os.WriteFile(dest, []byte("old content that is longer than the new one"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := f.config(dest, "").Wait(context.Background(), nil); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := readFile(t, dest); got != "new" {
		t.Errorf("rendered %q, want %q", got, "new")
	}
	info, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o644 {
		t.Errorf("mode %v, want 0644", mode)
	}
	entries, err := os.ReadDir(f.destDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only app.conf: %v", len(entries), entries)
	}
}

func TestConfigFailureKeepsExistingFile(t *testing.T) {
	f := newConfigFixture(t)
	f.addTemplate(t, "app.conf", "{{.IP}}")
	if err := os.MkdirAll(f.destDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(f.destDir, "app.conf")
	if err := os.WriteFile(dest, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	requireTerminal(t, f.config(dest, "").Wait(context.Background(), nil), "INTERFACE_NAME")
	if got := readFile(t, dest); got != "old" {
		t.Errorf("destination now holds %q, want it untouched", got)
	}
}

// TestConfigReadersNeverSeePartialContent re-renders a large file while readers
// keep opening it: each read must be one complete version. Writing the file in
// place would expose empty or truncated content here.
func TestConfigReadersNeverSeePartialContent(t *testing.T) {
	f := newConfigFixture(t)
	versions := [][]byte{bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1<<20)}
	if err := os.MkdirAll(f.destDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(f.destDir, "big.conf")
	if err := os.WriteFile(dest, versions[0], 0o644); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := os.ReadFile(dest)
				if err != nil {
					t.Errorf("read during rewrite: %v", err)
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					t.Errorf("read %d bytes that are neither version", len(got))
					return
				}
				reads.Add(1)
			}
		}()
	}

	for i := range 20 {
		f.addTemplate(t, "big.conf", string(versions[(i+1)%2]))
		if err := f.config(dest, "").Wait(context.Background(), nil); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Error("readers never read; the test proved nothing")
	}
	requireNoTempFiles(t, f.destDir)
}

func TestConfigCancelledContext(t *testing.T) {
	f := newConfigFixture(t)
	f.addTemplate(t, "app.conf", "static")
	dest := filepath.Join(f.destDir, "app.conf")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.config(dest, "").Wait(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written after the context ended", dest)
	}
}

func TestConfigEmptyDestinationIsTerminal(t *testing.T) {
	requireTerminal(t, (&Config{}).Wait(context.Background(), nil), "not a file path")
}

// Injected pods get POD_IP from the downward API and no INTERFACE_NAME: .IP is the
// pod's IP then; an interface, when named, still wins.
func TestConfigPodIP(t *testing.T) {
	f := newConfigFixture(t)
	f.addTemplate(t, "node.conf", "{{.IP}} {{.IP_ERLANG}}")
	for _, tc := range []struct{ iface, want string }{{"", "10.244.0.7 10,244,0,7"}, {"lo", "127.0.0.1 127,0,0,1"}} {
		dest := filepath.Join(f.destDir, "node.conf")
		c := &Config{Destination: dest, TemplateDir: f.templateDir, InterfaceName: tc.iface, PodIP: "10.244.0.7"}
		if err := c.Wait(context.Background(), nil); err != nil {
			t.Fatalf("interface %q: %v", tc.iface, err)
		}
		if got := readFile(t, dest); got != tc.want {
			t.Errorf("interface %q: rendered %q, want %q", tc.iface, got, tc.want)
		}
	}
}
