package sockdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

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
	var t string
	if fi.Mode()&os.ModeSymlink != 0 {
		t, _ = os.Readlink(p.ShortLink)
	}
	if err := ownLink(p, fi.Mode(), t); err != nil {
		return err
	}
	if err := os.Remove(p.ShortLink); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove short link %s: %w", p.ShortLink, err)
	}
	return nil
}

// ownLink decides whether what DEL and GC find at p.ShortLink (its mode and,
// for a symlink, its target) is this attachment's link: only a symlink to
// p.HostDir is. Anything else is left in place, an error wrapping ErrNotOurs.
func ownLink(p socketpath.Paths, mode os.FileMode, target string) error {
	if mode&os.ModeSymlink == 0 {
		return fmt.Errorf("short link %s is not a symlink; left in place: %w", p.ShortLink, ErrNotOurs)
	}
	if target != p.HostDir {
		return fmt.Errorf("short link %s points to %q, not %s; left in place: %w", p.ShortLink, target, p.HostDir, ErrNotOurs)
	}
	return nil
}

// legacyIDLen is the attachment ID length (48 bits) of releases before the
// 128-bit ID; their links are cleaned by DEL and GC too.
const legacyIDLen = 12

// LegacyLink is p with ShortLink named as releases before the 128-bit ID
// named it, with the ID's first 48 bits: DEL removes that link too (with
// RemoveLink, which checks it points at p's HostDir).
func LegacyLink(p socketpath.Paths) socketpath.Paths {
	legacy := p
	legacy.ShortLink = filepath.Join(filepath.Dir(p.ShortLink), p.ID[:legacyIDLen])
	return legacy
}

// isID reports whether s is a short link name of ours: an attachment ID of
// this release or of one before the 128-bit ID.
func isID(s string) bool {
	if len(s) != socketpath.IDLen && len(s) != legacyIDLen {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
