//go:build integration

package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

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
	name := ovsdb.PortName(p.ID)
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

// TestPortOfAnotherAttachment: a port with this attachment's name but
// another pod's marks (a collision, or a forged row) is not replaced.
func TestPortOfAnotherAttachment(t *testing.T) {
	f := newFixture(t)
	a := att{"mine", "net1", uid1}
	f.newPod(a.uid)
	name := ovsdb.PortName(f.paths(a).ID)
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
