//go:build unix

package launch

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dirEntries lists the names in dir, to prove no temporary file was left behind.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, entry := range entries {
		names = append(names, entry.Name())
	}
	return names
}

func assertInstalled(t *testing.T, dir, dest string, want []byte) {
	t.Helper()
	if wantDest := filepath.Join(dir, BinaryName); dest != wantDest {
		t.Errorf("installed at %q, want %q", dest, wantDest)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("installed copy (%d bytes) differs from the source (%d bytes)", len(got), len(want))
	}
	info, err := os.Lstat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != 0o555 {
		t.Errorf("installed copy has mode %v, want a regular file with -r-xr-xr-x", info.Mode())
	}
	if names := dirEntries(t, dir); !slices.Equal(names, []string{BinaryName}) {
		t.Errorf("directory holds %q, want only %q", names, BinaryName)
	}
}

func TestInstallCopiesRunningBinaryAndTheCopyRuns(t *testing.T) {
	dir := t.TempDir()
	source, err := filepath.EvalSymlinks(testBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}

	dest, err := Install(dir)
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	assertInstalled(t, dir, dest, want)

	env := childEnv(roleEnv+"="+roleApp, "PATH="+os.Getenv("PATH"))
	report := decodeReport(t, runProcess(t, dest, []string{dest, "ok"}, env, ""))
	if wantArgs := []string{dest, "ok"}; !slices.Equal(report.Args, wantArgs) {
		t.Errorf("installed copy got argv %q, want %q", report.Args, wantArgs)
	}
}

func TestInstallFromReplacesExistingFile(t *testing.T) {
	source := filepath.Join(t.TempDir(), "source")
	writeFile(t, source, "new binary", 0o600)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, BinaryName), "old binary, longer than the new one", 0o444)

	dest, err := InstallFrom(source, dir)
	if err != nil {
		t.Fatalf("InstallFrom: %v", err)
	}
	assertInstalled(t, dir, dest, []byte("new binary"))
}

func TestInstallFromRejectsBadDirectory(t *testing.T) {
	source := filepath.Join(t.TempDir(), "source")
	writeFile(t, source, "binary", 0o755)

	missing := filepath.Join(t.TempDir(), "not-mounted")
	_, err := InstallFrom(source, missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "emptyDir") {
		t.Errorf("missing directory: error %v, want one that wraps fs.ErrNotExist and names %q and the emptyDir", err, missing)
	}

	_, err = InstallFrom(source, source)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") || !strings.Contains(err.Error(), source) {
		t.Errorf("file as directory: error %v, want one saying %q is not a directory", err, source)
	}
}

func TestInstallFromLeavesNothingBehindOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) (source string)
		wantErr string
	}{
		{"missing source", func(t *testing.T, dir string) string {
			return filepath.Join(t.TempDir(), "missing")
		}, "no such file"},
		{"source is a directory", func(t *testing.T, dir string) string {
			return t.TempDir()
		}, "not a regular file"},
		{"destination is a directory", func(t *testing.T, dir string) string {
			if err := os.Mkdir(filepath.Join(dir, BinaryName), 0o755); err != nil {
				t.Fatal(err)
			}
			source := filepath.Join(t.TempDir(), "source")
			writeFile(t, source, "binary", 0o755)
			return source
		}, "moving the copy into place"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			source := tc.prepare(t, dir)
			before := dirEntries(t, dir)

			_, err := InstallFrom(source, dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
			if after := dirEntries(t, dir); !slices.Equal(after, before) {
				t.Errorf("directory holds %q after the failure, want %q", after, before)
			}
		})
	}
}

// failingReader yields some bytes, then an error, like a source that breaks mid-copy.
type failingReader struct{ sent bool }

var errBrokenSource = errors.New("source broke mid-copy")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, errBrokenSource
	}
	r.sent = true
	return copy(p, "partial"), nil
}

func TestWriteExecutableKeepsOldFileWhenCopyFails(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, BinaryName)
	writeFile(t, dest, "old binary", 0o555)

	err := writeExecutable(dest, &failingReader{})
	if !errors.Is(err, errBrokenSource) {
		t.Fatalf("error %v, want it to wrap %v", err, errBrokenSource)
	}
	got, readErr := os.ReadFile(dest)
	if readErr != nil || string(got) != "old binary" {
		t.Errorf("destination now holds %q (%v), want the old binary untouched", got, readErr)
	}
	if names := dirEntries(t, dir); !slices.Equal(names, []string{BinaryName}) {
		t.Errorf("directory holds %q, want only %q", names, BinaryName)
	}
}
