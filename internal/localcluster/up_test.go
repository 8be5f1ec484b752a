package localcluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// What an earlier cluster killed before its down leaves (etcd's data above all) counts as
// leftover state, which up takes down before starting; the logs, kept by every down, do not.
func TestLeftoverState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	c, err := New(Options{Dir: dir, Repo: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if left := c.leftoverState(); left != nil {
		t.Fatalf("no state directory yet: want nothing left, got %v", left)
	}
	if err := os.MkdirAll(c.Path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path("logs", "etcd.log"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if left := c.leftoverState(); left != nil {
		t.Fatalf("only logs, as after a clean down: want nothing left, got %v", left)
	}
	for _, d := range []string{"etcd/member", "pki"} {
		if err := os.MkdirAll(c.Path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.leftoverState(), []string{"etcd", "pki"}; !slices.Equal(got, want) {
		t.Fatalf("after a killed run: got %v, want %v", got, want)
	}
}
