//go:build integration

package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

const uid1 = "0f1d3b4e-58a4-4a1c-9a0e-93e3b1d5b2c7"

func TestAddCheckDel(t *testing.T) {
	f := newFixture(t)
	a := att{"c0ffee", socketpath.PodInterfaceName("vhost"), uid1}
	f.newPod(a.uid)
	f.extra["mtu"] = 9000
	f.extra["vlan"] = 42
	f.extra["options"] = map[string]string{"tx-retries-max": "8"}
	r, err := f.add("1.1.0", a)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	p := f.paths(a)
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != a.ifName || res.Interfaces[0].SocketPath != p.HostSocket ||
		res.Interfaces[0].Sandbox != "/var/run/netns/"+a.containerID || res.Interfaces[0].Mtu != 9000 {
		t.Fatalf("result interfaces %+v", res.Interfaces)
	}
	f.assertAttached(a)
	name := config.PortName(p.ID)
	if got := f.get("Interface", name, "mtu_request"); got != "9000" {
		t.Fatalf("mtu_request %q", got)
	}
	if got := f.get("Port", name, "tag"); got != "42" {
		t.Fatalf("tag %q", got)
	}
	if got := f.get("Interface", name, "options:tx-retries-max"); got != "8" {
		t.Fatalf("tx-retries-max %q", got)
	}
	// OVS reaches a socket created in the pod's volume through the short link.
	acceptFromOVS(t, p)

	if err := f.check("1.1.0", a); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	f.assertAttached(a)

	// CHECK notices drift, and says what it is.
	f.vsctl("set", "Interface", name, `options:vhost-server-path="/tmp/elsewhere.sock"`)
	if err := f.check("1.1.0", a); err == nil || !strings.Contains(err.Error(), "vhost-server-path") {
		t.Fatalf("CHECK after changing vhost-server-path: %v", err)
	}
	f.vsctl("set", "Interface", name, fmt.Sprintf("options:vhost-server-path=%q", p.OVSSocket))
	if err := os.Remove(p.ShortLink); err != nil {
		t.Fatal(err)
	}
	if err := f.check("1.1.0", a); err == nil || !strings.Contains(err.Error(), "short link") {
		t.Fatalf("CHECK without the short link: %v", err)
	}
	if err := os.Symlink(p.HostDir, p.ShortLink); err != nil {
		t.Fatal(err)
	}

	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	f.assertDetached(a)
	if _, err := os.Stat(p.VolumeDir); err != nil {
		t.Fatalf("DEL removed the pod volume: %v", err)
	}
}

func TestEveryVersion(t *testing.T) {
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			f := newFixture(t)
			f.extra["ipam"] = map[string]any{"type": "host-local", "subnet": "10.77.0.0/24",
				"dataDir": filepath.Join(f.root, "ipam")}
			f.extra["capabilities"] = map[string]bool{"mac": true}
			a := att{"ver" + strings.ReplaceAll(v, ".", ""), "net1", uid1}
			f.newPod(a.uid)
			rt := f.rt(a)
			rt.CapabilityArgs = map[string]any{"mac": "02:00:00:00:00:2a"}
			r, err := f.cni.AddNetworkList(context.Background(), f.confList(v), rt)
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if r.Version() != v {
				t.Fatalf("result version %s, want %s", r.Version(), v)
			}
			raw, _ := json.Marshal(r)
			p := f.paths(a)
			switch v {
			case "0.3.1", "0.4.0":
				res := r.(*types040.Result)
				if len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address.String(), "10.77.0.") || res.Interfaces[0].Mac != "02:00:00:00:00:2a" {
					t.Fatalf("result %s", raw)
				}
				if strings.Contains(string(raw), "socketPath") {
					t.Fatalf("%s result has socketPath: %s", v, raw)
				}
			case "1.0.0":
				res := r.(*current.Result)
				if len(res.IPs) != 1 || res.Interfaces[0].SocketPath != "" || res.Interfaces[0].Mac != "02:00:00:00:00:2a" {
					t.Fatalf("result %s (1.0.0 has no socketPath)", raw)
				}
			default:
				res := r.(*current.Result)
				if len(res.IPs) != 1 || res.Interfaces[0].SocketPath != p.HostSocket || res.Interfaces[0].Mac != "02:00:00:00:00:2a" {
					t.Fatalf("result %s", raw)
				}
			}
			f.assertAttached(a)
			err = f.check(v, a)
			if v == "0.3.1" {
				if err == nil {
					t.Fatal("CHECK succeeded for 0.3.1, which has no CHECK")
				}
			} else if err != nil {
				t.Fatalf("CHECK: %v", err)
			}
			if err := f.del(v, a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			f.assertDetached(a)
			// host-local released the address.
			ents, _ := os.ReadDir(filepath.Join(f.root, "ipam", f.network))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "10.77.") {
					t.Fatalf("address %s still allocated", e.Name())
				}
			}
		})
	}
}

func TestDelIdempotent(t *testing.T) {
	tests := []struct {
		name   string
		before func(f *fixture, a att)
	}{
		{"twice", func(f *fixture, a att) {
			if err := f.del("1.1.0", a); err != nil {
				f.t.Fatalf("first DEL: %v", err)
			}
		}},
		{"port removed by hand", func(f *fixture, a att) {
			f.vsctl("del-port", config.PortName(f.paths(a).ID))
		}},
		{"pod volume gone", func(f *fixture, a att) {
			if err := os.RemoveAll(filepath.Join(f.root, "pods", a.uid)); err != nil {
				f.t.Fatal(err)
			}
		}},
		{"never added", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := att{"idem", "net1", uid1}
			f.newPod(a.uid)
			if tt.before != nil {
				if _, err := f.add("1.1.0", a); err != nil {
					t.Fatalf("ADD: %v", err)
				}
				f.assertAttached(a)
				tt.before(f, a)
			}
			if err := f.del("1.1.0", a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			f.assertDetached(a)
		})
	}
}

func TestDelWithOVSDown(t *testing.T) {
	f := newFixture(t)
	a := att{"down", "net1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	f.assertAttached(a)
	p := f.paths(a)
	ctx := context.Background()
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovs.StartDB(context.Background()) })
	err := f.del("1.1.0", a)
	if err == nil || !strings.Contains(err.Error(), "OVSDB unreachable") {
		t.Fatalf("DEL with OVSDB down: %v, want an error about OVSDB (the port remains)", err)
	}
	// The directory and link stay: without OVSDB the plugin cannot tell
	// whether a newer sandbox of the pod uses them (the chaos test found a
	// late DEL removing them under a live sandbox). The retried DEL cleans.
	for _, path := range []string{p.ShortLink, p.HostDir} {
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("%s removed while OVSDB was down: %v", path, err)
		}
	}
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.get("Port", config.PortName(p.ID), "name"); got == "" {
		t.Fatal("port vanished while OVSDB was down?")
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL after OVSDB is back: %v", err)
	}
	f.assertDetached(a)
}

// TestLateDelWithOVSDown: the old sandbox's DEL arrives while OVSDB is down,
// after a newer sandbox of the same pod took the attachment over. It must not
// remove the newer sandbox's socket directory or short link, then or when
// retried after OVSDB is back.
func TestLateDelWithOVSDown(t *testing.T) {
	f := newFixture(t)
	old, cur := att{"late1", "net1", uid1}, att{"late2", "net1", uid1}
	f.newPod(uid1)
	if _, err := f.add("1.1.0", old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.add("1.1.0", cur); err != nil {
		t.Fatalf("ADD of the new sandbox: %v", err)
	}
	ctx := context.Background()
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovs.StartDB(context.Background()) })
	if err := f.del("1.1.0", old); err == nil {
		t.Fatal("late DEL with OVSDB down succeeded; it cannot know the port is gone")
	}
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	f.assertAttached(cur)
	if err := f.del("1.1.0", old); err != nil {
		t.Fatalf("late DEL retried with OVSDB back: %v", err)
	}
	f.assertAttached(cur)
	if err := f.del("1.1.0", cur); err != nil {
		t.Fatal(err)
	}
	f.assertDetached(cur)
}

func TestAddRollback(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fixture, a *att)
		wantErr string
	}{
		{"missing bridge", func(f *fixture, a *att) { f.bridge = "br-missing" }, "bridge"},
		{"missing emptyDir", func(f *fixture, a *att) { a.uid = "no-such-pod" }, "emptyDir"},
		{"failing IPAM", func(f *fixture, a *att) {
			f.extra["ipam"] = map[string]any{"type": "host-local", "subnet": "300.1.0.0/24", "dataDir": filepath.Join(f.root, "ipam")}
		}, "IPAM"},
		{"failing IPAM with a bridge it created", func(f *fixture, a *att) {
			f.bridge = fmt.Sprintf("brnew%d", bridgeSeq.Add(1))
			f.extra["createBridge"] = true
			f.extra["ipam"] = map[string]any{"type": "static", "addresses": []any{map[string]any{"address": "not-an-ip"}}}
		}, "IPAM"},
		{"missing K8S_POD_UID", func(f *fixture, a *att) { a.uid = "" }, "K8S_POD_UID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := att{"rollback", "net1", uid1}
			f.newPod(uid1)
			realBridge := f.bridge
			tt.setup(f, &a)
			_, err := f.add("1.1.0", a)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ADD: %v, want an error mentioning %q", err, tt.wantErr)
			}
			if out := f.vsctl("--bare", "--columns=name", "find", "Port", "external_ids:vhostuser.kubevirt.io/container-id=rollback"); out != "" {
				t.Fatalf("port left behind: %s", out)
			}
			if out := f.vsctl("--bare", "--columns=name", "find", "Bridge", "name="+f.bridge); f.bridge != realBridge && out != "" {
				t.Fatalf("bridge %s left behind", f.bridge)
			}
			if ents := f.shortEntries(); len(ents) != 0 {
				t.Fatalf("short dir not empty: %v", ents)
			}
			if _, err := os.Lstat(filepath.Join(f.root, "pods", uid1, "volumes", "kubernetes.io~empty-dir", socketpath.DefaultVolume, "vhostuser")); !os.IsNotExist(err) {
				t.Fatalf("socket directory left behind: %v", err)
			}
		})
	}
}

func TestContainerIDcni(t *testing.T) {
	f := newFixture(t)
	a := att{"cni", "eth1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	f.assertAttached(a)
	if err := f.check("1.1.0", a); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	f.assertDetached(a)
}

// TestSocketPathBoundary places shortSocketDir so that the OVS socket path is
// exactly 107 bytes (accepted, and OVS connects over it) or 108 (refused).
func TestSocketPathBoundary(t *testing.T) {
	for _, total := range []int{socketpath.MaxSocketPath, socketpath.MaxSocketPath + 1} {
		t.Run(fmt.Sprint(total), func(t *testing.T) {
			f := newFixture(t)
			f.newPod(uid1)
			// OVS socket = shortDir + "/" + IDLen-hex id + "/vhost.sock".
			need := total - (1 + socketpath.IDLen + 1 + len(socketpath.SocketName))
			pad := need - len(f.short) - 1
			if pad < 1 {
				t.Fatalf("temp dir %s too long for the test", f.short)
			}
			f.short = filepath.Join(f.short, strings.Repeat("d", pad))
			if len(f.short) != need {
				t.Fatalf("short dir %d bytes, want %d", len(f.short), need)
			}
			a := att{"edge", "net1", uid1}
			_, err := f.add("1.1.0", a)
			if total > socketpath.MaxSocketPath {
				if err == nil || !strings.Contains(err.Error(), "shortSocketDir") {
					t.Fatalf("ADD with a %d-byte socket path: %v, want a shortSocketDir error", total, err)
				}
				if f.ourPorts() != 0 {
					t.Fatal("port created for a refused configuration")
				}
				if _, err := os.Stat(f.short); !os.IsNotExist(err) {
					t.Fatalf("short dir created for a refused configuration: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ADD with a %d-byte socket path: %v", total, err)
			}
			p := f.paths(a)
			if len(p.OVSSocket) != total {
				t.Fatalf("OVS socket %d bytes, want %d", len(p.OVSSocket), total)
			}
			f.assertAttached(a)
			acceptFromOVS(t, p)
			if err := f.del("1.1.0", a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			f.assertDetached(a)
		})
	}
}

func TestHostileInput(t *testing.T) {
	tests := []struct {
		name    string
		a       att
		prepare func(f *fixture, outside string)
	}{
		{"uid traversal", att{"h1", "net1", "../../../../tmp"}, nil},
		{"uid with slash", att{"h2", "net1", "a/b"}, nil},
		{"uid dot", att{"h3", "net1", "."}, nil},
		{"uid too long", att{"h4", "net1", strings.Repeat("u", 65)}, nil},
		{"uid with semicolon injection", att{"h5", "net1", "x;K8S_POD_UID=y"}, nil},
		{"ifname with control char", att{"h6", "a\x01b", uid1}, nil},
		{"ifname dotdot", att{"h7", "..", uid1}, nil},
		{"ifname slash", att{"h8", "a/../../b", uid1}, nil},
		{"ifname too long", att{"h9", "abcdefghijklmnop", uid1}, nil},
		{"sockets dir is a symlink out of the volume", att{"h10", "net1", uid1}, func(f *fixture, outside string) {
			p := f.paths(att{"h10", "net1", uid1})
			if err := os.Symlink(outside, filepath.Join(p.VolumeDir, socketpath.SocketsDir)); err != nil {
				f.t.Fatal(err)
			}
		}},
		{"interface dir is a symlink", att{"h11", "net1", uid1}, func(f *fixture, outside string) {
			p := f.paths(att{"h11", "net1", uid1})
			if err := os.MkdirAll(filepath.Dir(p.HostDir), 0o755); err != nil {
				f.t.Fatal(err)
			}
			if err := os.Symlink(outside, p.HostDir); err != nil {
				f.t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.newPod(uid1)
			outside := t.TempDir()
			if tt.prepare != nil {
				tt.prepare(f, outside)
			}
			before, _ := os.Stat(outside)
			if _, err := f.add("1.1.0", tt.a); err == nil {
				t.Fatal("ADD accepted hostile input")
			}
			if f.ourPorts() != 0 {
				t.Fatal("a port was created")
			}
			if ents := f.shortEntries(); len(ents) != 0 {
				t.Fatalf("short links created: %v", ents)
			}
			after, _ := os.Stat(outside)
			if ents, _ := os.ReadDir(outside); len(ents) != 0 || after.Mode() != before.Mode() {
				t.Fatalf("directory outside the volume touched: %v", ents)
			}
			st := after.Sys().(*syscall.Stat_t)
			if st.Uid != 0 {
				t.Fatalf("directory outside the volume chowned to %d", st.Uid)
			}
			// DEL of the same input succeeds (ADD made nothing) and touches nothing.
			err := f.del("1.1.0", tt.a)
			if tt.prepare == nil && err != nil && !strings.Contains(err.Error(), "interface name") {
				t.Fatalf("DEL: %v", err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("DEL touched the outside directory: %v", ents)
			}
		})
	}
}

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

func TestStatus(t *testing.T) {
	f := newFixture(t)
	f.extra["ipam"] = map[string]any{"type": "host-local", "subnet": "10.78.0.0/24", "dataDir": filepath.Join(f.root, "ipam")}
	ctx := context.Background()
	if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); err != nil {
		t.Fatalf("STATUS with OVS up: %v", err)
	}
	wantCode := func(what string, err error, code uint) {
		t.Helper()
		var e *types.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Fatalf("STATUS %s: %v, want CNI error %d", what, err, code)
		}
	}
	realBridge := f.bridge
	f.bridge = "br-absent"
	wantCode("with the bridge missing", f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")), 50)
	f.extra["createBridge"] = true
	if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); err != nil {
		t.Fatalf("STATUS with createBridge and the bridge missing: %v", err)
	}
	f.bridge = realBridge
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovs.StartDB(context.Background()) })
	wantCode("with OVSDB stopped", f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")), 50)
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); err != nil {
		t.Fatalf("STATUS after OVSDB is back: %v", err)
	}
}

func TestCreateBridgeAndDeviceInfo(t *testing.T) {
	f := newFixture(t)
	f.bridge = fmt.Sprintf("brnew%d", bridgeSeq.Add(1))
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--if-exists", "del-br", f.bridge) })
	f.extra["createBridge"] = true
	f.extra["capabilities"] = map[string]bool{"CNIDeviceInfoFile": true}
	a := att{"devinfo", socketpath.PodInterfaceName("net-a"), uid1}
	f.newPod(a.uid)
	infoFile := filepath.Join(f.root, "devinfo", "vhost-net-devinfo.json")
	rt := f.rt(a)
	rt.CapabilityArgs = map[string]any{"CNIDeviceInfoFile": infoFile}
	if _, err := f.cni.AddNetworkList(context.Background(), f.confList("1.1.0"), rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if dp := f.get("Bridge", f.bridge, "datapath_type"); dp != "netdev" {
		t.Fatalf("created bridge datapath_type %q", dp)
	}
	if mark := f.get("Bridge", f.bridge, "external_ids:vhostuser.kubevirt.io/created-bridge"); mark != "true" {
		t.Fatalf("created bridge mark %q", mark)
	}
	f.assertAttached(a)
	var info struct {
		Type, Version string
		VhostUser     struct{ Mode, Path string } `json:"vhost-user"`
	}
	b, err := os.ReadFile(infoFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	want, _ := socketpath.ComputeSocketForNetwork("net-a")
	if info.Type != "vhost-user" || info.Version != "1.1.0" || info.VhostUser.Path != want || info.VhostUser.Mode != "server" {
		t.Fatalf("device-info %s, want path %s", b, want)
	}
	if err := f.cni.DelNetworkList(context.Background(), f.confList("1.1.0"), rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	f.assertDetached(a)
	if _, err := os.Stat(infoFile); !os.IsNotExist(err) {
		t.Fatalf("device-info file kept: %v", err)
	}
}

// TestSandboxRecreated: a new sandbox of the same pod (new container id, same
// pod UID and ifname) takes the port over; the old sandbox's late DEL leaves it.
func TestSandboxRecreated(t *testing.T) {
	f := newFixture(t)
	old, cur := att{"sandbox1", "net1", uid1}, att{"sandbox2", "net1", uid1}
	f.newPod(uid1)
	if _, err := f.add("1.1.0", old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.add("1.1.0", cur); err != nil {
		t.Fatalf("ADD of the new sandbox: %v", err)
	}
	f.assertAttached(cur)
	if err := f.del("1.1.0", old); err != nil {
		t.Fatalf("late DEL of the old sandbox: %v", err)
	}
	name := config.PortName(f.paths(cur).ID)
	if got := f.get("Port", name, "external_ids:vhostuser.kubevirt.io/container-id"); got != "sandbox2" {
		t.Fatalf("the old sandbox's DEL removed the new port (container-id %q)", got)
	}
	f.assertAttached(cur) // also the socket directory and the short link
	if err := f.del("1.1.0", cur); err != nil {
		t.Fatal(err)
	}
	f.assertDetached(cur)
}

func TestParallel(t *testing.T) {
	f := newFixture(t)
	const n = 50
	atts := make([]att, n)
	for i := range atts {
		atts[i] = att{fmt.Sprintf("par%02d", i), "net1", fmt.Sprintf("pod-%02d", i)}
		f.newPod(atts[i].uid)
	}
	run := func(op func(att) error) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, a := range atts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(a); err != nil {
					errs <- fmt.Errorf("%s: %w", a.containerID, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	run(func(a att) error { _, err := f.add("1.1.0", a); return err })
	if got := len(f.portNames()); got != n {
		t.Fatalf("%d ports after %d parallel ADDs", got, n)
	}
	f.assertAllAttached(atts)
	run(func(a att) error { return f.del("1.1.0", a) })
	if got := len(f.portNames()); got != 0 {
		t.Fatalf("%d ports left after parallel DELs", got)
	}
	f.assertAllDetached(atts)
	if ents := f.shortEntries(); len(ents) != 0 {
		t.Fatalf("short links left: %v", ents)
	}
}

// TestParallelCreateBridge: concurrent ADDs racing to create the same missing
// bridge all succeed (the losers retry on the unique-name conflict).
func TestParallelCreateBridge(t *testing.T) {
	f := newFixture(t)
	f.bridge = fmt.Sprintf("brnew%d", bridgeSeq.Add(1))
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--if-exists", "del-br", f.bridge) })
	f.extra["createBridge"] = true
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	atts := make([]att, n)
	for i := range atts {
		atts[i] = att{fmt.Sprintf("cb%02d", i), "net1", fmt.Sprintf("cb-pod-%02d", i)}
		f.newPod(atts[i].uid)
	}
	for _, a := range atts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.add("1.1.0", a); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if got := f.vsctl("--bare", "--columns=name", "find", "Bridge", "name="+f.bridge); got != f.bridge {
		t.Fatalf("bridge %q", got)
	}
	if got := len(f.portNames()); got != n {
		t.Fatalf("%d ports, want %d", got, n)
	}
	f.assertAllAttached(atts)
	for _, a := range atts {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}
	f.assertAllDetached(atts)
}

// TestDelInvalidConfig: DEL with the configuration an ADD refused succeeds.
func TestDelInvalidConfig(t *testing.T) {
	f := newFixture(t)
	f.extra["vlan"] = 5000
	a := att{"badconf", "net1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err == nil || !strings.Contains(err.Error(), `"vlan"`) {
		t.Fatalf("ADD: %v, want a vlan error", err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestNotReady: with a bridge that is not netdev or with DPDK not
// initialised, ADD fails saying what to fix (and leaves nothing), and STATUS
// reports not-ready (50). Healthy ADDs keep these checks in their one
// transaction (waits), so only a failure costs a read.
func TestNotReady(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		break_  func(f *fixture)
		restore func(f *fixture)
		wantErr string
	}{
		{"system bridge", func(f *fixture) {
			f.bridge = fmt.Sprintf("brsys%d", bridgeSeq.Add(1))
			f.vsctl("add-br", f.bridge, "--", "set", "Bridge", f.bridge, "datapath_type=system")
		}, func(f *fixture) { _, _ = ovs.Vsctl(ctx, "--if-exists", "del-br", f.bridge) }, "datapath_type"},
		// ovs-vswitchd rewrites dpdk_initialized and iface_types, so these
		// cases use an ovsdb-server of their own without ovs-vswitchd, as
		// a node looks when the non-DPDK vswitchd runs or DPDK failed.
		{"DPDK not initialised", func(f *fixture) { f.dbOnly() }, func(f *fixture) {}, "dpdk-init"},
		{"no dpdkvhostuserclient", func(f *fixture) {
			f.dbOnly()
			f.dbOnlyVsctl("set", "Open_vSwitch", ".", "dpdk_initialized=true")
		}, func(f *fixture) {}, "DPDK build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := att{"notready", "net1", uid1}
			f.newPod(a.uid)
			tt.break_(f)
			t.Cleanup(func() { tt.restore(f) })
			_, err := f.add("1.1.0", a)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ADD: %v, want an error mentioning %q", err, tt.wantErr)
			}
			if out := f.vsctl("--bare", "--columns=name", "find", "Port", "external_ids:vhostuser.kubevirt.io/container-id=notready"); out != "" {
				t.Fatalf("port left behind: %s", out)
			}
			if ents := f.shortEntries(); len(ents) != 0 {
				t.Fatalf("short links left: %v", ents)
			}
			var e *types.Error
			if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); !errors.As(err, &e) || e.Code != 50 || !strings.Contains(e.Msg, tt.wantErr) {
				t.Fatalf("STATUS: %v, want error 50 mentioning %q", err, tt.wantErr)
			}
			tt.restore(f)
			if err := f.del("1.1.0", a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
		})
	}
}

// dbOnly points the fixture at a private ovsdb-server without ovs-vswitchd,
// with the fixture's bridge (netdev) in it.
func (f *fixture) dbOnly() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := ovsenv.Start(ctx, ovsenv.Options{Name: "vhunr", NoVswitchd: true})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = o.Stop() })
	f.dbonly = o
	f.ovsdb = o.Endpoint()
	f.dbOnlyVsctl("add-br", f.bridge, "--", "set", "Bridge", f.bridge, "datapath_type=netdev")
}

func (f *fixture) dbOnlyVsctl(args ...string) {
	f.t.Helper()
	if out, err := f.dbonly.Vsctl(context.Background(), append([]string{"--no-wait"}, args...)...); err != nil {
		f.t.Fatalf("ovs-vsctl %v: %v %s", args, err, out)
	}
}

// TestDelLegacyLink: an attachment made by a release with the 48-bit ID has
// its short link named by the first 12 hex characters; DEL removes it too.
func TestDelLegacyLink(t *testing.T) {
	f := newFixture(t)
	a := att{"legacy", "net1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatal(err)
	}
	p := f.paths(a)
	legacy := filepath.Join(f.short, p.ID[:12])
	if err := os.Symlink(p.HostDir, legacy); err != nil {
		t.Fatal(err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	f.assertDetached(a)
	if _, err := os.Lstat(legacy); !os.IsNotExist(err) {
		t.Fatalf("legacy link kept: %v", err)
	}
}

// TestPortOfAnotherAttachment: a port with this attachment's name but
// another pod's marks (a collision, or a forged row) is not replaced.
func TestPortOfAnotherAttachment(t *testing.T) {
	f := newFixture(t)
	a := att{"mine", "net1", uid1}
	f.newPod(a.uid)
	name := config.PortName(f.paths(a).ID)
	f.vsctl("add-port", f.bridge, name, "--", "set", "Interface", name, "type=dpdkvhostuserclient",
		"options:vhost-server-path=/tmp/vhu-other.sock",
		"--", "set", "Port", name, "external_ids:vhostuser.kubevirt.io/owner=vhostuser-cni",
		"external_ids:vhostuser.kubevirt.io/pod-uid=another-pod", "external_ids:vhostuser.kubevirt.io/ifname=net1",
		"external_ids:vhostuser.kubevirt.io/container-id=theirs")
	_, err := f.add("1.1.0", a)
	if err == nil || !strings.Contains(err.Error(), "another attachment") {
		t.Fatalf("ADD over another attachment's port: %v", err)
	}
	if got := f.get("Port", name, "external_ids:vhostuser.kubevirt.io/pod-uid"); got != "another-pod" {
		t.Fatalf("the other attachment's port was replaced (pod-uid %q)", got)
	}
	if ents := f.shortEntries(); len(ents) != 0 {
		t.Fatalf("short links left: %v", ents)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := f.get("Port", name, "external_ids:vhostuser.kubevirt.io/pod-uid"); got != "another-pod" {
		t.Fatalf("DEL removed the other attachment's port")
	}
}

// transactions counts the "transact" requests ovsdb-server received (its
// jsonrpc debug log) that mention any of subjects, while fn runs.
// (ovs-vswitchd's own transactions mention neither.)
func transactions(t *testing.T, subjects []string, fn func()) int {
	t.Helper()
	ctx := context.Background()
	if _, err := ovs.Appctl(ctx, "ovsdb-server", "vlog/set", "jsonrpc:file:dbg"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := ovs.Appctl(ctx, "ovsdb-server", "vlog/set", "jsonrpc:file:info"); err != nil {
			t.Error(err)
		}
	}()
	before, err := os.ReadFile(ovs.LogFile("ovsdb-server"))
	if err != nil {
		t.Fatal(err)
	}
	fn()
	after, err := os.ReadFile(ovs.LogFile("ovsdb-server"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(after[len(before):]), "\n") {
		if !strings.Contains(line, `received request, method="transact"`) {
			continue
		}
		for _, s := range subjects {
			if strings.Contains(line, s) {
				n++
				break
			}
		}
	}
	return n
}

// TestRoundTrips: a healthy ADD and its DEL are one OVSDB transaction each
// (the DEL detaches the port under the UUID ADD derived); a port of ours
// under another UUID (a retried ADD replaced it) still goes, with one more.
func TestRoundTrips(t *testing.T) {
	f := newFixture(t)
	a := att{"roundtrip1", "net1", uid1}
	f.newPod(uid1)
	if n := transactions(t, []string{a.containerID}, func() {
		if _, err := f.add("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("ADD sent %d transactions, want 1", n)
	}
	f.assertAttached(a)
	name := config.PortName(f.paths(a).ID)
	if got, want := f.get("Port", name, "_uuid"), ovsdb.PortUUID(a.containerID, a.ifName); got != want {
		t.Fatalf("port UUID %s, want the attachment's %s", got, want)
	}
	if n := transactions(t, []string{a.containerID, f.get("Port", name, "_uuid")}, func() {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("DEL sent %d transactions, want 1", n)
	}
	f.assertDetached(a)

	// ADD again for the same container: its UUID is taken, so the careful
	// path replaces the port under a UUID of the server's.
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("repeated ADD: %v", err)
	}
	replaced := f.get("Port", name, "_uuid")
	if replaced == ovsdb.PortUUID(a.containerID, a.ifName) {
		t.Fatalf("replaced port kept the derived UUID %s", replaced)
	}
	if n := transactions(t, []string{a.containerID, replaced}, func() {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Errorf("DEL of a replaced port sent %d transactions, want 2 (read and detach, then delete by its UUID)", n)
	}
	f.assertDetached(a)
}
