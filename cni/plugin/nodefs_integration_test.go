//go:build integration

package plugin_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nodeFilesystems mounts, for the benchmark's fake node, the file systems a
// real node has under the plugin's paths, and returns a kubelet root and a
// short socket directory on them:
//
//   - the kubelet root (where pod emptyDirs live) on a journaled ext4, the
//     default of mkfs.ext4 and of every distribution's root file system,
//     here on a loop device;
//   - the short socket directory on tmpfs, as /run is on systemd nodes.
//
// The machines this runs on have an ext4 root without a journal, and
// without a journal ext4 checks every free inode it considers against the
// recently deleted ones (fs/ext4/ialloc.c, recently_deleted): every mkdir
// and symlink of a create-and-delete benchmark pays a scan that no real
// node pays, and only the plugin makes files, not its baselines.
func nodeFilesystems(b *testing.B) (root, short string) {
	b.Helper()
	dir := b.TempDir()
	img, root, short := filepath.Join(dir, "kubelet.img"), filepath.Join(dir, "kubelet"), filepath.Join(dir, "run")
	for _, d := range []string{root, short} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		b.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v: %s (the benchmark needs e2fsprogs, loop devices and tmpfs: it mounts the node's file systems)", name, args, err, out)
		}
	}
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	// Sparse: blocks only as the file system writes them.
	if err := f.Truncate(256 << 20); err != nil {
		b.Fatal(err)
	}
	f.Close()
	run("mkfs.ext4", "-q", "-F", "-j", img)
	run("mount", "-o", "loop", img, root)
	b.Cleanup(func() { _ = exec.Command("umount", root).Run() })
	run("mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "vhu-bench-run", short)
	b.Cleanup(func() { _ = exec.Command("umount", short).Run() })
	return root, short
}
