package release

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file or directory of a layer.
type entry struct {
	dir  bool
	mode int64
	uid  int
	data []byte
}

// tree is a layer's file system by absolute path; parents are added as 0755
// directories owned by root.
type tree struct{ entries map[string]entry }

func newTree() *tree { return &tree{entries: map[string]entry{}} }

func (t *tree) dir(p string, mode int64, uid int) {
	t.parents(p)
	t.entries[clean(p)] = entry{dir: true, mode: mode, uid: uid}
}

func (t *tree) file(p string, mode int64, data []byte) {
	t.parents(p)
	t.entries[clean(p)] = entry{mode: mode, data: data}
}

func (t *tree) parents(p string) {
	for d := path.Dir(clean(p)); d != "." && d != ""; d = path.Dir(d) {
		if _, ok := t.entries[d]; !ok {
			t.entries[d] = entry{dir: true, mode: 0o755}
		}
	}
}

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// tar writes the tree in path order (a parent sorts before its children), every
// time stamp mtime, no user or group names: the same tree gives the same bytes.
func (t *tree) tar(mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range t.entries {
			if !yield(k) {
				return
			}
		}
	}) {
		e := t.entries[name]
		h := &tar.Header{Name: name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// layer is the tree as an OCI layer, gzip-compressed (Go's gzip writes no time
// or name into its header, so the compressed bytes are as stable as the tar).
func (t *tree) layer(mtime time.Time) (v1.Layer, error) {
	data, err := t.tar(mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}
