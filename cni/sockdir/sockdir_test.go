package sockdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func layout(t *testing.T) (socketpath.Paths, Perms) {
	t.Helper()
	root := t.TempDir()
	l := socketpath.Layout{KubeletRoot: filepath.Join(root, "kubelet"), Volume: "hook-sidecar-sockets", ShortDir: filepath.Join(root, "s")}
	p, err := l.For(socketpath.Attachment{PodUID: "pod-uid-1", IfName: "net1"})
	if err != nil {
		t.Fatal(err)
	}
	return p, Perms{UID: os.Getuid(), GID: os.Getgid(), Mode: 0o2750}
}

func TestCreateRemove(t *testing.T) {
	p, perms := layout(t)
	if _, err := Create(p, perms); !errors.Is(err, ErrVolumeMissing) {
		t.Fatalf("Create without volume: %v, want ErrVolumeMissing", err)
	}
	if err := os.MkdirAll(p.VolumeDir, 0o777); err != nil {
		t.Fatal(err)
	}
	c, err := Create(p, perms)
	if err != nil {
		t.Fatal(err)
	}
	if !c.SocketsDir || !c.HostDir || !c.Link {
		t.Fatalf("created %+v, want all", c)
	}
	if err := Check(p, perms); err != nil {
		t.Fatalf("Check after Create: %v", err)
	}
	if t2, _ := os.Readlink(p.ShortLink); t2 != p.HostDir {
		t.Fatalf("link -> %q", t2)
	}
	// Idempotent: a second Create reuses everything and creates nothing.
	c2, err := Create(p, perms)
	if err != nil || c2.SocketsDir || c2.HostDir || c2.Link {
		t.Fatalf("second Create: %+v %v", c2, err)
	}
	if err := Check(p, Perms{UID: perms.UID, GID: perms.GID, Mode: 0o770}); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("Check with another mode: %v", err)
	}
	if err := RemoveLink(p); err != nil {
		t.Fatal(err)
	}
	if err := RemoveHostDir(p); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.ShortLink, p.HostDir} {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", f, err)
		}
	}
	// And again: nothing to do, no error.
	if err := errors.Join(RemoveLink(p), RemoveHostDir(p)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.VolumeDir); err != nil {
		t.Fatalf("volume removed: %v", err)
	}
}

func TestHostile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, p socketpath.Paths, outside string)
		want  string
	}{
		{"sockets dir is a symlink", func(t *testing.T, p socketpath.Paths, outside string) {
			must(t, os.Symlink(outside, filepath.Join(p.VolumeDir, socketpath.SocketsDir)))
		}, "not a directory"},
		{"host dir is a symlink", func(t *testing.T, p socketpath.Paths, outside string) {
			must(t, os.MkdirAll(filepath.Dir(p.HostDir), 0o755))
			must(t, os.Symlink(outside, p.HostDir))
		}, "not a directory"},
		{"host dir is a file", func(t *testing.T, p socketpath.Paths, outside string) {
			must(t, os.MkdirAll(filepath.Dir(p.HostDir), 0o755))
			must(t, os.WriteFile(p.HostDir, nil, 0o644))
		}, "not a directory"},
		{"short link is a directory", func(t *testing.T, p socketpath.Paths, outside string) {
			must(t, os.MkdirAll(p.ShortLink, 0o755))
		}, "not a symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, perms := layout(t)
			outside := t.TempDir()
			before, err := os.Stat(outside)
			must(t, err)
			must(t, os.MkdirAll(p.VolumeDir, 0o777))
			tt.setup(t, p, outside)
			c, err := Create(p, perms)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create: %v, want error with %q", err, tt.want)
			}
			if err := Undo(p, c); err != nil {
				t.Fatalf("Undo: %v", err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("something was created outside: %v", ents)
			}
			if fi, err := os.Stat(outside); err != nil || fi.Mode() != before.Mode() {
				t.Fatalf("outside directory changed: %v %v", fi.Mode(), err)
			}
		})
	}
}

func TestRemoveKeepsForeign(t *testing.T) {
	p, perms := layout(t)
	must(t, os.MkdirAll(p.VolumeDir, 0o777))
	if _, err := Create(p, perms); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(p.HostDir, "notes.txt")
	must(t, os.WriteFile(foreign, []byte("x"), 0o644))
	if err := RemoveHostDir(p); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("RemoveHostDir with a foreign file: %v, want ErrNotOurs", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("foreign file removed: %v", err)
	}
	// A link pointing elsewhere is not ours.
	must(t, os.Remove(p.ShortLink))
	must(t, os.Symlink("/elsewhere", p.ShortLink))
	if err := RemoveLink(p); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("RemoveLink of a foreign link: %v, want ErrNotOurs", err)
	}
	if _, err := os.Lstat(p.ShortLink); err != nil {
		t.Fatal(err)
	}
}

// TestModes: what Create leaves is what the protection needs: a sticky volume
// root with its other bits kept, vhostuser ours and 0755, the interface
// directory ours with perms.
func TestModes(t *testing.T) {
	p, _ := layout(t)
	perms := Perms{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o1777}
	must(t, os.MkdirAll(p.VolumeDir, 0o777))
	must(t, os.Chmod(p.VolumeDir, 0o777|os.ModeSetgid)) // kubelet with an fsGroup
	if _, err := Create(p, perms); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{p.VolumeDir, 0o777 | os.ModeSetgid | os.ModeSticky},
		{filepath.Dir(p.HostDir), 0o755},
		{p.HostDir, 0o777 | os.ModeSticky},
	} {
		fi, err := os.Lstat(tt.path)
		must(t, err)
		if got := fi.Mode() &^ os.ModeDir; got != tt.want || !fi.IsDir() {
			t.Errorf("%s: mode %v, want %v", tt.path, fi.Mode(), tt.want)
		}
	}
	if err := Check(p, perms); err != nil {
		t.Fatalf("Check: %v", err)
	}
	must(t, os.Chmod(p.VolumeDir, 0o777))
	if err := Check(p, perms); err == nil || !strings.Contains(err.Error(), "sticky") {
		t.Fatalf("Check with the volume's sticky bit cleared: %v", err)
	}
}

func TestLinkIdentity(t *testing.T) {
	p, perms := layout(t)
	must(t, os.MkdirAll(p.VolumeDir, 0o777))
	must(t, os.MkdirAll(filepath.Dir(p.ShortLink), 0o755))
	// Another pod's socket directory under the link's name: not replaced.
	other := strings.Replace(p.HostDir, "/pods/pod-uid-1/", "/pods/pod-uid-2/", 1)
	must(t, os.Symlink(other, p.ShortLink))
	if _, err := Create(p, perms); err == nil || !strings.Contains(err.Error(), "another attachment") {
		t.Fatalf("Create over another pod's link: %v", err)
	}
	if got, _ := os.Readlink(p.ShortLink); got != other {
		t.Fatalf("link replaced: -> %s", got)
	}
	// The same pod and interface under an older volume name: a stale link of this attachment.
	must(t, os.Remove(p.ShortLink))
	stale := strings.Replace(p.HostDir, "/hook-sidecar-sockets/", "/old-volume/", 1)
	must(t, os.Symlink(stale, p.ShortLink))
	if _, err := Create(p, perms); err != nil {
		t.Fatalf("Create over this attachment's stale link: %v", err)
	}
	if got, _ := os.Readlink(p.ShortLink); got != p.HostDir {
		t.Fatalf("link -> %s, want %s", got, p.HostDir)
	}
}

func TestShortDirChecked(t *testing.T) {
	p, perms := layout(t)
	must(t, os.MkdirAll(p.VolumeDir, 0o777))
	must(t, os.MkdirAll(filepath.Dir(p.ShortLink), 0o755))
	must(t, os.Chmod(filepath.Dir(p.ShortLink), 0o777))
	if _, err := Create(p, perms); err == nil || !strings.Contains(err.Error(), "short socket directory") {
		t.Fatalf("Create with a world-writable short dir: %v", err)
	}
}

func TestProtectedSymlinks(t *testing.T) {
	old := protectedSymlinksFile
	t.Cleanup(func() { protectedSymlinksFile = old })
	for _, tt := range []struct {
		content string
		ok      bool
	}{{"1\n", true}, {"0\n", false}, {"2\n", false}, {"", false}} {
		protectedSymlinksFile = filepath.Join(t.TempDir(), "protected_symlinks")
		must(t, os.WriteFile(protectedSymlinksFile, []byte(tt.content), 0o644))
		err := ProtectedSymlinks()
		if (err == nil) != tt.ok || (err != nil && (!errors.Is(err, ErrSymlinksUnprotected) || !strings.Contains(err.Error(), "sysctl -w fs.protected_symlinks=1"))) {
			t.Errorf("content %q: %v", tt.content, err)
		}
	}
	protectedSymlinksFile = filepath.Join(t.TempDir(), "missing")
	if err := ProtectedSymlinks(); !errors.Is(err, ErrSymlinksUnprotected) {
		t.Errorf("missing file: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
