package release

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Digests of known strings, as sha256sum prints them.
const (
	sha256abc   = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	sha256empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// TestChecksums: every file but checksums.txt, at any depth, sorted by path in byte
// order, in sha256sum's format, which sha256sum -c accepts and ParseChecksums reads
// back.
func TestChecksums(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"plugin/b.tar.gz":          "abc",
		"plugin/a.zip":             "",
		"charts/x-1.2.3.tgz":       "abc",
		"images/ke/blobs/sha256/0": "",
		"Z-upper-first.txt":        "abc",
		"checksums.txt":            "stale, not listed",
	})
	if err := WriteChecksums(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, ChecksumsFile))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256abc + "  Z-upper-first.txt\n" +
		sha256abc + "  charts/x-1.2.3.tgz\n" +
		sha256empty + "  images/ke/blobs/sha256/0\n" +
		sha256empty + "  plugin/a.zip\n" +
		sha256abc + "  plugin/b.tar.gz\n"
	if string(got) != want {
		t.Errorf("checksums.txt:\n%s\nwant:\n%s", got, want)
	}
	// Again, over a tree that now holds checksums.txt: the same bytes.
	if err := WriteChecksums(dir); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, ChecksumsFile)); !bytes.Equal(again, got) {
		t.Errorf("a second run wrote other sums:\n%s", again)
	}
	parsed, err := ParseChecksums(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := Checksums(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parsed, sums) {
		t.Errorf("parsed %v, want %v", parsed, sums)
	}
	if sha256sum, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha256sum, "--strict", "-c", ChecksumsFile)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}
}

func TestChecksumsRefuseSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "abc"})
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := Checksums(dir); err == nil || !strings.Contains(err.Error(), "link: not a regular file") {
		t.Errorf("error %v, want one naming the symlink", err)
	}
}

func TestParseChecksums(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Checksum
		wantErr  bool
	}{
		{"two", sha256abc + "  a\n" + sha256empty + "  dir/b c\n", []Checksum{{sha256abc, "a"}, {sha256empty, "dir/b c"}}, false},
		{"empty", "", nil, false},
		{"one space", sha256abc + " a\n", nil, true},
		{"binary mark", sha256abc + " *a\n", nil, true},
		{"short digest", "abc  a\n", nil, true},
		{"uppercase digest", strings.ToUpper(sha256abc) + "  a\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChecksums(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
