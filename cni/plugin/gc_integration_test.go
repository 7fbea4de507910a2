//go:build integration

package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func TestGC(t *testing.T) {
	f := newFixture(t)
	f.network = "gc-net"
	// Another network's port on the same bridge: GC of gc-net must keep it.
	other := newFixture(t)
	other.bridge, other.network, other.root, other.short = f.bridge, "other-net", f.root, f.short
	atts := []att{{"gc1", "net1", uid1}, {"gc2", "net1", "pod-2"}, {"gc3", "net2", uid1}}
	foreign := att{"gc9", "net3", "pod-9"}
	for _, a := range append(atts, foreign) {
		f.newPod(a.uid)
	}
	for _, a := range atts {
		if _, err := f.add("1.1.0", a); err != nil {
			t.Fatalf("ADD %v: %v", a, err)
		}
	}
	if _, err := other.add("1.1.0", foreign); err != nil {
		t.Fatalf("ADD other network: %v", err)
	}
	// A dangling short link of ours, as a pod deleted without DEL leaves,
	// and one named as releases before the 128-bit ID named them.
	gone := f.paths(att{"gone", "net1", "pod-gone"})
	if err := os.Symlink(gone.HostDir, gone.ShortLink); err != nil {
		t.Fatal(err)
	}
	goneOld := f.paths(att{"gone", "net1", "pod-gone-old"})
	goneOld.ShortLink = filepath.Join(f.short, goneOld.ID[:12])
	if err := os.Symlink(goneOld.HostDir, goneOld.ShortLink); err != nil {
		t.Fatal(err)
	}
	// A fresh libcni cache: the runtime knows nothing, so only the plugin's GC acts.
	gc := libcni.NewCNIConfigWithCacheDir([]string{pluginDir}, filepath.Join(f.root, "cache-gc"), nil)
	// An empty list (older Multus) never removes a live attachment.
	if err := gc.GCNetworkList(context.Background(), f.confList("1.1.0"), &libcni.GCArgs{}); err != nil {
		t.Fatalf("GC with an empty list: %v", err)
	}
	f.assertAllAttached(atts)
	// A list that lacks a live pod (a same-name network of another
	// namespace, say) keeps it while its pod's volume exists.
	valid := []types.GCAttachment{{ContainerID: "gc1", IfName: "net1"}, {ContainerID: "gc3", IfName: "net2"}}
	if err := gc.GCNetworkList(context.Background(), f.confList("1.1.0"), &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	f.assertAllAttached(atts)
	// The pod is deleted without a DEL: kubelet removed its volume.
	if err := os.RemoveAll(filepath.Join(f.root, "pods", "pod-2")); err != nil {
		t.Fatal(err)
	}
	if err := gc.GCNetworkList(context.Background(), f.confList("1.1.0"), &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	f.assertAttached(atts[0])
	f.assertAttached(atts[2])
	f.assertDetached(atts[1])
	other.assertAttached(foreign)
	for _, l := range []string{gone.ShortLink, goneOld.ShortLink} {
		if _, err := os.Lstat(l); !os.IsNotExist(err) {
			t.Fatalf("dangling link %s kept: %v", l, err)
		}
	}
	for _, a := range []att{atts[0], atts[2]} {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.del("1.1.0", foreign); err != nil {
		t.Fatal(err)
	}
}
