package sockdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Link is a short link of ours found in the short socket directory, and the
// attachment its target names.
type Link struct {
	Path   string // the link
	Target string // where it points
	PodUID string // parsed from Target (<kubeletRoot>/pods/<uid>/volumes/...)
	IfName string // parsed from Target (.../<SocketsDir>/<ifname>)
}

// Links lists the symlinks of l.ShortDir named like ours whose target is a
// socket directory under l.KubeletRoot: <kubeletRoot>/pods/<uid>/volumes/
// .../<SocketsDir>/<ifname>. Anything else is skipped: only such a link can
// be ours. A missing directory lists nothing.
func Links(l socketpath.Layout) ([]Link, error) {
	ents, err := os.ReadDir(l.ShortDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read short socket directory %s: %w", l.ShortDir, err)
	}
	var links []Link
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 || !isID(e.Name()) {
			continue
		}
		path := filepath.Join(l.ShortDir, e.Name())
		t, err := os.Readlink(path)
		if err != nil {
			continue
		}
		uid, ifName, ok := ParseTarget(l.KubeletRoot, t)
		if !ok {
			continue
		}
		links = append(links, Link{Path: path, Target: t, PodUID: uid, IfName: ifName})
	}
	return links, nil
}

// ParseTarget takes the pod UID and ifname out of a link target of the form
// <kubeletRoot>/pods/<uid>/volumes/<...>/<SocketsDir>/<ifname>.
func ParseTarget(kubeletRoot, t string) (uid, ifName string, ok bool) {
	if filepath.Clean(t) != t {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(t, filepath.Join(kubeletRoot, "pods")+"/")
	if !ok {
		return "", "", false
	}
	uid, rest, ok = strings.Cut(rest, "/")
	if !ok || uid == "" || !strings.HasPrefix(rest, "volumes/") {
		return "", "", false
	}
	if filepath.Base(filepath.Dir(rest)) != socketpath.SocketsDir {
		return "", "", false
	}
	ifName = filepath.Base(rest)
	if socketpath.ValidatePodUID(uid) != nil || socketpath.ValidateIfName(ifName) != nil {
		return "", "", false
	}
	return uid, ifName, true
}

// Temp is a temporary short link name of ours and when it was made.
type Temp struct {
	Path    string
	ModTime time.Time // lstat mtime: when the link was created
}

// Temps lists the temporary short link names of ours in shortDir (only
// symlinks: we never create anything else under such a name).
func Temps(shortDir string) ([]Temp, error) {
	ents, err := os.ReadDir(shortDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read short socket directory %s: %w", shortDir, err)
	}
	var temps []Temp
	for _, e := range ents {
		if _, ok := TempID(e.Name()); !ok || e.Type()&os.ModeSymlink == 0 {
			continue
		}
		fi, err := e.Info() // lstat
		if err != nil {
			continue // gone meanwhile
		}
		temps = append(temps, Temp{Path: filepath.Join(shortDir, e.Name()), ModTime: fi.ModTime()})
	}
	return temps, nil
}

// RemoveTemp removes one temporary short link if it is still a symlink
// named like ours. A missing one is fine.
func RemoveTemp(path string) error {
	if _, ok := TempID(filepath.Base(path)); !ok {
		return fmt.Errorf("%s is not a temporary short link name: %w", path, ErrNotOurs)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("temporary short link %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("%s is not a symlink; left in place: %w", path, ErrNotOurs)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove temporary short link %s: %w", path, err)
	}
	return nil
}
