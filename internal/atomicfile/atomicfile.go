// Package atomicfile replaces a file atomically: the content goes to a
// temporary file in the target's directory (same filesystem, so the rename
// is atomic) which is then renamed over the target. A reader sees the old
// file or the new one, never a partial one, and a symlink at the target is
// replaced, never followed.
//
// The package imports only the standard library: the CNI plugin uses it, and
// its import graph is kept lean.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how the file is written. The zero value writes a file with
// os.CreateTemp's mode (0600 less the umask) and no fsync.
type Options struct {
	// TempPattern is the os.CreateTemp pattern of the temporary file's name;
	// empty means "."+base+".tmp-*". A leading dot keeps programs that scan
	// the directory (runtimes looking for plugins) from picking it up.
	TempPattern string
	// Perm, when non-zero, is set on the temporary file (on its descriptor,
	// so no name is followed) before the rename.
	Perm fs.FileMode
	// Sync fsyncs the file before the rename, so a crash cannot leave the
	// target's name on a file whose content never reached the disk.
	Sync bool
	// SyncDir fsyncs the directory after the rename to persist the rename
	// itself. It is best effort: a failure there leaves a correct file, so it
	// is not reported.
	SyncDir bool
}

// Write replaces path with what fill writes. The temporary file is created
// with O_EXCL, so an existing file or symlink of that name is never opened.
// On any failure the temporary file is removed and path is left as it was.
func Write(path string, o Options, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	pattern := o.TempPattern
	if pattern == "" {
		pattern = "." + filepath.Base(path) + ".tmp-*"
	}
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("create temporary file next to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close() // a second Close after a failed one only returns an error
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if o.Perm != 0 {
		if err = tmp.Chmod(o.Perm); err != nil {
			return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
		}
	}
	if o.Sync {
		if err = tmp.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmp.Name(), err)
		}
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if o.SyncDir {
		if d, derr := os.Open(dir); derr == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}

// WriteFile replaces path with data; see Write.
func WriteFile(path string, data []byte, o Options) error {
	return Write(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
