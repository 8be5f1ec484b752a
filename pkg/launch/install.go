package launch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// installedMode lets any user run the copy (the application container may run as a
// different uid than the init container) and nobody modify it.
const installedMode fs.FileMode = 0o555

// Install copies the running executable (symlinks resolved) to dir/BinaryName and
// returns that path. It is what the webhook's init container runs
// (`kubernetes-entrypoint install DIR`), so it needs no shell and no cp.
func Install(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot install %s: finding the running executable: %w", BinaryName, err)
	}
	resolved, err := filepath.EvalSymlinks(self)
	if err != nil {
		return "", fmt.Errorf("cannot install %s: resolving the running executable %q: %w", BinaryName, self, err)
	}
	return InstallFrom(resolved, dir)
}

// InstallFrom copies the regular file src to dir/BinaryName, mode 0555, and returns
// that path. The copy is written to a temporary file in dir and renamed into place,
// so a reader never sees a partial binary and an existing copy, even one that is
// running, is replaced rather than overwritten. dir must already exist.
func InstallFrom(src, dir string) (string, error) {
	if err := checkInstallDir(dir); err != nil {
		return "", err
	}
	source, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("cannot install %s: opening the source: %w", BinaryName, err)
	}
	defer source.Close()
	info, err := source.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot install %s: %w", BinaryName, err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("cannot install %s: source %q is not a regular file (%v)", BinaryName, src, info.Mode().Type())
	}

	dest := filepath.Join(dir, BinaryName)
	if err := writeExecutable(dest, source); err != nil {
		return "", fmt.Errorf("cannot install %s from %q: %w", BinaryName, src, err)
	}
	return dest, nil
}

func checkInstallDir(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot install %s: directory %q does not exist; "+
			"is the shared emptyDir volume mounted there in the init container? (%w)", BinaryName, dir, err)
	case err != nil:
		return fmt.Errorf("cannot install %s: checking directory %q: %w", BinaryName, dir, err)
	case !info.IsDir():
		return fmt.Errorf("cannot install %s: %q is not a directory (%v); "+
			"the init container must mount the shared emptyDir volume there", BinaryName, dir, info.Mode().Type())
	}
	return nil
}

// writeExecutable writes content to dest atomically: temporary file in the same
// directory, copy, chmod, fsync, rename. On failure the temporary file is removed and
// dest is left as it was. The directory itself is not fsynced: the target is an
// emptyDir, and whenever the pod's sandbox is re-created the init container runs again.
func writeExecutable(dest string, content io.Reader) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close() // may already be closed; only the cleanup matters here
			os.Remove(tmp.Name())
		}
	}()

	if _, err := io.Copy(tmp, content); err != nil {
		return fmt.Errorf("copying to %q: %w", tmp.Name(), err)
	}
	// Chmod on the descriptor, so the process umask does not apply.
	if err := tmp.Chmod(installedMode); err != nil {
		return fmt.Errorf("setting mode %v on %q: %w", installedMode, tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("flushing %q to disk: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %q: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("moving the copy into place: %w", err)
	}
	return nil
}
