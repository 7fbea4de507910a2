package sockdir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func TestTempID(t *testing.T) {
	id := strings.Repeat("a", socketpath.IDLen)
	tests := []struct {
		name string
		ok   bool
	}{
		{"." + id + ".0123456789ab", true},
		{"." + id + ".0123456789a", false},   // short suffix
		{"." + id + ".0123456789abc", false}, // long suffix
		{"." + id + ".0123456789aB", false},  // not lower-case hex
		{id, false},                          // the link itself
		{"." + id[1:] + ".0123456789ab", false},
		{"." + id + "x.0123456789ab", false},
		{".." + id + ".0123456789ab", false},
		{"", false},
		{".", false},
	}
	for _, tt := range tests {
		got, ok := TempID(tt.name)
		if ok != tt.ok || (ok && got != id) {
			t.Errorf("TempID(%q) = %q, %v; want ok=%v", tt.name, got, ok, tt.ok)
		}
	}
}

// A run killed between creating the temporary link and renaming it leaves
// the temporary name: the next ADD (Create) and DEL (RemoveLink) of the
// attachment remove it, GC (RemoveAllTemps) removes any of ours, and none
// of them touches what is not a symlink of that form.
func TestLeftoverTemps(t *testing.T) {
	p, perms := layout(t)
	must(t, os.MkdirAll(p.VolumeDir, 0o777))
	dir := filepath.Dir(p.ShortLink)
	must(t, os.MkdirAll(dir, 0o755))
	other := strings.Repeat("0", socketpath.IDLen)
	mine := filepath.Join(dir, tempPrefix(p)+"0123456789ab")
	theirs := filepath.Join(dir, "."+other+".0123456789ab")
	notLink := filepath.Join(dir, tempPrefix(p)+"ba9876543210")
	leave := func() {
		must(t, os.Symlink(p.HostDir, mine))
		must(t, os.Symlink("/elsewhere", theirs))
	}
	must(t, os.WriteFile(notLink, nil, 0o600))
	exists := func(name string) bool { _, err := os.Lstat(name); return err == nil }

	leave()
	if _, err := Create(p, perms); err != nil {
		t.Fatal(err)
	}
	if exists(mine) || !exists(theirs) || !exists(notLink) {
		t.Fatalf("after Create: mine %v theirs %v file %v; want false true true", exists(mine), exists(theirs), exists(notLink))
	}
	must(t, os.Remove(theirs))

	leave()
	if err := RemoveLink(p); err != nil {
		t.Fatal(err)
	}
	if exists(mine) || exists(p.ShortLink) || !exists(theirs) || !exists(notLink) {
		t.Fatalf("after RemoveLink: mine %v link %v theirs %v file %v; want false false true true",
			exists(mine), exists(p.ShortLink), exists(theirs), exists(notLink))
	}
	must(t, os.Remove(theirs))

	leave()
	removed, err := RemoveAllTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || exists(mine) || exists(theirs) || !exists(notLink) {
		t.Fatalf("after RemoveAllTemps: removed %v, file %v", removed, exists(notLink))
	}
	if removed, err := RemoveAllTemps(filepath.Join(dir, "missing")); err != nil || removed != nil {
		t.Fatalf("RemoveAllTemps of a missing directory: %v %v", removed, err)
	}
}

// A GC removing temporary names while an ADD installs its link must not make
// the ADD fail: link makes a new temporary name when its own vanished, a
// bounded number of times.
func TestLinkWhenTempVanishes(t *testing.T) {
	for _, tc := range []struct {
		vanish int // how many temporary names a concurrent GC removes
		ok     bool
	}{{0, true}, {1, true}, {linkAttempts - 1, true}, {linkAttempts, false}} {
		p, perms := layout(t)
		must(t, os.MkdirAll(p.VolumeDir, 0o777))
		n := 0
		beforeRename = func(tmp string) {
			if n < tc.vanish {
				n++
				if _, err := RemoveAllTemps(filepath.Dir(tmp)); err != nil {
					t.Error(err)
				}
			}
		}
		_, err := Create(p, perms)
		beforeRename = nil
		if (err == nil) != tc.ok {
			t.Fatalf("%d vanished temporary names: Create error %v, want ok=%v", tc.vanish, err, tc.ok)
		}
		if tc.ok {
			if target, err := os.Readlink(p.ShortLink); err != nil || target != p.HostDir {
				t.Fatalf("link -> %q (%v)", target, err)
			}
		}
		if ents, _ := os.ReadDir(filepath.Dir(p.ShortLink)); !tc.ok && len(ents) != 0 {
			t.Fatalf("failed Create left %v", ents)
		}
	}
}
