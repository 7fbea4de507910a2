package sockdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Dangling is a short link RemoveDanglingLinks removed, and where it pointed.
type Dangling struct {
	Link, Target string
}

// RemoveDanglingLinks removes the short links of l.ShortDir named like ours
// whose target, a socket directory under l.KubeletRoot, no longer exists (the
// pod's volume was deleted without a DEL), and returns them. Anything else
// in the directory, and a link to anywhere else, is left alone: only a link
// to a pod volume can be ours.
func RemoveDanglingLinks(l socketpath.Layout) ([]Dangling, error) {
	dir := l.ShortDir
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	podsDir := filepath.Join(l.KubeletRoot, "pods") + "/"
	var removed []Dangling
	var errs []error
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 || !isID(e.Name()) {
			continue
		}
		link := filepath.Join(dir, e.Name())
		t, err := os.Readlink(link)
		if err != nil || !strings.HasPrefix(t, podsDir) || !strings.Contains(t, "/"+socketpath.SocketsDir+"/") {
			continue
		}
		if _, err := os.Lstat(t); errors.Is(err, os.ErrNotExist) {
			if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, Dangling{Link: link, Target: t})
		}
	}
	return removed, errors.Join(errs...)
}
