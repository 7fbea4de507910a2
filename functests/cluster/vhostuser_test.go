package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The node's OVS of make cluster-up (hack/cluster/env.sh: OVS_DIR, OVS_BRIDGE).
const (
	localBridge = "br-dpdk"
	// hookVolume is the emptyDir of a virt-launcher pod that the plugin puts
	// the socket directory in (its "volume" default); the pods here carry
	// one of that name, as virt-launcher pods do.
	hookVolume = "hook-sidecar-sockets"
	kubeletDir = "/var/lib/kubelet"
)

// columns of each table ovsFind reads.
var columns = map[string]string{"Interface": "name,type,options,external_ids", "Port": "name,external_ids"}

func (l *local) ovsDB() string { return "unix:" + filepath.Join(l.state, "ovs", "db.sock") }

// ovsFind returns the rows of table whose external_ids carry key=value,
// each as column name -> value in ovs-vsctl's JSON encoding.
func (l *local) ovsFind(ctx context.Context, table, key, value string) []map[string]any {
	l.t.Helper()
	out, err := exec.CommandContext(ctx, "ovs-vsctl", "--db", l.ovsDB(), "--timeout", "10", "--format", "json",
		"--columns", columns[table], "find", table,
		fmt.Sprintf("external_ids:%q=%q", key, value)).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ovs-vsctl find %s: %v: %s", table, err, out)
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
// kubelet, calls our plugin (installed by our DaemonSet) for a plain pod
// annotated with a vhostuser NetworkAttachmentDefinition; the OVS port, short
// link and socket directory exist while the pod runs and are gone after it is
// deleted.
func TestLocalClusterVhostuserPod(t *testing.T) {
	l := setupLocal(t)
	if _, err := exec.LookPath("ovs-vsctl"); err != nil {
		t.Fatalf("ovs-vsctl not in PATH (make deps): %v", err)
	}
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

	ifaces := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/pod-uid", uid)
	if len(ifaces) != 1 {
		t.Fatalf("want 1 OVS interface of pod %s, got %v", uid, ifaces)
	}
	iface := ifaces[0]
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
	br, err := exec.CommandContext(ctx, "ovs-vsctl", "--db", l.ovsDB(), "port-to-br", fmt.Sprint(ports[0]["name"])).Output()
	if err != nil || strings.TrimSpace(string(br)) != localBridge {
		t.Errorf("port %v is on bridge %q (%v), want %s", ports[0]["name"], br, err, localBridge)
	}

	// vhost-server-path: <short dir>/<id>/vhost.sock, <short dir>/<id> a link
	// into this pod's emptyDir as the kubelet lays it out.
	server := ovsMap(iface["options"])["vhost-server-path"]
	if server == "" || len(server) > 107 {
		t.Fatalf("vhost-server-path %q: empty or too long for a unix socket", server)
	}
	link := filepath.Dir(server)
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		t.Fatalf("short link %s: %v", link, err)
	}
	emptyDir := filepath.Join(kubeletDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", hookVolume)
	if !strings.HasPrefix(target, emptyDir+"/") {
		t.Fatalf("short link %s resolves to %s, outside the pod's emptyDir %s", link, target, emptyDir)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Fatalf("socket directory %s: %v", target, err)
	}
	// The same directory seen from inside the pod.
	rel := strings.TrimPrefix(target, emptyDir)
	l.kubectl(ctx, "-n", l.ns, "exec", "vhu", "--", "/bin/busybox", "test", "-d", "/var/run/kubevirt-hooks"+rel)

	start = time.Now()
	l.kubectl(ctx, "-n", l.ns, "delete", "pod", "vhu", "--wait", "--timeout", "60s")
	t.Logf("vhostuser pod deleted in %.1f s", time.Since(start).Seconds())
	if rows := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 0 {
		t.Errorf("OVS interfaces left after pod deletion: %v", rows)
	}
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 0 {
		t.Errorf("OVS ports left after pod deletion: %v", rows)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("short link %s left after pod deletion (%v)", link, err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("socket directory %s left after pod deletion (%v)", target, err)
	}
}

// multusIfname returns the pod interface name Multus reports in the pod's
// network-status annotation for the namespace's NAD nad.
func (l *local) multusIfname(ctx context.Context, pod, nad string) string {
	l.t.Helper()
	statusJSON := l.jsonpath(ctx, `{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}`, "-n", l.ns, "get", "pod", pod)
	var statuses []networkStatus
	if err := json.Unmarshal([]byte(statusJSON), &statuses); err != nil {
		l.t.Fatalf("Multus network-status annotation %q: %v", statusJSON, err)
	}
	for _, s := range statuses {
		if s.Name == l.ns+"/"+nad && s.Interface != "" {
			return s.Interface
		}
	}
	l.t.Fatalf("Multus reports no status for %s/%s: %s", l.ns, nad, statusJSON)
	return ""
}

// vhostuserPod is a plain pod attached to the NetworkAttachmentDefinition
// nad, with the emptyDir the plugin puts the socket directory in, mounted
// where virt-launcher's compute container has it.
func vhostuserPod(ns, name, nad string) map[string]any {
	pod := busyboxPod(ns, name, map[string]string{"k8s.v1.cni.cncf.io/networks": nad}, "exec sleep inf")
	spec := pod["spec"].(map[string]any)
	spec["volumes"] = []any{map[string]any{"name": hookVolume, "emptyDir": map[string]any{}}}
	spec["containers"].([]any)[0].(map[string]any)["volumeMounts"] = []any{
		map[string]any{"name": hookVolume, "mountPath": "/var/run/kubevirt-hooks"},
	}
	return pod
}

// applyNAD creates a vhostuser NetworkAttachmentDefinition on bridge and
// returns its CNI network name.
func (l *local) applyNAD(ctx context.Context, name, bridge string) string {
	l.t.Helper()
	netName := "vhu-" + nonce(l.t)
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": netName, "type": "vhostuser",
		"bridge": bridge, "ovsdbSocket": l.ovsDB(),
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.apply(ctx, map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"name": name, "namespace": l.ns},
		"spec":     map[string]any{"config": string(conf)},
	})
	return netName
}

// TestLocalClusterVhostuserMissingBridge: a NAD naming a bridge the node's
// OVS lacks: the pod never runs, its events carry our plugin's error naming
// the bridge (through Multus, containerd and the kubelet), and the failed
// ADDs leave no port, short link or socket directory.
func TestLocalClusterVhostuserMissingBridge(t *testing.T) {
	l := setupLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	bridge := "brmiss" + nonce(t)[:6]
	netName := l.applyNAD(ctx, "missing-bridge", bridge)
	links := shortLinks(t)
	l.apply(ctx, vhostuserPod(l.ns, "nobridge", "missing-bridge"))
	uid := l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", "nobridge")

	var msg string
	l.eventually(ctx, "a FailedCreatePodSandBox event naming the bridge", func() error {
		out, err := l.try(ctx, "-n", l.ns, "get", "events", "-o", "json",
			"--field-selector", "involvedObject.name=nobridge,reason=FailedCreatePodSandBox")
		if err != nil {
			return err
		}
		var evs struct {
			Items []struct {
				Message string `json:"message"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if strings.Contains(e.Message, fmt.Sprintf("%q", bridge)) && strings.Contains(e.Message, "does not exist") {
				msg = e.Message
				return nil
			}
		}
		return fmt.Errorf("events so far: %v", evs.Items)
	})
	t.Logf("event: %s", msg)
	if phase := l.jsonpath(ctx, "{.status.phase}", "-n", l.ns, "get", "pod", "nobridge"); phase != "Pending" {
		t.Errorf("pod phase %q, want Pending", phase)
	}

	if rows := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/network", netName); len(rows) != 0 {
		t.Errorf("failed ADD left OVS interfaces: %v", rows)
	}
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/network", netName); len(rows) != 0 {
		t.Errorf("failed ADD left OVS ports: %v", rows)
	}
	sockRoot := filepath.Join(kubeletDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", hookVolume, "vhostuser")
	if entries, err := os.ReadDir(sockRoot); err == nil && len(entries) != 0 {
		t.Errorf("failed ADD left socket directories in %s: %v", sockRoot, entries)
	}
	for n := range shortLinks(t) {
		if !links[n] {
			t.Errorf("failed ADD left short link %s", n)
		}
	}

	l.kubectl(ctx, "-n", l.ns, "delete", "pod", "nobridge", "--wait", "--timeout", "60s")
}

// shortLinks lists the node's short socket directory (the installer's
// default, /var/run/vhostuser).
func shortLinks(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir("/var/run/vhostuser")
	if err != nil {
		t.Fatalf("short socket directory: %v (the installer DaemonSet creates it)", err)
	}
	m := map[string]bool{}
	for _, e := range entries {
		m[e.Name()] = true
	}
	return m
}

// TestBugLocalClusterDELForeignFile: the pod writes a file into its socket
// directory (a hostile pod can: the directory is its own, 107:107 0770), then
// is deleted. CNI DEL must not get stuck on it. It does today: DEL leaves the
// directory ("holds files we did not create") and fails, the kubelet retries
// for ever and the pod stays Terminating. Not in make functest-cluster's
// default set (the plugin's owners fix it); run it with
// make functest-cluster CLUSTER_TESTS=TestBugLocalCluster.
func TestBugLocalClusterDELForeignFile(t *testing.T) {
	l := setupLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l.applyNAD(ctx, "vhostuser", localBridge)
	l.apply(ctx, vhostuserPod(l.ns, "foreign", "vhostuser"))
	l.waitRunning(ctx, "foreign")
	uid := l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", "foreign")
	ifname := l.multusIfname(ctx, "foreign", "vhostuser")
	l.kubectl(ctx, "-n", l.ns, "exec", "foreign", "--", "/bin/busybox", "touch", "/var/run/kubevirt-hooks/vhostuser/"+ifname+"/foreign")
	// Whatever happens, let the pod go at the end.
	hostFile := filepath.Join(kubeletDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", hookVolume, "vhostuser", ifname, "foreign")
	defer os.Remove(hostFile)

	if out, err := l.try(ctx, "-n", l.ns, "delete", "pod", "foreign", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("pod with a foreign file in its socket directory not deleted within 60 s (CNI DEL stuck): %v: %s", err, out)
	}
}
