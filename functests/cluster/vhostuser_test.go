package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// The node's OVS bridge of make cluster-up (hack/cluster/env.sh: OVS_BRIDGE).
const localBridge = "br-dpdk"

// hookVolume is the emptyDir of a virt-launcher pod that the plugin puts the
// socket directory in (its "volume" default); the pods here carry one of
// that name, as virt-launcher pods do.
const hookVolume = socketpath.DefaultVolume

// columns of each table ovsFind reads.
var columns = map[string]string{"Interface": "name,type,options,external_ids", "Port": "name,external_ids"}

// vhu is a local cluster test of our plugin: the node configuration our
// installer DaemonSet wrote, and the layout the plugin derives from it.
type vhu struct {
	*local
	node   config.NodeConf
	layout socketpath.Layout
}

// setupVhostuser is setupLocal plus the node's configuration, read from the
// file the installer DaemonSet writes, as the plugin reads it: the tests
// look where the plugin was told to work, and talk to the OVSDB it uses.
func setupVhostuser(t *testing.T) *vhu {
	t.Helper()
	l := setupLocal(t)
	if _, err := exec.LookPath("ovs-vsctl"); err != nil {
		t.Fatalf("ovs-vsctl not in PATH (make deps): %v", err)
	}
	if _, err := os.Stat(config.DefaultNodeConfigFile); err != nil {
		t.Fatalf("node configuration: %v (the installer DaemonSet writes it)", err)
	}
	n, err := config.LoadNode(config.DefaultNodeConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	return &vhu{local: l, node: n, layout: socketpath.Layout{KubeletRoot: n.KubeletRoot, Volume: hookVolume, ShortDir: n.ShortSocketDir}}
}

// ovsDB is the node's OVSDB endpoint in ovs-vsctl's --db syntax.
func (l *vhu) ovsDB() string {
	if strings.HasPrefix(l.node.OVSDBSocket, "unix:") {
		return l.node.OVSDBSocket
	}
	return "unix:" + l.node.OVSDBSocket
}

// nodeView is how this machine sees a node of make cluster-up: its OVSDB
// (ovs-vsctl's --db syntax) and the root of its mount namespace, under
// which the node's paths are found ("" for node 1, which is this machine's).
type nodeView struct {
	name, db, root string
}

// view returns node's nodeView. Node 2's database also listens in its OVS
// directory (hack/cluster/ovs.sh), and the process holding its namespaces
// shows its mount namespace's root in /proc.
func (l *vhu) view(node string) nodeView {
	l.t.Helper()
	if node == node1 {
		return nodeView{name: node, db: l.ovsDB()}
	}
	holder, err := os.ReadFile(filepath.Join(l.state, "pid", "node2", "holder.pid"))
	if err != nil {
		l.t.Fatalf("node 2's namespace holder (make cluster-up with two nodes writes its pid): %v", err)
	}
	return nodeView{
		name: node,
		db:   "unix:" + filepath.Join(l.nodeDir(node), "ovs", "db.sock"),
		root: filepath.Join("/proc", strings.TrimSpace(string(holder)), "root"),
	}
}

// path is p as seen from this machine.
func (v nodeView) path(p string) string { return filepath.Join(v.root, p) }

// ovsFind returns the rows of node 1's table whose external_ids carry
// key=value, each as column name -> value in ovs-vsctl's JSON encoding.
func (l *vhu) ovsFind(ctx context.Context, table, key, value string) []map[string]any {
	l.t.Helper()
	return l.ovsFindOn(ctx, l.view(node1), table, key, value)
}

// ovsFindOn is ovsFind on node v.
func (l *vhu) ovsFindOn(ctx context.Context, v nodeView, table, key, value string) []map[string]any {
	l.t.Helper()
	out, err := exec.CommandContext(ctx, "ovs-vsctl", "--db", v.db, "--timeout", "10", "--format", "json",
		"--columns", columns[table], "find", table,
		fmt.Sprintf("external_ids:%q=%q", key, value)).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ovs-vsctl find %s on %s: %v: %s", table, v.name, err, out)
	}
	var res struct {
		Headings []string `json:"headings"`
		Data     [][]any  `json:"data"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		l.t.Fatalf("ovs-vsctl JSON: %v: %s", err, out)
	}
	var rows []map[string]any
	for _, d := range res.Data {
		row := map[string]any{}
		for i, h := range res.Headings {
			row[h] = d[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// ovsMap decodes ovs-vsctl's ["map", [[k, v], ...]].
func ovsMap(v any) map[string]string {
	m := map[string]string{}
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 || pair[0] != "map" {
		return m
	}
	entries, _ := pair[1].([]any)
	for _, e := range entries {
		kv, ok := e.([]any)
		if ok && len(kv) == 2 {
			m[fmt.Sprint(kv[0])] = fmt.Sprint(kv[1])
		}
	}
	return m
}

// networkStatus is one entry of Multus' k8s.v1.cni.cncf.io/network-status
// annotation (the multi-net spec).
type networkStatus struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
}

// TestLocalClusterVhostuserPod: Multus, called by containerd under a real
// kubelet, calls our plugin (installed by our DaemonSet, configured by the
// node configuration it wrote) for a plain pod annotated with a vhostuser
// NetworkAttachmentDefinition; the OVS port, short link and socket directory
// exist while the pod runs, named and laid out as pkg/socketpath and
// docs/configuration.md say, and are gone after the pod is deleted.
func TestLocalClusterVhostuserPod(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	netName := l.applyNAD(ctx, "vhostuser", localBridge)
	pod := vhostuserPod(l.ns, "vhu", "vhostuser")
	start := time.Now()
	l.apply(ctx, pod)
	l.waitRunning(ctx, "vhu")
	t.Logf("pod with the vhostuser network Running %.1f s after apply", time.Since(start).Seconds())

	uid := l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", "vhu")
	ifname := l.multusIfname(ctx, "vhu", "vhostuser")
	p, err := l.layout.For(socketpath.Attachment{PodUID: uid, IfName: ifname})
	if err != nil {
		t.Fatal(err)
	}
	// docs/configuration.md: port vhu<id>, 32 hex characters.
	portName := "vhu" + p.ID
	if len(p.ID) != socketpath.IDLen || len(portName) != 3+32 {
		t.Fatalf("attachment ID %q: want %d hex characters", p.ID, socketpath.IDLen)
	}

	ifaces := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/pod-uid", uid)
	if len(ifaces) != 1 {
		t.Fatalf("want 1 OVS interface of pod %s, got %v", uid, ifaces)
	}
	iface := ifaces[0]
	if iface["name"] != portName {
		t.Errorf("interface name %v, want %s", iface["name"], portName)
	}
	if iface["type"] != "dpdkvhostuserclient" {
		t.Errorf("interface type %v, want dpdkvhostuserclient", iface["type"])
	}
	ids := ovsMap(iface["external_ids"])
	for k, want := range map[string]string{
		"vhostuser.kubevirt.io/owner":         "vhostuser-cni",
		"vhostuser.kubevirt.io/pod-namespace": l.ns,
		"vhostuser.kubevirt.io/pod-name":      "vhu",
		"vhostuser.kubevirt.io/ifname":        ifname,
		"vhostuser.kubevirt.io/network":       netName,
	} {
		if ids[k] != want {
			t.Errorf("external_ids %s = %q, want %q (all: %v)", k, ids[k], want, ids)
		}
	}
	if ids["vhostuser.kubevirt.io/container-id"] == "" {
		t.Errorf("external_ids lack the container id: %v", ids)
	}
	ports := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", uid)
	if len(ports) != 1 {
		t.Fatalf("want 1 OVS port of pod %s, got %v", uid, ports)
	}
	if ports[0]["name"] != portName {
		t.Errorf("port name %v, want %s", ports[0]["name"], portName)
	}
	br, err := exec.CommandContext(ctx, "ovs-vsctl", "--db", l.ovsDB(), "port-to-br", portName).Output()
	if err != nil || strings.TrimSpace(string(br)) != localBridge {
		t.Errorf("port %s is on bridge %q (%v), want %s", portName, br, err, localBridge)
	}

	// vhost-server-path: <short dir>/<id>/vhost.sock, <short dir>/<id> a link
	// into this pod's emptyDir as the kubelet lays it out.
	server := ovsMap(iface["options"])["vhost-server-path"]
	if server != p.OVSSocket || len(server) > socketpath.MaxSocketPath {
		t.Fatalf("vhost-server-path %q, want %q (at most %d bytes)", server, p.OVSSocket, socketpath.MaxSocketPath)
	}
	target, err := filepath.EvalSymlinks(p.ShortLink)
	if err != nil {
		t.Fatalf("short link %s: %v", p.ShortLink, err)
	}
	if target != p.HostDir {
		t.Fatalf("short link %s resolves to %s, want the pod's socket directory %s", p.ShortLink, target, p.HostDir)
	}
	l.checkModes(p)
	// The same directory seen from inside the pod.
	l.kubectl(ctx, "-n", l.ns, "exec", "vhu", "--", "/bin/busybox", "test", "-d", filepath.Dir(p.ComputeSocket))

	start = time.Now()
	l.kubectl(ctx, "-n", l.ns, "delete", "pod", "vhu", "--wait", "--timeout", "60s")
	t.Logf("vhostuser pod deleted in %.1f s", time.Since(start).Seconds())
	l.checkGone(ctx, uid, p)
}

// checkModes: the socket directory and its parents as
// docs/configuration.md and docs/security.md describe them, from the node
// configuration: <ifname>/ root:socketDirGroup socketDirMode, vhostuser/
// root:root 0755, the volume root sticky.
func (l *vhu) checkModes(p socketpath.Paths) {
	l.t.Helper()
	wantMode, err := strconv.ParseUint(l.node.SocketDirMode, 8, 32)
	if err != nil {
		l.t.Fatalf("node socketDirMode %q: %v", l.node.SocketDirMode, err)
	}
	for _, c := range []struct {
		dir      string
		uid, gid int
		mode     uint64
	}{
		{p.HostDir, 0, *l.node.SocketDirGroup, wantMode},
		{filepath.Dir(p.HostDir), 0, 0, 0o755},
	} {
		uid, gid, mode := statDir(l.t, c.dir)
		if uid != c.uid || gid != c.gid || mode != c.mode {
			l.t.Errorf("%s is %d:%d %#o, want %d:%d %#o", c.dir, uid, gid, mode, c.uid, c.gid, c.mode)
		}
	}
	if _, _, mode := statDir(l.t, p.VolumeDir); mode&0o1000 == 0 {
		l.t.Errorf("pod volume %s is %#o, want the sticky bit", p.VolumeDir, mode)
	}
}

// statDir returns owner, group and mode bits (permissions, setuid, setgid,
// sticky) of a directory, not following a symlink.
func statDir(t *testing.T, dir string) (uid, gid int, mode uint64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		t.Fatalf("stat %s: %v", dir, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Fatalf("%s is not a directory (mode %#o)", dir, st.Mode)
	}
	return int(st.Uid), int(st.Gid), uint64(st.Mode & 0o7777)
}

// checkGone: after the pod's deletion, no OVS interface or port of the pod,
// no short link, and (once the kubelet has removed the volume) no socket
// directory on node 1.
func (l *vhu) checkGone(ctx context.Context, uid string, p socketpath.Paths) {
	l.t.Helper()
	l.checkGoneOn(ctx, l.view(node1), uid, p)
}

// checkGoneOn is checkGone on node v.
func (l *vhu) checkGoneOn(ctx context.Context, v nodeView, uid string, p socketpath.Paths) {
	l.t.Helper()
	if rows := l.ovsFindOn(ctx, v, "Interface", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 0 {
		l.t.Errorf("%s: OVS interfaces left after pod deletion: %v", v.name, rows)
	}
	if rows := l.ovsFindOn(ctx, v, "Port", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 0 {
		l.t.Errorf("%s: OVS ports left after pod deletion: %v", v.name, rows)
	}
	if _, err := os.Lstat(v.path(p.ShortLink)); !os.IsNotExist(err) {
		l.t.Errorf("%s: short link %s left after pod deletion (%v)", v.name, p.ShortLink, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l.eventually(wctx, "socket directory removed with the pod on "+v.name, func() error {
		if _, err := os.Lstat(v.path(p.HostDir)); !os.IsNotExist(err) {
			return fmt.Errorf("%s: %s left after pod deletion (%v)", v.name, p.HostDir, err)
		}
		return nil
	})
}

// multusIfname returns the pod interface name Multus reports in the pod's
// network-status annotation for the namespace's NAD nad.
func (l *local) multusIfname(ctx context.Context, pod, nad string) string {
	l.t.Helper()
	statuses, statusJSON := l.networkStatus(ctx, pod)
	for _, s := range statuses {
		if s.Name == l.ns+"/"+nad && s.Interface != "" {
			return s.Interface
		}
	}
	l.t.Fatalf("Multus reports no status for %s/%s: %s", l.ns, nad, statusJSON)
	return ""
}

// networkStatus returns the pod's Multus network-status annotation, decoded
// and as it is.
func (l *local) networkStatus(ctx context.Context, pod string) ([]networkStatus, string) {
	l.t.Helper()
	statusJSON := l.jsonpath(ctx, `{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}`, "-n", l.ns, "get", "pod", pod)
	var statuses []networkStatus
	if err := json.Unmarshal([]byte(statusJSON), &statuses); err != nil {
		l.t.Fatalf("%s: Multus network-status annotation %q: %v", pod, statusJSON, err)
	}
	return statuses, statusJSON
}

// vhostuserPod is a plain pod attached to the NetworkAttachmentDefinition
// nad, with the emptyDir the plugin puts the socket directory in, mounted
// where virt-launcher's compute container has it.
func vhostuserPod(ns, name, nad string) map[string]any {
	pod := busyboxPod(ns, name, map[string]string{"k8s.v1.cni.cncf.io/networks": nad}, "exec sleep inf")
	spec := pod["spec"].(map[string]any)
	spec["volumes"] = []any{map[string]any{"name": hookVolume, "emptyDir": map[string]any{}}}
	spec["containers"].([]any)[0].(map[string]any)["volumeMounts"] = []any{
		map[string]any{"name": hookVolume, "mountPath": socketpath.ComputeHooksDir},
	}
	return pod
}

// applyNAD creates a vhostuser NetworkAttachmentDefinition on bridge and
// returns its CNI network name. It sets no node field (ovsdbSocket,
// kubeletRoot, ...): those are the node's (docs/configuration.md), and a NAD
// that sets them to anything else is refused.
func (l *local) applyNAD(ctx context.Context, name, bridge string) string {
	l.t.Helper()
	return l.applyNADWith(ctx, name, map[string]any{"bridge": bridge})
}

// applyNADWith creates a vhostuser NetworkAttachmentDefinition with the
// fields of conf and returns its CNI network name.
func (l *local) applyNADWith(ctx context.Context, name string, conf map[string]any) string {
	l.t.Helper()
	netName := "vhu-" + nonce(l.t)
	full := map[string]any{"cniVersion": "1.1.0", "name": netName, "type": "vhostuser"}
	for k, v := range conf {
		full[k] = v
	}
	b, err := json.Marshal(full)
	if err != nil {
		l.t.Fatal(err)
	}
	l.apply(ctx, map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"name": name, "namespace": l.ns},
		"spec":     map[string]any{"config": string(b)},
	})
	return netName
}

// TestLocalClusterVhostuserMissingBridge: a NAD naming a bridge the node's
// OVS lacks: the pod never runs, its events carry our plugin's error naming
// the bridge (through Multus, containerd and the kubelet), and the failed
// ADDs leave no port, short link or socket directory.
func TestLocalClusterVhostuserMissingBridge(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	bridge := "brmiss" + nonce(t)[:6]
	netName := l.applyNAD(ctx, "missing-bridge", bridge)
	l.refusedADD(ctx, "nobridge", "missing-bridge", netName, fmt.Sprintf("%q", bridge), "does not exist")
}

// TestLocalClusterNADNodeField: a NAD that points a node setting elsewhere
// (ovsdbSocket at another OVSDB, as a tenant could to make the root plugin
// talk to a server of its choice) is refused on ADD with an error naming the
// field, and leaves nothing; the node's own value repeated in a NAD is
// accepted (docs/configuration.md, the one narrow override).
func TestLocalClusterNADNodeField(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	other := "unix:/tmp/vhostuser-local-" + nonce(t) + ".sock"
	netName := l.applyNADWith(ctx, "other-ovsdb", map[string]any{"bridge": localBridge, "ovsdbSocket": other})
	l.refusedADD(ctx, "otherdb", "other-ovsdb", netName, `"ovsdbSocket" is a node setting`)

	l.applyNADWith(ctx, "node-ovsdb", map[string]any{"bridge": localBridge, "ovsdbSocket": l.node.OVSDBSocket})
	l.apply(ctx, vhostuserPod(l.ns, "nodedb", "node-ovsdb"))
	l.waitRunning(ctx, "nodedb")
	uid := l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", "nodedb")
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 1 {
		t.Errorf("NAD repeating the node's ovsdbSocket: want 1 OVS port of pod %s, got %v", uid, rows)
	}
	l.kubectl(ctx, "-n", l.ns, "delete", "pod", "nodedb", "--wait", "--timeout", "60s")
}

// refusedADD applies a pod on the NAD nad (CNI network netName), waits for a
// FailedCreatePodSandBox event whose message holds every one of want (our
// plugin's error, through Multus, containerd and the kubelet), checks that
// the pod stays Pending and the failed ADDs left no OVS port, socket
// directory or short link, and deletes the pod.
func (l *vhu) refusedADD(ctx context.Context, pod, nad, netName string, want ...string) {
	l.t.Helper()
	links := l.shortLinks()
	l.apply(ctx, vhostuserPod(l.ns, pod, nad))
	uid := l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", pod)

	msg := l.waitEvent(ctx, pod, "FailedCreatePodSandBox", want...)
	l.t.Logf("event: %s", msg)
	if phase := l.jsonpath(ctx, "{.status.phase}", "-n", l.ns, "get", "pod", pod); phase != "Pending" {
		l.t.Errorf("pod phase %q, want Pending", phase)
	}

	if rows := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/network", netName); len(rows) != 0 {
		l.t.Errorf("failed ADD left OVS interfaces: %v", rows)
	}
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/network", netName); len(rows) != 0 {
		l.t.Errorf("failed ADD left OVS ports: %v", rows)
	}
	p, err := l.layout.For(socketpath.Attachment{PodUID: uid, IfName: "x"})
	if err != nil {
		l.t.Fatal(err)
	}
	sockRoot := filepath.Join(p.VolumeDir, socketpath.SocketsDir)
	if entries, err := os.ReadDir(sockRoot); err == nil && len(entries) != 0 {
		l.t.Errorf("failed ADD left socket directories in %s: %v", sockRoot, entries)
	}
	for n := range l.shortLinks() {
		if !links[n] {
			l.t.Errorf("failed ADD left short link %s", n)
		}
	}

	l.kubectl(ctx, "-n", l.ns, "delete", "pod", pod, "--wait", "--timeout", "60s")
}

// shortLinks lists the node's short socket directory (the installer
// creates it).
func (l *vhu) shortLinks() map[string]bool {
	l.t.Helper()
	entries, err := os.ReadDir(l.node.ShortSocketDir)
	if err != nil {
		l.t.Fatalf("short socket directory: %v (the installer DaemonSet creates it)", err)
	}
	m := map[string]bool{}
	for _, e := range entries {
		m[e.Name()] = true
	}
	return m
}

// TestLocalClusterDELWithPodFiles: the pod leaves files in its socket
// directory (a hostile pod can: the directory is writable by QEMU's uid, and
// a root container writes anywhere in its volume), then is deleted. CNI DEL
// must not get stuck on them (it did before issue 10: it refused to remove a
// directory holding files it did not create, failed, the kubelet retried
// for ever and the pod stayed Terminating): the pod goes, and nothing of ours
// is left: no OVS port, no short link, and no socket directory once the
// kubelet has removed the volume.
func TestLocalClusterDELWithPodFiles(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l.applyNAD(ctx, "vhostuser", localBridge)
	l.apply(ctx, vhostuserPod(l.ns, "podfiles", "vhostuser"))
	l.waitRunning(ctx, "podfiles")
	uid := l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", "podfiles")
	ifname := l.multusIfname(ctx, "podfiles", "vhostuser")
	p, err := l.layout.For(socketpath.Attachment{PodUID: uid, IfName: ifname})
	if err != nil {
		t.Fatal(err)
	}
	// A file and a directory with a file, written from inside the pod.
	dir := filepath.Dir(p.ComputeSocket)
	l.kubectl(ctx, "-n", l.ns, "exec", "podfiles", "--", "/bin/busybox", "sh", "-c",
		"touch "+dir+"/foreign && mkdir "+dir+"/sub && touch "+dir+"/sub/file")
	for _, f := range []string{"foreign", "sub/file"} {
		if _, err := os.Lstat(filepath.Join(p.HostDir, f)); err != nil {
			t.Fatalf("the pod's file is not in its socket directory on the node: %v", err)
		}
	}
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 1 {
		t.Fatalf("want 1 OVS port of pod %s before deletion, got %v", uid, rows)
	}

	start := time.Now()
	if out, err := l.try(ctx, "-n", l.ns, "delete", "pod", "podfiles", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("pod with files in its socket directory not deleted within 60 s (CNI DEL stuck): %v: %s", err, out)
	}
	t.Logf("pod with files in its socket directory deleted in %.1f s", time.Since(start).Seconds())
	l.checkGone(ctx, uid, p)
}
