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
//
// Files: directory.go makes and removes the directories, shortlink.go the
// short link and its names, temp.go its temporary names, walk.go GC's walk
// of the short socket directory, check.go CHECK's verification.
package sockdir

import (
	"errors"
	"fmt"
	"os"
	"strings"
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
