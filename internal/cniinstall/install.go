// Package cniinstall puts the vhostuser CNI binary into the host's CNI bin
// directory, the job of the DaemonSet's installer container.
//
// The copy is atomic: a temporary file in the destination directory is
// written, synced and renamed over the target, so kubelet/Multus never exec a
// half-written binary, even while pods are being created during an upgrade.
// An identical binary already in place is left untouched (no rename, no new
// inode), so restarts of the DaemonSet are free.
package cniinstall

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/internal/atomicfile"
)

// BinaryMode is the mode of the installed plugin: executable by the runtime, writable by root only.
const BinaryMode fs.FileMode = 0o755

// Result says what Install did.
type Result struct {
	Path    string // the installed binary
	SHA256  string // hex digest of its content
	Changed bool   // false when an identical binary was already there
}

// Install copies the regular file src to dstDir/name atomically and verifies
// the result by digest. dstDir must be an existing directory; name must be a
// single path element.
func Install(src, dstDir, name string) (Result, error) {
	if err := checkName(name); err != nil {
		return Result{}, err
	}
	want, err := digestFile(src)
	if err != nil {
		return Result{}, fmt.Errorf("read source binary: %w", err)
	}
	if err := checkDir(dstDir); err != nil {
		return Result{}, err
	}
	dst := filepath.Join(dstDir, name)
	res := Result{Path: dst, SHA256: want}

	if same, err := identical(dst, want); err != nil {
		return Result{}, err
	} else if same {
		return res, nil
	}

	if err := copyAtomic(src, dst); err != nil {
		return Result{}, err
	}
	res.Changed = true
	if err := Verify(dst, want); err != nil {
		return Result{}, err
	}
	return res, nil
}

// Verify checks that path is a regular executable file with the given digest.
func Verify(path, wantSHA256 string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("verify %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Mode().Perm() != BinaryMode {
		return fmt.Errorf("verify %s: mode %v, want %v", path, fi.Mode().Perm(), BinaryMode)
	}
	got, err := digestFile(path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if got != wantSHA256 {
		return fmt.Errorf("verify %s: sha256 %s, want %s", path, got, wantSHA256)
	}
	return nil
}

// identical reports whether dst is already a regular file with the digest
// and mode we would install. A symlink or anything else at dst is replaced
// (rename replaces the link itself, never its target).
func identical(dst, want string) (bool, error) {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", dst, err)
	}
	if fi.IsDir() {
		return false, fmt.Errorf("%s is a directory: remove it or choose another binary name", dst)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != BinaryMode {
		return false, nil
	}
	got, err := digestFile(dst)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", dst, err)
	}
	return got == want, nil
}

func copyAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open source binary: %w", err)
	}
	defer in.Close()
	// Synced, and the directory too: the binary must survive a node crash
	// right after the install reported ready.
	return atomicfile.Write(dst, atomicfile.Options{Perm: BinaryMode, Sync: true, SyncDir: true}, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// WriteMarker atomically writes the readiness marker the DaemonSet's probe
// checks. Its content names what was installed, for humans.
func WriteMarker(path string, r Result, version string) error {
	if path == "" {
		return fmt.Errorf("marker path is empty")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "path=%s\nsha256=%s\nversion=%s\n", r.Path, r.SHA256, version)
	if err := atomicfile.WriteFile(path, b.Bytes(), atomicfile.Options{Perm: 0o644}); err != nil {
		return fmt.Errorf("write marker %s: %w", path, err)
	}
	return nil
}

// WriteFile writes data to path atomically (temporary file in the same
// directory, then rename) with mode perm; the directory is created 0755.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	if err := EnsureDir(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{Perm: perm, Sync: true}); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// RemoveMarker deletes the readiness marker; a missing marker is fine.
func RemoveMarker(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove marker %s: %w", path, err)
	}
	return nil
}

func digestFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func checkDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("destination directory is empty: set -dst-dir to the mounted host CNI bin directory")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("destination directory: %w (is the host CNI bin directory mounted?)", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("destination %s is not a directory", dir)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("binary name %q must be a single file name such as vhostuser", name)
	}
	return nil
}

// ParseMarker reads a marker written by WriteMarker and returns the installed
// path and digest it records.
func ParseMarker(path string) (binPath, sha string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read marker: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "path":
			binPath = v
		case "sha256":
			sha = v
		}
	}
	if binPath == "" || sha == "" {
		return "", "", fmt.Errorf("marker %s lacks path= or sha256=", path)
	}
	return binPath, sha, nil
}

// Probe is the readiness check: the marker exists and the binary it names is
// still in place, unmodified.
func Probe(marker string) error {
	binPath, sha, err := ParseMarker(marker)
	if err != nil {
		return err
	}
	return Verify(binPath, sha)
}

// EnsureDir creates dir (and parents) with mode perm when missing and checks
// that it is a real directory, not a symlink someone planted.
func EnsureDir(dir string, perm fs.FileMode) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return fmt.Errorf("directory %q must be an absolute, clean path", dir)
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (%s): remove it", dir, fi.Mode().Type())
	}
	return nil
}
