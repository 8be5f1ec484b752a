package release

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ChecksumsFile is the release directory's list of sha256 sums.
const ChecksumsFile = "checksums.txt"

// Checksum is one line of ChecksumsFile.
type Checksum struct {
	SHA256 string // hex
	Path   string // relative to the release directory, slash-separated
}

// Checksums are the sha256 sums of every regular file under dir but ChecksumsFile,
// sorted by path (byte order, as sort(1) with LC_ALL=C). A symlink or other
// special file is an error: a release holds files only.
func Checksums(dir string) ([]Checksum, error) {
	var out []Checksum
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file (%s): a release directory holds files only", rel, d.Type())
		case rel == ChecksumsFile:
			return nil
		}
		sum, err := fileSHA256(p)
		if err != nil {
			return err
		}
		out = append(out, Checksum{SHA256: sum, Path: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checksums of %s: %w", dir, err)
	}
	slices.SortFunc(out, func(a, b Checksum) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// FormatChecksums is sums in sha256sum's format ("<hex>  <path>"), which
// `sha256sum -c checksums.txt` checks from the release directory.
func FormatChecksums(sums []Checksum) []byte {
	var b strings.Builder
	for _, s := range sums {
		fmt.Fprintf(&b, "%s  %s\n", s.SHA256, s.Path)
	}
	return []byte(b.String())
}

var checksumLine = regexp.MustCompile(`^([0-9a-f]{64})  ([^\n]+)$`)

// ParseChecksums reads FormatChecksums' output.
func ParseChecksums(r io.Reader) ([]Checksum, error) {
	var out []Checksum
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		m := checksumLine.FindStringSubmatch(sc.Text())
		if m == nil {
			return nil, fmt.Errorf("line %d: %q is not \"<sha256>  <path>\"", n, sc.Text())
		}
		out = append(out, Checksum{SHA256: m[1], Path: m[2]})
	}
	return out, sc.Err()
}

// WriteChecksums writes dir/ChecksumsFile over every other file in dir; it runs
// last, when the release directory is complete.
func WriteChecksums(dir string) error {
	sums, err := Checksums(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ChecksumsFile), FormatChecksums(sums), 0o644)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
