package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	errFill := errors.New("fill failed")
	tests := []struct {
		name     string
		existing func(t *testing.T, path string) // prepares path before Write
		opts     Options
		fill     func(w io.Writer) error // nil: writes "new"
		wantErr  string                  // empty: success
		wantMode fs.FileMode             // on success
		wantTemp string                  // on success: the temporary name seen during fill matches this glob
	}{
		{name: "new file keeps CreateTemp's mode", existing: func(*testing.T, string) {}, wantMode: 0o600, wantTemp: ".target.tmp-*"},
		{name: "perm, sync, directory sync", existing: func(*testing.T, string) {},
			opts: Options{Perm: 0o755, Sync: true, SyncDir: true}, wantMode: 0o755, wantTemp: ".target.tmp-*"},
		{name: "perm beyond the umask", existing: func(*testing.T, string) {}, opts: Options{Perm: 0o666}, wantMode: 0o666, wantTemp: ".target.tmp-*"},
		{name: "custom temporary name", existing: func(*testing.T, string) {},
			opts: Options{TempPattern: ".target.*"}, wantMode: 0o600, wantTemp: ".target.[0-9]*"},
		{name: "existing file replaced", existing: func(t *testing.T, path string) { writeFile(t, path, "old") },
			opts: Options{Perm: 0o644}, wantMode: 0o644, wantTemp: ".target.tmp-*"},
		{name: "symlink replaced, target untouched", existing: func(t *testing.T, path string) {
			victim := filepath.Join(filepath.Dir(filepath.Dir(path)), "victim")
			writeFile(t, victim, "victim")
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
		}, opts: Options{Perm: 0o644}, wantMode: 0o644, wantTemp: ".target.tmp-*"},
		{name: "fill fails: old content kept", existing: func(t *testing.T, path string) { writeFile(t, path, "old") },
			fill:    func(w io.Writer) error { _, _ = io.WriteString(w, "partial"); return errFill },
			wantErr: "fill failed"},
		{name: "fill fails on a new file: nothing created", existing: func(*testing.T, string) {},
			opts: Options{Perm: 0o644, Sync: true}, fill: func(io.Writer) error { return errFill }, wantErr: "fill failed"},
		{name: "rename fails: directory in the way", existing: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(path, "keep"), "keep")
		}, opts: Options{Perm: 0o644, Sync: true, SyncDir: true}, wantErr: "replace"},
		{name: "directory missing", existing: func(t *testing.T, path string) {
			if err := os.Remove(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "create temporary file next to"},
		{name: "bad pattern", existing: func(*testing.T, string) {}, opts: Options{TempPattern: "a/b*"}, wantErr: "create temporary file next to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "dir")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "target")
			tc.existing(t, path)
			before := snapshot(t, root)

			var temps []string
			fillCalled := false
			err := Write(path, tc.opts, func(w io.Writer) error {
				fillCalled = true
				// The temporary file is in the target's directory while it is filled.
				temps, _ = filepath.Glob(filepath.Join(dir, ".*"))
				if tc.fill != nil {
					return tc.fill(w)
				}
				_, err := io.WriteString(w, "new")
				return err
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Write error = %v, want it to contain %q", err, tc.wantErr)
				}
				if tc.fill != nil && !errors.Is(err, errFill) {
					t.Errorf("Write error %v does not wrap the fill error", err)
				}
				if fillCalled && len(temps) != 1 {
					t.Errorf("temporary files during fill: %v, want one", temps)
				}
				// Failure cleanup: the tree is exactly as before, no temporary left.
				if after := snapshot(t, root); after != before {
					t.Errorf("tree changed by a failed Write:\nbefore %s\nafter  %s", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if len(temps) != 1 {
				t.Fatalf("temporary files during fill: %v, want one", temps)
			}
			if ok, _ := filepath.Match(tc.wantTemp, filepath.Base(temps[0])); !ok {
				t.Errorf("temporary file %s, want a name matching %q", temps[0], tc.wantTemp)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != tc.wantMode {
				t.Errorf("mode %v, want a regular file with %v", fi.Mode(), tc.wantMode)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "new" {
				t.Errorf("content %q, %v", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "victim")); err == nil && string(b) != "victim" {
				t.Errorf("symlink target was overwritten: %q", b)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// A replaced file gets a new inode: a reader holding the old file keeps it.
func TestWriteFileReplacesInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, "old")
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	before := inode(t, path)
	if err := WriteFile(path, []byte("new"), Options{Perm: 0o644, Sync: true}); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) == before {
		t.Error("the file was rewritten in place")
	}
	if b, _ := io.ReadAll(old); string(b) != "old" {
		t.Errorf("the old file's reader sees %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("content %q", b)
	}
}

// snapshot lists every name below root with its type and content, for
// comparing a tree before and after a failed Write.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + d.Type().String())
		if d.Type().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + string(c))
		}
		b.WriteString("; ")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
