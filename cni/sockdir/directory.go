package sockdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Create makes the volume root sticky, <VolumeDir>/vhostuser (ours, mode
// 0755, so QEMU can traverse it) and HostDir with perms (perms.Mode must be
// sticky and writable by others: see the package comment), then points
// ShortLink at HostDir. Existing directories of the right kind are reused and
// taken over.
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
	if err := stickVolume(vol, p.VolumeDir); err != nil {
		return c, err
	}

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

	if err := checkShortDir(filepath.Dir(p.ShortLink)); err != nil {
		return c, err
	}
	if err := checkLinkIdentity(p); err != nil {
		return c, err
	}
	made, err = link(p)
	c.Link = made
	return c, err
}

// stickVolume sets the sticky bit on the volume root, keeping its other bits
// (kubelet makes it 0777, or 2777 with an fsGroup): the pod may still create
// entries there, but no longer rename or remove our vhostuser directory. The
// sticky bit protects only against users other than the directory's owner,
// so the volume root must be ours (kubelet creates it as root).
func stickVolume(vol int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(vol, &st); err != nil {
		return fmt.Errorf("stat volume %s: %w", path, err)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("volume %s is owned by uid %d, not by uid %d (kubelet makes emptyDirs as root): the pod could rename what the plugin makes there; refusing", path, st.Uid, os.Geteuid())
	}
	if st.Mode&unix.S_ISVTX != 0 {
		return nil
	}
	if err := unix.Fchmod(vol, (st.Mode&0o7777)|unix.S_ISVTX); err != nil {
		return fmt.Errorf("chmod +t volume %s: %w", path, err)
	}
	return nil
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

// RemoveHostDir removes the per-interface directory and the vhost-user socket
// QEMU made in it. It does not follow symlinks, and it leaves the directory in
// place when anything other than that socket is inside (an error wrapping
// ErrNotOurs: the pod's files, which kubelet removes with the volume).
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
		return fmt.Errorf("open %s: %v: left in place: %w", filepath.Join(p.VolumeDir, socketpath.SocketsDir), err, ErrNotOurs)
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
		return fmt.Errorf("%s is not a directory; left in place: %w", p.HostDir, ErrNotOurs)
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
			return fmt.Errorf("socket directory %s holds files the pod made; left in place for kubelet to remove with the volume: %w", p.HostDir, ErrNotOurs)
		}
		return fmt.Errorf("remove %s: %w", p.HostDir, err)
	}
	return nil
}
