package sockdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// The short link is made under a temporary name ".<id>.<rand>" and renamed
// into place. A plugin run killed between the two steps leaves the temporary
// name behind, so every ADD, DEL and GC removes such names: ADD and DEL those
// of their attachment, GC all of ours. A temporary name is never state anyone
// needs: removing one that a concurrent run is about to rename only makes
// that run try again (see link).

// tempRandLen is the length of the random hex suffix of a temporary name.
const tempRandLen = 12

// linkAttempts bounds link's retries when its temporary name vanishes.
const linkAttempts = 10

// beforeRename, when set (tests), runs between creating a temporary link and
// renaming it.
var beforeRename func(tmp string)

func tempPrefix(p socketpath.Paths) string {
	return "." + filepath.Base(p.ShortLink) + "."
}

// TempID reports whether name has the form of one of our temporary short
// link names, and the attachment ID in it.
func TempID(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return "", false
	}
	id, rnd, ok := strings.Cut(rest, ".")
	if !ok || len(id) != socketpath.IDLen || len(rnd) != tempRandLen || !isHex(id) || !isHex(rnd) {
		return "", false
	}
	return id, true
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return s != ""
}

// RemoveTemps removes the temporary short links of this attachment.
func RemoveTemps(p socketpath.Paths) error {
	id := filepath.Base(p.ShortLink)
	_, err := removeTemps(filepath.Dir(p.ShortLink), func(tid string) bool { return tid == id })
	return err
}

// RemoveAllTemps removes every temporary short link of ours in shortDir
// (GC: whatever attachment it belonged to, it is garbage), and returns the
// names it removed.
func RemoveAllTemps(shortDir string) ([]string, error) {
	return removeTemps(shortDir, func(string) bool { return true })
}

// removeTemps removes the entries of dir named like our temporary links whose
// ID match accepts. Only symlinks are removed: we never create anything else
// under such a name.
func removeTemps(dir string, match func(id string) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read short socket directory %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		id, ok := TempID(e.Name())
		if !ok || e.Type()&os.ModeSymlink == 0 || !match(id) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove temporary short link %s: %w", name, err))
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}
