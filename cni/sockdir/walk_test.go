package sockdir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func TestRemoveDanglingLinks(t *testing.T) {
	root := t.TempDir()
	l := socketpath.Layout{KubeletRoot: filepath.Join(root, "kubelet"), Volume: "v", ShortDir: filepath.Join(root, "s")}
	if got, err := RemoveDanglingLinks(l); err != nil || got != nil {
		t.Fatalf("missing short directory: %v, %v; want nothing", got, err)
	}
	must(t, os.MkdirAll(l.ShortDir, 0o755))
	pods := filepath.Join(l.KubeletRoot, "pods")
	live := filepath.Join(pods, "u1", "volumes", "kubernetes.io~empty-dir", "v", socketpath.SocketsDir, "net1")
	must(t, os.MkdirAll(live, 0o755))
	gone := filepath.Join(pods, "u2", "volumes", "kubernetes.io~empty-dir", "v", socketpath.SocketsDir, "net1")
	id := strings.Repeat("a", socketpath.IDLen)
	legacy := strings.Repeat("b", legacyIDLen)
	links := map[string]string{
		id:                                    gone,                              // ours, dangling: removed
		legacy:                                gone,                              // an older release's, dangling: removed
		strings.Repeat("c", socketpath.IDLen): live,                              // ours, live: kept
		strings.Repeat("d", socketpath.IDLen): "/elsewhere/vhostuser/net1",       // not under kubeletRoot: kept
		strings.Repeat("e", socketpath.IDLen): filepath.Join(pods, "u2", "net1"), // no vhostuser component: kept
		"not-an-id":                           gone,                              // not our name: kept
		strings.Repeat("A", socketpath.IDLen): gone,                              // upper case is not our name: kept
		strings.Repeat("f", 13):               gone,                              // wrong length: kept
	}
	for name, target := range links {
		must(t, os.Symlink(target, filepath.Join(l.ShortDir, name)))
	}
	must(t, os.Mkdir(filepath.Join(l.ShortDir, strings.Repeat("9", socketpath.IDLen)), 0o755)) // not a link: kept

	got, err := RemoveDanglingLinks(l)
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, d := range got {
		if d.Target != gone {
			t.Errorf("%s: target %s, want %s", d.Link, d.Target, gone)
		}
		removed = append(removed, filepath.Base(d.Link))
	}
	slices.Sort(removed)
	if want := []string{id, legacy}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	ents, err := os.ReadDir(l.ShortDir)
	must(t, err)
	if len(ents) != len(links)+1-2 {
		t.Errorf("%d entries left, want %d", len(ents), len(links)+1-2)
	}
	for _, e := range ents {
		if e.Name() == id || e.Name() == legacy {
			t.Errorf("%s still there", e.Name())
		}
	}
}
