package sockdir

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Check verifies that the volume root is sticky, vhostuser is ours and 0755,
// HostDir is a real directory with perms, and ShortLink points at it.
func Check(p socketpath.Paths, perms Perms) error {
	if fi, err := os.Lstat(p.VolumeDir); err != nil {
		return fmt.Errorf("pod volume %s: %w", p.VolumeDir, err)
	} else if fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("pod volume %s lost its sticky bit (mode %v): the pod could rename the socket directory", p.VolumeDir, fi.Mode())
	}
	socks := filepath.Join(p.VolumeDir, socketpath.SocketsDir)
	if fi, err := os.Lstat(socks); err != nil {
		return fmt.Errorf("socket directory %s: %w", socks, err)
	} else if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || fi.Mode().Perm() != 0o755 || (ok && int(st.Uid) != os.Geteuid()) {
		return fmt.Errorf("socket directory %s is %v, want a directory of uid %d with mode 0755", socks, fi.Mode(), os.Geteuid())
	}
	fi, err := os.Lstat(p.HostDir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", p.HostDir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory (%s)", p.HostDir, fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && (int(st.Uid) != perms.UID || int(st.Gid) != perms.GID) {
		return fmt.Errorf("socket directory %s is owned by %d:%d, want %d:%d", p.HostDir, st.Uid, st.Gid, perms.UID, perms.GID)
	}
	if got := uint32(fi.Mode().Perm()) | modeExtra(fi.Mode()); got != perms.Mode {
		return fmt.Errorf("socket directory %s has mode %#o, want %#o", p.HostDir, got, perms.Mode)
	}
	t, err := os.Readlink(p.ShortLink)
	if err != nil {
		return fmt.Errorf("short link %s: %w", p.ShortLink, err)
	}
	if t != p.HostDir {
		return fmt.Errorf("short link %s points to %q, want %s", p.ShortLink, t, p.HostDir)
	}
	return nil
}

func modeExtra(m os.FileMode) uint32 {
	var x uint32
	if m&os.ModeSetuid != 0 {
		x |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		x |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		x |= 0o1000
	}
	return x
}
