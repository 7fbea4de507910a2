//go:build integration

package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// uid1 is the pod UID of most tests' attachments.
const uid1 = "0f1d3b4e-58a4-4a1c-9a0e-93e3b1d5b2c7"

// fixture is one test's fake node: kubelet root, short socket dir, bridge.
type fixture struct {
	t       testing.TB
	root    string // fake kubelet root
	short   string // shortSocketDir
	bridge  string
	network string
	ovsdb   string      // OVSDB endpoint in the node configuration ("" = the package's OVS)
	dbonly  *ovsenv.OVS // set by dbOnly
	cni     *libcni.CNIConfig
	extra   map[string]any // more plugin config fields
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	short, err := os.MkdirTemp("/tmp", "vhu-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	return newFixtureAt(t, t.TempDir(), short)
}

// newFixtureAt is newFixture with the kubelet root and the short socket
// directory given (empty directories the caller removes).
func newFixtureAt(t testing.TB, root, short string) *fixture {
	t.Helper()
	f := &fixture{
		t: t, root: root, short: short,
		bridge:  fmt.Sprintf("brt%d", bridgeSeq.Add(1)),
		network: "vhost-net",
		cni:     libcni.NewCNIConfigWithCacheDir([]string{pluginDir}, filepath.Join(root, "cache"), nil),
		extra:   map[string]any{},
	}
	f.vsctl("add-br", f.bridge, "--", "set", "Bridge", f.bridge, "datapath_type=netdev")
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--if-exists", "del-br", f.bridge) })
	return f
}

func (f *fixture) vsctl(args ...string) string {
	f.t.Helper()
	out, err := ovs.Vsctl(context.Background(), args...)
	if err != nil {
		f.t.Fatalf("ovs-vsctl %v: %v", args, err)
	}
	return strings.TrimSpace(out)
}

func (f *fixture) layout() socketpath.Layout {
	return socketpath.Layout{KubeletRoot: f.root, Volume: socketpath.DefaultVolume, ShortDir: f.short}
}

// confList is the network configuration list as a runtime would load it.
func (f *fixture) confList(version string) *libcni.NetworkConfigList {
	f.t.Helper()
	f.writeNodeConfig()
	plugin := map[string]any{"type": "vhostuser", "bridge": f.bridge, "logLevel": "debug"}
	for k, v := range f.extra {
		plugin[k] = v
	}
	b, err := json.Marshal(map[string]any{"cniVersion": version, "name": f.network, "plugins": []any{plugin}})
	if err != nil {
		f.t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		f.t.Fatalf("ConfListFromBytes: %v", err)
	}
	return l
}

// writeNodeConfig writes the node configuration of the fixture's fake node,
// as the installer would, and points the plugin runs of this process at it
// (libcni passes the environment on). Atomic: parallel ADDs read it.
func (f *fixture) writeNodeConfig() {
	f.t.Helper()
	endpoint := ovs.Endpoint()
	if f.ovsdb != "" {
		endpoint = f.ovsdb
	}
	b, err := json.Marshal(map[string]any{
		"kubeletRoot": f.root, "shortSocketDir": f.short, "ovsdbSocket": endpoint,
		"logFile": filepath.Join(f.root, "vhostuser.log"), "deviceInfoDir": filepath.Join(f.root, "devinfo"),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	path := filepath.Join(f.root, "node.json")
	tmp, err := os.CreateTemp(f.root, ".node-*")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := tmp.Write(b); err != nil {
		f.t.Fatal(err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), path); err != nil {
		f.t.Fatal(err)
	}
	os.Setenv(config.EnvNodeConfig, path)
}

// att is one attachment: a pod sandbox and interface.
type att struct {
	containerID, ifName, uid string
}

func (f *fixture) newPod(uid string) {
	f.t.Helper()
	p, err := f.layout().For(socketpath.Attachment{PodUID: uid, IfName: "x"})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.MkdirAll(p.VolumeDir, 0o777); err != nil {
		f.t.Fatal(err)
	}
	// kubelet makes emptyDirs 0777 whatever the umask.
	if err := os.Chmod(p.VolumeDir, 0o777); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) rt(a att) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: a.containerID, NetNS: "/var/run/netns/" + a.containerID, IfName: a.ifName,
		Args: [][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "virt-launcher-" + a.containerID}, {"K8S_POD_UID", a.uid}, {"IgnoreUnknown", "1"}},
	}
}

func (f *fixture) paths(a att) socketpath.Paths {
	f.t.Helper()
	p, err := f.layout().For(socketpath.Attachment{PodUID: a.uid, IfName: a.ifName})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) add(version string, a att) (types.Result, error) {
	return f.cni.AddNetworkList(context.Background(), f.confList(version), f.rt(a))
}

func (f *fixture) del(version string, a att) error {
	return f.cni.DelNetworkList(context.Background(), f.confList(version), f.rt(a))
}

func (f *fixture) check(version string, a att) error {
	return f.cni.CheckNetworkList(context.Background(), f.confList(version), f.rt(a))
}

// get reads one column of a record with ovs-vsctl ("" when the record is missing).
func (f *fixture) get(table, record, column string) string {
	f.t.Helper()
	out := f.vsctl("--if-exists", "get", table, record, column)
	if s, err := strconv.Unquote(out); err == nil {
		return s
	}
	return out
}

// portNames lists the ports on the fixture's bridge.
func (f *fixture) portNames() []string {
	out := f.vsctl("list-ports", f.bridge)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// assertAttached checks OVS and the filesystem after a successful ADD.
func (f *fixture) assertAttached(a att) {
	f.t.Helper()
	p := f.paths(a)
	name := ovsdb.PortName(p.ID)
	if br := f.vsctl("port-to-br", name); br != f.bridge {
		f.t.Fatalf("port %s is on bridge %q, want %q", name, br, f.bridge)
	}
	if typ := f.get("Interface", name, "type"); typ != "dpdkvhostuserclient" {
		f.t.Fatalf("interface %s type %q", name, typ)
	}
	if path := f.get("Interface", name, "options:vhost-server-path"); path != p.OVSSocket {
		f.t.Fatalf("vhost-server-path %q, want %q", path, p.OVSSocket)
	}
	for k, v := range map[string]string{
		"vhostuser.kubevirt.io/owner": "vhostuser-cni", "vhostuser.kubevirt.io/container-id": a.containerID,
		"vhostuser.kubevirt.io/ifname": a.ifName, "vhostuser.kubevirt.io/pod-uid": a.uid,
		"vhostuser.kubevirt.io/pod-namespace": "default", "vhostuser.kubevirt.io/pod-name": "virt-launcher-" + a.containerID,
	} {
		if got := f.get("Port", name, "external_ids:"+k); got != v {
			f.t.Fatalf("port %s external_ids:%s = %q, want %q", name, k, got, v)
		}
	}
	// ovs-vswitchd accepted the port: an OpenFlow port number and no error.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ofport := f.get("Interface", name, "ofport")
		errCol := f.get("Interface", name, "error")
		if errCol != "[]" && errCol != "" {
			f.t.Fatalf("interface %s error: %s", name, errCol)
		}
		if ofport != "[]" && ofport != "-1" && ofport != "" {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("interface %s has ofport %q after 10 s", name, ofport)
		}
		time.Sleep(50 * time.Millisecond)
	}
	assertDir(f.t, p.HostDir, 0, 107, 0o777|os.ModeSticky)
	assertDir(f.t, filepath.Dir(p.HostDir), 0, 0, 0o755)
	if fi, err := os.Lstat(p.VolumeDir); err != nil || fi.Mode()&os.ModeSticky == 0 {
		f.t.Fatalf("pod volume %s is not sticky: %v %v", p.VolumeDir, fi.Mode(), err)
	}
	if target, err := os.Readlink(p.ShortLink); err != nil || target != p.HostDir {
		f.t.Fatalf("short link %s -> %q (%v), want %s", p.ShortLink, target, err, p.HostDir)
	}
}

// assertDetached checks that nothing of the attachment remains.
func (f *fixture) assertDetached(a att) {
	f.t.Helper()
	p := f.paths(a)
	name := ovsdb.PortName(p.ID)
	if out := f.vsctl("--bare", "--columns=name", "find", "Port", "name="+name); out != "" {
		f.t.Fatalf("port %s still exists", name)
	}
	if out := f.vsctl("--bare", "--columns=name", "find", "Interface", "name="+name); out != "" {
		f.t.Fatalf("interface %s still exists", name)
	}
	for _, path := range []string{p.ShortLink, p.HostDir} {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			f.t.Fatalf("%s still exists (%v)", path, err)
		}
	}
	if br := f.vsctl("--bare", "--columns=name", "find", "Bridge", "name="+f.bridge); br != f.bridge {
		f.t.Fatalf("bridge %s was removed", f.bridge)
	}
}

func assertDir(t testing.TB, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetgid|os.ModeSetuid) != mode {
		t.Fatalf("%s: mode %v owner %d:%d, want dir %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// ourPorts counts ports on any bridge that carry our ownership mark for this fixture's bridge.
func (f *fixture) ourPorts() int {
	n := 0
	for _, p := range f.portNames() {
		if f.get("Port", p, "external_ids:vhostuser.kubevirt.io/owner") == "vhostuser-cni" {
			n++
		}
	}
	return n
}

// shortEntries lists the short socket directory.
func (f *fixture) shortEntries() []string {
	ents, _ := os.ReadDir(f.short)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// acceptFromOVS listens on the OVS socket path (QEMU's role) and waits for
// ovs-vswitchd to connect through the short link.
func acceptFromOVS(t testing.TB, p socketpath.Paths) {
	t.Helper()
	l, err := net.Listen("unix", p.OVSSocket)
	if err != nil {
		t.Fatalf("listen on %s (%d bytes): %v", p.OVSSocket, len(p.OVSSocket), err)
	}
	defer l.Close()
	if _, err := os.Lstat(p.HostSocket); err != nil {
		t.Fatalf("socket not in the pod volume: %v", err)
	}
	if err := l.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("ovs-vswitchd did not connect to %s: %v", p.OVSSocket, err)
	}
	c.Close()
}

// ifaceRow is one Interface row as ovs-vsctl lists it.
type ifaceRow struct {
	Type                 string
	Options, ExternalIDs map[string]string
	Ofport               float64
	Error                string
}

// interfaces lists every Interface in one ovs-vsctl call (JSON format).
func (f *fixture) interfaces() map[string]ifaceRow {
	f.t.Helper()
	out := f.vsctl("--format=json", "--columns=name,type,options,external_ids,ofport,error", "list", "Interface")
	var tbl struct {
		Data [][]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &tbl); err != nil {
		f.t.Fatalf("parse ovs-vsctl JSON: %v", err)
	}
	toMap := func(v any) map[string]string {
		m := map[string]string{}
		if a, ok := v.([]any); ok && len(a) == 2 && a[0] == "map" {
			for _, kv := range a[1].([]any) {
				p := kv.([]any)
				m[p[0].(string)], _ = p[1].(string)
			}
		}
		return m
	}
	rows := map[string]ifaceRow{}
	for _, r := range tbl.Data {
		row := ifaceRow{Options: toMap(r[2]), ExternalIDs: toMap(r[3]), Ofport: -1}
		row.Type, _ = r[1].(string)
		if n, ok := r[4].(float64); ok {
			row.Ofport = n
		}
		if e, ok := r[5].(string); ok {
			row.Error = e
		}
		rows[r[0].(string)] = row
	}
	return rows
}

// assertAllAttached is assertAttached for many attachments with a few
// ovs-vsctl calls in all, for the concurrency tests.
func (f *fixture) assertAllAttached(atts []att) {
	f.t.Helper()
	onBridge := map[string]bool{}
	for _, p := range f.portNames() {
		onBridge[p] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows := f.interfaces()
		pending := 0
		for _, a := range atts {
			p := f.paths(a)
			name := ovsdb.PortName(p.ID)
			r, ok := rows[name]
			if !ok || !onBridge[name] {
				f.t.Fatalf("%s: port %s missing from bridge %s", a.containerID, name, f.bridge)
			}
			if r.Type != "dpdkvhostuserclient" || r.Options["vhost-server-path"] != p.OVSSocket ||
				r.ExternalIDs["vhostuser.kubevirt.io/container-id"] != a.containerID || r.ExternalIDs["vhostuser.kubevirt.io/owner"] != "vhostuser-cni" {
				f.t.Fatalf("%s: interface %s is %+v", a.containerID, name, r)
			}
			if r.Error != "" {
				f.t.Fatalf("%s: interface %s error %q", a.containerID, name, r.Error)
			}
			if r.Ofport < 1 {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d interfaces without an ofport after 20 s", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, a := range atts {
		p := f.paths(a)
		assertDir(f.t, p.HostDir, 0, 107, 0o777|os.ModeSticky)
		if target, err := os.Readlink(p.ShortLink); err != nil || target != p.HostDir {
			f.t.Fatalf("short link %s -> %q (%v)", p.ShortLink, target, err)
		}
	}
}

// assertAllDetached is assertDetached for many attachments.
func (f *fixture) assertAllDetached(atts []att) {
	f.t.Helper()
	rows := f.interfaces()
	for _, a := range atts {
		p := f.paths(a)
		if _, ok := rows[ovsdb.PortName(p.ID)]; ok {
			f.t.Fatalf("%s: interface still exists", a.containerID)
		}
		for _, path := range []string{p.ShortLink, p.HostDir} {
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				f.t.Fatalf("%s still exists (%v)", path, err)
			}
		}
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
