package local

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFileAtomically replaces path with data so that a reader sees either the
// old file or the whole new one, never a partial write, even if we crash
// midway. It writes a temporary file in the same directory (rename is atomic
// only within one file system), flushes it to disk, and renames it over path.
// The parent directory is created when missing.
func writeFileAtomically(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the directory: %w", err)
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("flushing to disk: %w", err)
	}
	// CreateTemp makes the file 0600; the application reading it may run as
	// another user. Chmod is not subject to the umask, so perm holds exactly.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("setting permissions: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing the file: %w", err)
	}

	// Make the rename itself durable. Some file systems cannot sync a
	// directory; the file is already in place, so that is not worth failing for.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
