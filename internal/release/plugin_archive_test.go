package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"slices"
	"testing"
	"time"
)

// archivedFile is an entry read back from an archive.
type archivedFile struct {
	Name     string
	Mode     fs.FileMode
	Modified time.Time
	UID, GID int
	Data     string
}

func readTarGz(t *testing.T, b []byte) []archivedFile {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header: time %v, name %q; want neither", zr.ModTime, zr.Name)
	}
	var out []archivedFile
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: type %q, owner %q:%q", h.Name, h.Typeflag, h.Uname, h.Gname)
		}
		out = append(out, archivedFile{h.Name, fs.FileMode(h.Mode), h.ModTime.UTC(), h.Uid, h.Gid, string(data)})
	}
}

func readZip(t *testing.T, b []byte) []archivedFile {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out []archivedFile
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, archivedFile{f.Name, f.Mode().Perm(), f.Modified.UTC(), 0, 0, string(data)})
	}
	return out
}

// TestPluginArchives: both formats hold the files sorted by name, with their modes,
// the one mtime and owner 0:0, and write the same bytes for the same input in any
// order; another mtime changes the bytes.
func TestPluginArchives(t *testing.T) {
	epoch := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	files := []pluginFile{
		{Name: "README.md", Mode: 0o644, Data: []byte("readme\n")},
		{Name: "kubectl-entrypoint", Mode: 0o755, Data: []byte("\x7fELF binary")},
		{Name: "LICENSE", Mode: 0o644, Data: []byte("license\n")},
	}
	want := []archivedFile{
		{"LICENSE", 0o644, epoch, 0, 0, "license\n"},
		{"README.md", 0o644, epoch, 0, 0, "readme\n"},
		{"kubectl-entrypoint", 0o755, epoch, 0, 0, "\x7fELF binary"},
	}
	for _, tc := range []struct {
		name  string
		write func(io.Writer, []pluginFile, time.Time) error
		read  func(*testing.T, []byte) []archivedFile
	}{
		{"tar.gz", writePluginTarGz, readTarGz},
		{"zip", writePluginZip, readZip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write := func(files []pluginFile, mtime time.Time) []byte {
				var b bytes.Buffer
				if err := tc.write(&b, files, mtime); err != nil {
					t.Fatal(err)
				}
				return b.Bytes()
			}
			first := write(files, epoch)
			if got := tc.read(t, first); !slices.Equal(got, want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, want)
			}
			reversed := slices.Clone(files)
			slices.Reverse(reversed)
			// Sub-second parts of the epoch are dropped, as archives keep seconds.
			if again := write(reversed, epoch.Add(300*time.Millisecond)); !bytes.Equal(first, again) {
				t.Error("the same files in another order made other bytes")
			}
			if later := write(files, epoch.Add(time.Second)); bytes.Equal(first, later) {
				t.Error("another mtime made the same bytes: the mtime is not written")
			}
		})
	}
}

func TestPluginArchiveName(t *testing.T) {
	for _, tc := range []struct {
		p         OSArch
		name, bin string
	}{
		{OSArch{"linux", "amd64"}, "kubectl-entrypoint_1.2.3_linux_amd64.tar.gz", "kubectl-entrypoint"},
		{OSArch{"darwin", "arm64"}, "kubectl-entrypoint_1.2.3_darwin_arm64.tar.gz", "kubectl-entrypoint"},
		{OSArch{"windows", "amd64"}, "kubectl-entrypoint_1.2.3_windows_amd64.zip", "kubectl-entrypoint.exe"},
	} {
		if got := PluginArchiveName("1.2.3", tc.p); got != tc.name {
			t.Errorf("PluginArchiveName(%s) = %q, want %q", tc.p, got, tc.name)
		}
		if got := PluginBin(tc.p); got != tc.bin {
			t.Errorf("PluginBin(%s) = %q, want %q", tc.p, got, tc.bin)
		}
	}
}

func TestParseOSArch(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    OSArch
		wantErr bool
	}{
		{"linux/amd64", OSArch{"linux", "amd64"}, false},
		{"windows/arm64", OSArch{"windows", "arm64"}, false},
		{"linux", OSArch{}, true},
		{"linux/", OSArch{}, true},
		{"/amd64", OSArch{}, true},
		{"linux/arm/v7", OSArch{}, true},
	} {
		got, err := ParseOSArch(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseOSArch(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
