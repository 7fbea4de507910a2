package cniinstall

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func sum(b string) string {
	h := sha256.Sum256([]byte(b))
	return hex.EncodeToString(h[:])
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestInstall(t *testing.T) {
	tests := []struct {
		name        string
		existing    func(t *testing.T, dst string) // prepares dst before Install
		wantChanged bool
		wantErr     string
	}{
		{name: "fresh node", existing: func(*testing.T, string) {}, wantChanged: true},
		{name: "older binary", existing: func(t *testing.T, dst string) { write(t, dst, "old", 0o755) }, wantChanged: true},
		{name: "same content wrong mode", existing: func(t *testing.T, dst string) { write(t, dst, "new plugin", 0o777) }, wantChanged: true},
		{name: "identical binary", existing: func(t *testing.T, dst string) { write(t, dst, "new plugin", 0o755) }, wantChanged: false},
		{name: "symlink is replaced, target untouched", existing: func(t *testing.T, dst string) {
			target := filepath.Join(filepath.Dir(filepath.Dir(dst)), "victim")
			write(t, target, "victim", 0o644)
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
		}, wantChanged: true},
		{name: "directory in the way", existing: func(t *testing.T, dst string) {
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			src := filepath.Join(root, "src")
			write(t, src, "new plugin", 0o600)
			dstDir := filepath.Join(root, "bin")
			if err := os.Mkdir(dstDir, 0o755); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dstDir, "vhostuser")
			tc.existing(t, dst)

			res, err := Install(src, dstDir, "vhostuser")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Install error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Install: %v", err)
			}
			if res.Changed != tc.wantChanged {
				t.Errorf("Changed = %v, want %v", res.Changed, tc.wantChanged)
			}
			if res.SHA256 != sum("new plugin") || res.Path != dst {
				t.Errorf("result = %+v", res)
			}
			if err := Verify(dst, sum("new plugin")); err != nil {
				t.Errorf("installed binary does not verify: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "victim")); err == nil && string(b) != "victim" {
				t.Errorf("symlink target was overwritten: %q", b)
			}
			leftovers, _ := filepath.Glob(filepath.Join(dstDir, ".*"))
			if len(leftovers) != 0 {
				t.Errorf("temporary files left in the CNI bin dir: %v", leftovers)
			}
		})
	}
}

// An unchanged binary keeps its inode: a restart of the DaemonSet does not
// touch a binary kubelet may be executing.
func TestInstallIdempotentKeepsInode(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	write(t, src, "plugin", 0o755)
	dstDir := filepath.Join(root, "bin")
	if err := os.Mkdir(dstDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(src, dstDir, "vhostuser"); err != nil {
		t.Fatal(err)
	}
	before := inode(t, filepath.Join(dstDir, "vhostuser"))
	res, err := Install(src, dstDir, "vhostuser")
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || inode(t, filepath.Join(dstDir, "vhostuser")) != before {
		t.Errorf("second install replaced an identical binary")
	}
	// An upgrade swaps the inode: an exec in flight keeps the old file.
	write(t, src, "plugin v2", 0o755)
	if res, err = Install(src, dstDir, "vhostuser"); err != nil || !res.Changed {
		t.Fatalf("upgrade: %+v, %v", res, err)
	}
	if inode(t, filepath.Join(dstDir, "vhostuser")) == before {
		t.Errorf("upgrade rewrote the binary in place instead of renaming a new file over it")
	}
}

func TestInstallBadInput(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src")
	write(t, src, "plugin", 0o755)
	tests := []struct {
		name, src, dstDir, bin, wantErr string
	}{
		{"missing source", filepath.Join(root, "nope"), root, "vhostuser", "read source binary"},
		{"source is a directory", root, root, "vhostuser", "not a regular file"},
		{"missing destination", src, filepath.Join(root, "nope"), "vhostuser", "host CNI bin directory mounted"},
		{"destination is a file", src, src, "vhostuser", "not a directory"},
		{"empty destination", src, "", "vhostuser", "-dst-dir"},
		{"name with slash", src, root, "../evil", "single file name"},
		{"name dotdot", src, root, "..", "single file name"},
		{"empty name", src, root, "", "single file name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Install(tc.src, tc.dstDir, tc.bin)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Install error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "evil")); !os.IsNotExist(err) {
		t.Errorf("a hostile name wrote outside the destination")
	}
}

func TestMarkerAndProbe(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "vhostuser")
	write(t, bin, "plugin", 0o755)
	marker := filepath.Join(root, "ready")

	if err := Probe(marker); err == nil {
		t.Fatal("probe passed without a marker")
	}
	if err := WriteMarker(marker, Result{Path: bin, SHA256: sum("plugin")}, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := Probe(marker); err != nil {
		t.Fatalf("probe after install: %v", err)
	}
	b, _ := os.ReadFile(marker)
	if !strings.Contains(string(b), "version=v1") {
		t.Errorf("marker lacks the version: %q", b)
	}

	write(t, bin, "tampered", 0o755)
	if err := Probe(marker); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("probe of a modified binary = %v, want a digest mismatch", err)
	}
	os.Remove(bin)
	if err := Probe(marker); err == nil {
		t.Errorf("probe passed with the binary removed from the node")
	}
	write(t, marker, "garbage", 0o644)
	if err := Probe(marker); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("probe of a corrupt marker = %v", err)
	}
	if err := RemoveMarker(marker); err != nil {
		t.Fatal(err)
	}
	if err := RemoveMarker(marker); err != nil {
		t.Errorf("removing a missing marker: %v", err)
	}
}

func TestEnsureDir(t *testing.T) {
	root := t.TempDir()
	link := filepath.Join(root, "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "file")
	write(t, file, "", 0o644)
	tests := []struct {
		name, dir, wantErr string
	}{
		{"new nested", filepath.Join(root, "a", "b"), ""},
		{"existing", root, ""},
		{"symlink", link, "not a directory"},
		{"regular file", file, "create"},
		{"relative", "run/vhostuser", "absolute"},
		{"unclean", root + "/a/../a", "clean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := EnsureDir(tc.dir, 0o755)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("EnsureDir: %v", err)
				}
				if fi, serr := os.Lstat(tc.dir); serr != nil || !fi.IsDir() {
					t.Fatalf("directory missing after EnsureDir: %v", serr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("EnsureDir error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
