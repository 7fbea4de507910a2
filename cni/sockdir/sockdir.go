// Package sockdir creates and removes the per-interface socket directory in
// the pod's emptyDir and the short symlink OVS connects through.
//
// The emptyDir is writable by the pod, so everything below the volume root is
// attacker-controlled: every step opens the next component relative to the
// directory file descriptor of the previous one with O_NOFOLLOW, and a symlink
// (or anything but a directory) where our directory should be is an error. The
// plugin never removes what it did not create.
//
// Why a symlink for the short path and not a bind mount: a symlink cannot leak
// (a bind mount left behind by a crashed ADD pins the emptyDir and needs
// umount); it is created atomically (temporary name, then rename); and it works
// unchanged for OVS on the host. The one requirement is that OVS resolves the
// link target, the kubelet path of the emptyDir, at the same path as the
// plugin: true for a host OVS, and for a containerised OVS that mounts the
// kubelet root and shortSocketDir at their host paths.
package sockdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Perms are the owner, group and mode of the per-interface directory.
type Perms struct {
	UID, GID int
	Mode     uint32
}

// Created records what Create made, so a failed ADD undoes exactly that.
type Created struct {
	SocketsDir bool // <volume>/vhostuser
	HostDir    bool // <volume>/vhostuser/<ifname>
	Link       bool // the short symlink
}

// ErrVolumeMissing means the pod's emptyDir does not exist.
var ErrVolumeMissing = errors.New("the pod's emptyDir volume does not exist")

// Create makes <VolumeDir>/vhostuser (mode 0755, so QEMU can traverse it) and
// HostDir with perms, then points ShortLink at HostDir. Existing directories
// of the right kind are reused and get perms applied.
func Create(p socketpath.Paths, perms Perms) (Created, error) {
	var c Created
	vol, err := unix.Open(p.VolumeDir, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return c, fmt.Errorf("%w: %s (is the pod a KubeVirt virt-launcher pod with a hook sidecar, and are kubeletRoot and volume right?)", ErrVolumeMissing, p.VolumeDir)
		}
		return c, fmt.Errorf("open volume %s: %w", p.VolumeDir, err)
	}
	defer unix.Close(vol)

	socks, made, err := mkdirAt(vol, socketpath.SocketsDir, 0o755)
	if err != nil {
		return c, fmt.Errorf("socket directory %s: %w", filepath.Join(p.VolumeDir, socketpath.SocketsDir), err)
	}
	c.SocketsDir = made
	defer unix.Close(socks)
	// The pod may have made this directory first: take it over (the plugin's
	// own uid, 0755) so only the interface directories below are the pod's.
	if err := unix.Fchown(socks, os.Geteuid(), os.Getegid()); err != nil {
		return c, fmt.Errorf("chown %s: %w", filepath.Join(p.VolumeDir, socketpath.SocketsDir), err)
	}
	if err := unix.Fchmod(socks, 0o755); err != nil {
		return c, fmt.Errorf("chmod %s: %w", filepath.Join(p.VolumeDir, socketpath.SocketsDir), err)
	}

	ifName := filepath.Base(p.HostDir)
	dir, made, err := mkdirAt(socks, ifName, 0o700)
	if err != nil {
		return c, fmt.Errorf("socket directory %s: %w", p.HostDir, err)
	}
	c.HostDir = made
	defer unix.Close(dir)
	if err := unix.Fchown(dir, perms.UID, perms.GID); err != nil {
		return c, fmt.Errorf("chown %s to %d:%d: %w", p.HostDir, perms.UID, perms.GID, err)
	}
	// Fchmod after Fchown: chown clears setgid/setuid bits.
	if err := unix.Fchmod(dir, perms.Mode); err != nil {
		return c, fmt.Errorf("chmod %s to %#o: %w", p.HostDir, perms.Mode, err)
	}

	made, err = link(p)
	c.Link = made
	return c, err
}

// mkdirAt creates name in dirfd (or reuses an existing directory) and opens
// it without following symlinks.
func mkdirAt(dirfd int, name string, mode uint32) (fd int, created bool, err error) {
	err = unix.Mkdirat(dirfd, name, mode)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, unix.EEXIST):
	default:
		return -1, false, fmt.Errorf("mkdir: %w", err)
	}
	fd, err = unix.Openat(dirfd, name, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, false, fmt.Errorf("exists and is not a directory (a symlink or file is in the way; refusing to follow it)")
		}
		return -1, false, fmt.Errorf("open: %w", err)
	}
	return fd, created, nil
}

// link points ShortLink at HostDir atomically. A link already pointing there is
// kept; any other symlink of that name is replaced (its name is derived from
// this attachment, so it is ours); anything else is an error.
func link(p socketpath.Paths) (bool, error) {
	dir := filepath.Dir(p.ShortLink)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("short socket directory %s: %w", dir, err)
	}
	// Temporary names of this attachment a killed run left (temp.go).
	if err := RemoveTemps(p); err != nil {
		return false, err
	}
	fi, err := os.Lstat(p.ShortLink)
	switch {
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		if t, _ := os.Readlink(p.ShortLink); t == p.HostDir {
			return false, nil
		}
	case err == nil:
		return false, fmt.Errorf("short link %s exists and is not a symlink; remove it", p.ShortLink)
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("short link %s: %w", p.ShortLink, err)
	}
	for attempt := 1; ; attempt++ {
		var rnd [tempRandLen / 2]byte
		_, _ = rand.Read(rnd[:])
		tmp := filepath.Join(dir, tempPrefix(p)+hex.EncodeToString(rnd[:]))
		if err := os.Symlink(p.HostDir, tmp); err != nil {
			return false, fmt.Errorf("create short link %s: %w", tmp, err)
		}
		if beforeRename != nil {
			beforeRename(tmp)
		}
		err := os.Rename(tmp, p.ShortLink)
		if err == nil {
			return true, nil
		}
		_ = os.Remove(tmp)
		// ENOENT: a concurrent ADD, DEL or GC removed our temporary name
		// as a leftover (temp.go); make a new one.
		if !errors.Is(err, os.ErrNotExist) || attempt == linkAttempts {
			return false, fmt.Errorf("install short link %s: %w", p.ShortLink, err)
		}
	}
}

// Undo removes what Create reported as created (ADD rollback).
func Undo(p socketpath.Paths, c Created) error {
	var errs []error
	if c.Link {
		errs = append(errs, RemoveLink(p))
	}
	if c.HostDir {
		errs = append(errs, RemoveHostDir(p))
	}
	if c.SocketsDir {
		// Only when empty: a concurrent ADD of another interface may use it.
		if err := os.Remove(filepath.Join(p.VolumeDir, socketpath.SocketsDir)); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveLink removes ShortLink when it is a symlink to HostDir, and the
// attachment's temporary link names. A missing link is fine; anything else of
// that name is left alone and reported.
func RemoveLink(p socketpath.Paths) error {
	// Temporary names of this attachment a killed ADD left (temp.go).
	return errors.Join(RemoveTemps(p), removeLink(p))
}

func removeLink(p socketpath.Paths) error {
	fi, err := os.Lstat(p.ShortLink)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("short link %s: %w", p.ShortLink, err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("short link %s is not a symlink; left in place", p.ShortLink)
	}
	if t, _ := os.Readlink(p.ShortLink); t != p.HostDir {
		return fmt.Errorf("short link %s points to %q, not %s; left in place", p.ShortLink, t, p.HostDir)
	}
	if err := os.Remove(p.ShortLink); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove short link %s: %w", p.ShortLink, err)
	}
	return nil
}

// RemoveHostDir removes the per-interface directory and the vhost-user socket
// QEMU made in it. It does not follow symlinks, and it leaves the directory in
// place (with an error) when anything other than that socket is inside.
func RemoveHostDir(p socketpath.Paths) error {
	vol, err := unix.Open(p.VolumeDir, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil // the pod's volume is gone, and everything in it
	}
	if err != nil {
		return fmt.Errorf("open volume %s: %w", p.VolumeDir, err)
	}
	defer unix.Close(vol)
	socks, err := unix.Openat(vol, socketpath.SocketsDir, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w (not ours: left in place)", filepath.Join(p.VolumeDir, socketpath.SocketsDir), err)
	}
	defer unix.Close(socks)
	ifName := filepath.Base(p.HostDir)
	var st unix.Stat_t
	if err := unix.Fstatat(socks, ifName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", p.HostDir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory; left in place", p.HostDir)
	}
	var sst unix.Stat_t
	dirfd, err := unix.Openat(socks, ifName, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p.HostDir, err)
	}
	if err := unix.Fstatat(dirfd, socketpath.SocketName, &sst, unix.AT_SYMLINK_NOFOLLOW); err == nil && sst.Mode&unix.S_IFMT == unix.S_IFSOCK {
		if err := unix.Unlinkat(dirfd, socketpath.SocketName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			unix.Close(dirfd)
			return fmt.Errorf("remove socket %s: %w", p.HostSocket, err)
		}
	}
	unix.Close(dirfd)
	if err := unix.Unlinkat(socks, ifName, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("socket directory %s holds files we did not create; left in place", p.HostDir)
		}
		return fmt.Errorf("remove %s: %w", p.HostDir, err)
	}
	return nil
}

// Check verifies that HostDir is a real directory with perms and that
// ShortLink points at it.
func Check(p socketpath.Paths, perms Perms) error {
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
