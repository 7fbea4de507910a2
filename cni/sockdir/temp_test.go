package sockdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// A GC sweeping temporary names while ADDs install links must not make an
// ADD fail: link retries when its temporary name vanishes.
func TestLinkWhileSweeping(t *testing.T) {
	p, perms := layout(t)
	must(t, os.MkdirAll(p.VolumeDir, 0o777))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
				// Far more often than any GC, yet sparse enough that ten
				// attempts in a row are not all hit.
				_, _ = RemoveAllTemps(filepath.Dir(p.ShortLink))
			}
		}
	}()
	var errs []error
	for i := 0; i < 2000; i++ {
		if _, err := Create(p, perms); err != nil {
			errs = append(errs, err)
		}
		if err := RemoveLink(p); err != nil {
			errs = append(errs, err)
		}
	}
	close(stop)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
