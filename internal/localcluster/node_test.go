package localcluster

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// containerd's configuration keeps everything it writes under the state directory: every
// path in it is there, except the binaries it runs (the cached shim, Debian's runc and
// CNI plugins).
func TestContainerdConfigPaths(t *testing.T) {
	t.Setenv("KE_CACHE", "/cache")
	t.Setenv("CONTAINERD_VERSION", "")
	dir := "/tmp/ke-test"
	c, err := New(Options{Dir: dir, Repo: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	conf := c.containerdConfig()
	for _, want := range []string{
		"version = 3",
		`socket_dir = "/tmp/ke-test/containerd/s"`,
		`runtime_path = "/cache/containerd-` + defaultContainerdVersion + `/containerd-shim-runc-v2"`,
		`sandbox = "` + pauseImage + `"`,
		`snapshotter = "overlayfs"`,
		"SystemdCgroup = false",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("the configuration lacks %s:\n%s", want, conf)
		}
	}
	binaries := map[string]bool{
		c.ctrdBin("containerd-shim-runc-v2"): true,
		runcPath:                             true,
		"/usr/lib/cni":                       true,
	}
	paths := regexp.MustCompile(`"(/[^"]*)"`).FindAllStringSubmatch(conf, -1)
	if len(paths) < 5 {
		t.Fatalf("found %d paths in the configuration:\n%s", len(paths), conf)
	}
	for _, m := range paths {
		if p := m[1]; !binaries[p] && !strings.HasPrefix(p, dir+"/") {
			t.Errorf("%s is outside the state directory %s", p, dir)
		}
	}
}

// A state directory whose path is too long for the shims' sockets leaves them in
// containerd's default place, where down looks for them as well.
func TestShimSocketDir(t *testing.T) {
	short, err := New(Options{Dir: "/tmp/ke-cluster", Repo: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := short.shimSocketDir(), "/tmp/ke-cluster/containerd/s"; got != want {
		t.Errorf("shimSocketDir = %s, want %s", got, want)
	}
	long, err := New(Options{Dir: filepath.Join(os.TempDir(), strings.Repeat("x", 40)), Repo: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := long.shimSocketDir(); got != defaultShimSocketDir {
		t.Errorf("shimSocketDir = %s, want %s", got, defaultShimSocketDir)
	}
	if strings.Contains(long.containerdConfig(), "socket_dir") {
		t.Errorf("socket_dir set for a long state directory:\n%s", long.containerdConfig())
	}
}
