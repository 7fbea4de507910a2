// Package sockdir creates and removes the per-interface socket directory in
// the pod's emptyDir and the short symlink OVS connects through.
//
// The emptyDir is writable by the pod, so everything below the volume root is
// attacker-controlled: every step opens the next component relative to the
// directory file descriptor of the previous one with O_NOFOLLOW, and a symlink
// (or anything but a directory) where our directory should be is an error. The
// plugin never removes what it did not create.
//
// What OVS traverses, and why the pod cannot redirect it (docs/security.md):
// root ovs-vswitchd connects to <shortDir>/<id>/vhost.sock about once a
// second for as long as the port exists, following every symlink each time.
// <shortDir> and the link are the host's; the link target's components up to
// the volume root are kubelet's (root-owned). Create then makes every step
// inside the pod-writable volume one the pod (uid 107) cannot redirect: the
// volume root gets the sticky bit (so a root-owned entry in it cannot be
// renamed or removed by the pod), <volume>/vhostuser is root's and 0755 (the
// pod cannot write in it), and <volume>/vhostuser/<ifname> is root's, sticky
// and world-writable (QEMU as uid 107 binds its socket there), which is the
// kind of directory in which the kernel, with fs.protected_symlinks=1, refuses
// to let root follow a symlink owned by anyone but root. ProtectedSymlinks
// checks that sysctl; the plugin refuses to work without it. Root inside the
// pod defeats this (its symlinks are root's): virt-launcher pods of non-root
// VMIs, KubeVirt's default, run as uid 107.
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
	"strings"
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

// ErrNotOurs marks something at one of our names that we did not make: it is
// left in place. DEL logs it and succeeds, since nothing of ours remains.
var ErrNotOurs = errors.New("not created by this plugin")

// ErrSymlinksUnprotected means fs.protected_symlinks is not 1 on the node.
var ErrSymlinksUnprotected = errors.New("fs.protected_symlinks is not 1")

// protectedSymlinksFile is a variable for the unit test.
var protectedSymlinksFile = "/proc/sys/fs/protected_symlinks"

// ProtectedSymlinks fails unless the kernel refuses, in sticky world-writable
// directories, to let root follow a symlink another user owns: the protection
// of the pod's socket directory rests on it (see the package comment).
func ProtectedSymlinks() error {
	b, err := os.ReadFile(protectedSymlinksFile)
	if err != nil {
		return fmt.Errorf("%w: read %s: %v", ErrSymlinksUnprotected, protectedSymlinksFile, err)
	}
	if v := strings.TrimSpace(string(b)); v != "1" {
		return fmt.Errorf("%w (it is %s): without it ovs-vswitchd, as root, would follow a symlink a pod plants in its socket directory to any socket on the node; "+
			"set it with `sysctl -w fs.protected_symlinks=1` and persist it in /etc/sysctl.d/ (see docs/security.md)", ErrSymlinksUnprotected, v)
	}
	return nil
}

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

// checkShortDir refuses a short socket directory others can write to: OVS
// follows the links in it as root.
func checkShortDir(dir string) error {
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if errors.Is(err, unix.ENOENT) {
		return nil // link() creates it, ours and 0755
	}
	if err != nil {
		return fmt.Errorf("short socket directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("short socket directory %s is not a directory (a symlink or file is in the way)", dir)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return fmt.Errorf("short socket directory %s is owned by uid %d with mode %#o: it must be root's and writable by root only (chmod 0755)", dir, st.Uid, st.Mode&0o7777)
	}
	return nil
}

// checkLinkIdentity refuses to replace a short link that points at another
// attachment's socket directory: the name is derived from (pod UID, ifname),
// so only a link to this pod's <ifname> directory (this layout's or an older
// one's) is a stale link of the same attachment.
func checkLinkIdentity(p socketpath.Paths) error {
	t, err := os.Readlink(p.ShortLink)
	if err != nil || t == p.HostDir {
		return nil // no link, or not a link (link() reports that), or already right
	}
	// <kubeletRoot>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>/vhostuser/<ifname>
	uid := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(p.VolumeDir))))
	if filepath.Base(t) == filepath.Base(p.HostDir) && strings.Contains(t, "/pods/"+uid+"/volumes/") &&
		filepath.Base(filepath.Dir(t)) == socketpath.SocketsDir {
		return nil
	}
	return fmt.Errorf("short link %s points to %q, which is not a socket directory of pod %s interface %s: refusing to replace another attachment's link; remove it by hand if it is stale",
		p.ShortLink, t, uid, filepath.Base(p.HostDir))
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
		return fmt.Errorf("short link %s is not a symlink; left in place: %w", p.ShortLink, ErrNotOurs)
	}
	if t, _ := os.Readlink(p.ShortLink); t != p.HostDir {
		return fmt.Errorf("short link %s points to %q, not %s; left in place: %w", p.ShortLink, t, p.HostDir, ErrNotOurs)
	}
	if err := os.Remove(p.ShortLink); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove short link %s: %w", p.ShortLink, err)
	}
	return nil
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
