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

	"kubevirt.io/kubevirt/pkg/network/namescheme"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Images make cluster-up imports (hack/cluster/env.sh): the test guest's
// kernel and initramfs for kernelBoot, and the TEST-ONLY hook sidecar
// (KubeVirt's sidecar-shim running functests/testonlyhook: vectors=0 on
// vhost-user NICs, the QEMU 7.2 TCG workaround; never deployed by users).
const (
	guestImage    = "localhost/vhostuser-cluster/test-guest:1"
	testHookImage = "localhost/vhostuser-cluster/test-only-msix-hook:1"
)

// testHookSidecars is the hooks.kubevirt.io/hookSidecars annotation adding
// the test-only hook. virt-launcher's hooks manager calls sidecars in the
// order it finds their sockets (KubeVirt 1.8.4 sorts only each sidecar's
// own hook points), and annotation sidecars come first in the pod: the
// hook waits 5 s before listening so that ours, which adds the vhost-user
// interface the hook amends, is found first.
var testHookSidecars = func() string {
	b, _ := json.Marshal([]map[string]any{{
		"image":           testHookImage,
		"imagePullPolicy": "IfNotPresent",
		"command":         []string{"/bin/busybox", "sh", "-c", "sleep 5; exec /usr/bin/sidecar-shim --version v1alpha3"},
	}})
	return string(b)
}()

// kubevirtVM is a VirtualMachine on node 1 booting the test guest
// (kernelBoot from guestImage) whose only NIC is a vhostuser binding on the
// NAD nad; the guest configures ip on it and pings peer once a second,
// printing each result on its serial console.
func kubevirtVM(ns, name, nad, ip, peer string) map[string]any {
	return vmSpec{name: name, nad: nad, ip: ip, peer: peer, node: node1}.object(ns)
}

// vmSpec is a test VM (kubevirtVM): its guest's address, the peer it pings
// and how often, where it runs, and its vhostuser NICs.
type vmSpec struct {
	name, nad, ip, peer string
	// interval between the guest's pings; 0: once a second.
	interval time.Duration
	// node the VM must run on (nodeSelector), or "".
	node string
	// prefer is the node the VM starts on if it can (a VM that migrates
	// must not be bound to one node).
	prefer string
	// nics is the number of vhostuser NICs on nad (networks dpdk, dpdk2,
	// ...); 0 means 1. The guest configures the first.
	nics int
	// liveMigrate sets evictionStrategy LiveMigrate: a drain migrates the VM.
	liveMigrate bool
}

// networkName is the VMI network of the VM's NIC i (0-based).
func networkName(i int) string {
	if i == 0 {
		return "dpdk"
	}
	return fmt.Sprintf("dpdk%d", i+1)
}

func (s vmSpec) object(ns string) map[string]any {
	var ifaces, nets []any
	for i := range max(s.nics, 1) {
		ifaces = append(ifaces, map[string]any{"name": networkName(i), "binding": map[string]any{"name": "vhostuser"}})
		nets = append(nets, map[string]any{"name": networkName(i), "multus": map[string]any{"networkName": s.nad}})
	}
	spec := map[string]any{
		"terminationGracePeriodSeconds": 5,
		"domain": map[string]any{
			"cpu":       map[string]any{"cores": 1},
			"memory":    map[string]any{"guest": "256Mi"},
			"resources": map[string]any{"requests": map[string]any{"memory": "256Mi"}},
			"firmware": map[string]any{"kernelBoot": map[string]any{
				"kernelArgs": guest.CmdlineInterval(s.name, s.ip, s.peer, s.interval),
				"container": map[string]any{
					"image": guestImage, "imagePullPolicy": "IfNotPresent",
					"kernelPath": "/boot/vmlinuz", "initrdPath": "/boot/initrd.img",
				},
			}},
			"devices": map[string]any{"interfaces": ifaces},
		},
		"networks": nets,
	}
	if s.node != "" {
		spec["nodeSelector"] = onNode(s.node)
	}
	if s.prefer != "" {
		spec["affinity"] = map[string]any{"nodeAffinity": map[string]any{
			"preferredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{
				"weight": 100,
				"preference": map[string]any{"matchExpressions": []any{map[string]any{
					"key": "kubernetes.io/hostname", "operator": "In", "values": []string{s.prefer},
				}}},
			}},
		}}
	}
	if s.liveMigrate {
		spec["evictionStrategy"] = "LiveMigrate"
	}
	if s.node == "" {
		// A VM that may migrate: a CPU limit keeps KubeVirt from migrating
		// over parallel (multifd) connections, which this cluster's QEMU
		// 7.2 (Debian's, in the virt-launcher image) cannot take through
		// KubeVirt's migration proxy: it assigns channels in the order they
		// connect, and the main stream, arriving late, is read as a multifd
		// channel ("received packet magic 5145564d expected 11223344").
		// QEMU 8.0 and later tell the channels apart by their first bytes.
		// A small request: the limit alone would also be the request, and
		// two such VMs would not fit on a node of this 2-core machine.
		res := spec["domain"].(map[string]any)["resources"].(map[string]any)
		res["requests"].(map[string]any)["cpu"] = "100m"
		res["limits"] = map[string]any{"cpu": "1"}
	}
	return map[string]any{
		"apiVersion": "kubevirt.io/v1",
		"kind":       "VirtualMachine",
		"metadata":   map[string]any{"name": s.name, "namespace": ns},
		"spec": map[string]any{
			"runStrategy": "Always",
			"template": map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{"vhostuser-functest": s.name},
					"annotations": map[string]any{"hooks.kubevirt.io/hookSidecars": testHookSidecars},
				},
				"spec": spec,
			},
		},
	}
}

// launcherPod returns the name and UID of the VM's virt-launcher pod.
func (l *local) launcherPod(ctx context.Context, vm string) (name, uid string) {
	l.t.Helper()
	var out string
	l.eventually(ctx, "virt-launcher pod of "+vm, func() error {
		var err error
		out, err = l.try(ctx, "-n", l.ns, "get", "pods", "-l", "vm.kubevirt.io/name="+vm,
			"-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid}{\"\\n\"}{end}")
		if err != nil {
			return err
		}
		if strings.Count(strings.TrimSpace(out), "\n") != 0 || strings.TrimSpace(out) == "" {
			return fmt.Errorf("want one virt-launcher pod, got %q", out)
		}
		return nil
	})
	f := strings.Fields(out)
	return f[0], f[1]
}

// waitVMIRunning waits for the VMI's phase Running and returns how long
// that took from start.
func (l *local) waitVMIRunning(ctx context.Context, vm string, start time.Time) time.Duration {
	l.t.Helper()
	// kubectl wait fails at once on an object that does not exist yet:
	// virt-controller creates the VMI from the VM.
	l.eventually(ctx, "VMI "+vm+" created", func() error {
		_, err := l.try(ctx, "-n", l.ns, "get", "vmi", vm)
		return err
	})
	if out, err := l.try(ctx, "-n", l.ns, "wait", "--for", "jsonpath={.status.phase}=Running", "--timeout", "600s", "vmi/"+vm); err != nil {
		vmi, _ := l.try(ctx, "-n", l.ns, "get", "vmi", vm, "-o", "yaml")
		ev, _ := l.try(ctx, "-n", l.ns, "get", "events")
		l.t.Fatalf("VMI %s not Running: %v: %s\nVMI:\n%s\nevents:\n%s", vm, err, out, vmi, ev)
	}
	return time.Since(start)
}

// console runs virtctl console on the VM with its output in a file, and
// returns the file as a guest.Console and a context that ends when virtctl
// exits (its error is then the console's last lines); the console ends with
// the test.
func (l *local) console(vm string) (guest.Console, context.Context) {
	l.t.Helper()
	path := filepath.Join(l.t.TempDir(), vm+".console")
	f, err := os.Create(path)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "virtctl", "console", "-n", l.ns, "--timeout", "5", vm)
	cmd.Stdout, cmd.Stderr = f, f
	// virtctl reads stdin to send to the guest: an open pipe, nothing sent.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("virtctl console %s: %v", vm, err)
	}
	running, exited := context.WithCancel(context.Background())
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		exited()
		close(waited)
	}()
	l.t.Cleanup(func() {
		cancel()
		stdin.Close()
		<-waited
		f.Close()
	})
	return guest.Console{Path: path}, running
}

// ovsStatus returns the status column of an OVS interface of node 1.
func (l *vhu) ovsStatus(ctx context.Context, iface string) string {
	return l.ovsStatusOn(ctx, l.view(node1), iface)
}

// ovsStatusOn is ovsStatus on node v.
func (l *vhu) ovsStatusOn(ctx context.Context, v nodeView, iface string) string {
	out, err := exec.CommandContext(ctx, "ovs-vsctl", "--db", v.db, "--timeout", "10", "get", "Interface", iface, "status").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ovs-vsctl: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestLocalClusterKubeVirtVMPing: KubeVirt (installed by its operator by make
// cluster-up) runs two VMs whose only NIC uses the vhostuser binding
// (manifests/binding) on a NAD of the node's br-dpdk: virt-controller
// renders launcher pods with our sidecar image, Multus calls our plugin,
// both VMIs reach Running, their OVS ports are connected, and the guests,
// followed with virtctl console, ping each other; the node agent's series
// of each VM grow and its VhostUserConnected events are on the launcher pod
// and the VMI. After the VMs are deleted
// no OVS port, short link or socket directory of theirs is left.
func TestLocalClusterKubeVirtVMPing(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, bin := range []string{"virtctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not in PATH (make cluster-up links it into the state directory's bin/): %v", bin, err)
		}
	}
	links := l.shortLinks()
	l.applyNAD(ctx, "vhostuser", localBridge)

	type vmInfo struct {
		name, ip, peer string
		pod, uid       string
		paths          socketpath.Paths
		console        guest.Console
		consoleRunning context.Context
	}
	vms := []*vmInfo{
		{name: "vm-a", ip: "192.0.2.1/24", peer: "192.0.2.2"},
		{name: "vm-b", ip: "192.0.2.2/24", peer: "192.0.2.1"},
	}
	start := time.Now()
	for _, vm := range vms {
		l.apply(ctx, kubevirtVM(l.ns, vm.name, "vhostuser", vm.ip, vm.peer))
	}
	for _, vm := range vms {
		took := l.waitVMIRunning(ctx, vm.name, start)
		t.Logf("VMI %s Running %.1f s after the VMs were applied", vm.name, took.Seconds())
	}

	for _, vm := range vms {
		vm.pod, vm.uid = l.launcherPod(ctx, vm.name)
		ifname := l.multusIfname(ctx, vm.pod, "vhostuser")
		p, err := l.layout.For(socketpath.Attachment{PodUID: vm.uid, IfName: ifname})
		if err != nil {
			t.Fatal(err)
		}
		vm.paths = p
		// The pod's interface name is KubeVirt's for the VMI network "dpdk".
		if want := namescheme.GenerateHashedInterfaceName("dpdk"); ifname != want {
			t.Errorf("%s: Multus interface %q, want KubeVirt's %q", vm.pod, ifname, want)
		}
		ports := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/pod-uid", vm.uid)
		if len(ports) != 1 || ports[0]["name"] != "vhu"+p.ID {
			t.Fatalf("%s: want OVS interface vhu%s, got %v", vm.pod, p.ID, ports)
		}
		vm.console, vm.consoleRunning = l.console(vm.name)
	}
	for _, vm := range vms {
		// Until virtctl exits (say, virt-api's subresource unavailable).
		wctx, wcancel := context.WithTimeout(vm.consoleRunning, 3*time.Minute)
		lines, err := vm.console.Collect(wctx, 0, guest.MarkerPingOK, 5)
		wcancel()
		if err != nil {
			t.Fatalf("%s: guest-to-guest ping over virtctl console: %v", vm.name, err)
		}
		rtt, err := guest.MedianRTT(lines)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s pings %s: median RTT %s over 5 pings (%s)", vm.name, vm.peer, rtt, lines[len(lines)-1])
		status := l.ovsStatus(ctx, "vhu"+vm.paths.ID)
		if !strings.Contains(status, `status=connected`) && !strings.Contains(status, `status="connected"`) {
			t.Errorf("%s: OVS interface vhu%s status %s, want connected", vm.name, vm.paths.ID, status)
		}
	}

	// The node agent: each VM's port series, by VMI name and network as
	// KubeVirt's own, grow while the guests ping; each launcher pod and
	// VMI has the agent's VhostUserConnected event naming the network.
	url := l.agentURL(ctx, node1)
	for _, vm := range vms {
		l.checkVMSeries(ctx, url, vm.name, "dpdk")
		for _, obj := range []string{vm.pod, vm.name} {
			msg := l.waitEvent(ctx, obj, "VhostUserConnected", `"dpdk"`, "vhu"+vm.paths.ID)
			t.Logf("%s: %s", obj, msg)
		}
	}

	for _, vm := range vms {
		start := time.Now()
		l.kubectl(ctx, "-n", l.ns, "delete", "vm", vm.name, "--wait", "--timeout", "120s")
		if out, err := l.try(ctx, "-n", l.ns, "wait", "--for", "delete", "--timeout", "120s", "pod/"+vm.pod); err != nil {
			t.Fatalf("virt-launcher pod %s not gone: %v: %s", vm.pod, err, out)
		}
		t.Logf("VM %s and its pod deleted in %.1f s", vm.name, time.Since(start).Seconds())
		l.checkGone(ctx, vm.uid, vm.paths)
	}
	for n := range l.shortLinks() {
		if !links[n] {
			t.Errorf("short link %s left after the VMs were deleted", n)
		}
	}
}

// TestLocalClusterKubeVirtMissingBridge: a VM on a NAD naming a bridge the
// node's OVS lacks: its launcher pod never gets a sandbox, the pod's events
// carry our plugin's error naming the bridge, the VMI does not run, and
// after the VM is deleted nothing of ours is left.
func TestLocalClusterKubeVirtMissingBridge(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	links := l.shortLinks()
	bridge := "brmiss" + nonce(t)[:6]
	netName := l.applyNAD(ctx, "missing-bridge", bridge)
	l.apply(ctx, kubevirtVM(l.ns, "vm-nobridge", "missing-bridge", "192.0.2.3/24", "192.0.2.4"))
	pod, uid := l.launcherPod(ctx, "vm-nobridge")

	want := []string{fmt.Sprintf("%q", bridge), "does not exist"}
	msg := l.waitEvent(ctx, pod, "FailedCreatePodSandBox", want...)
	t.Logf("event: %s", msg)
	if phase := l.jsonpath(ctx, "{.status.phase}", "-n", l.ns, "get", "vmi", "vm-nobridge"); phase == "Running" {
		t.Errorf("VMI phase %q with a missing bridge", phase)
	}
	if phase := l.jsonpath(ctx, "{.status.phase}", "-n", l.ns, "get", "pod", pod); phase != "Pending" {
		t.Errorf("launcher pod phase %q, want Pending", phase)
	}

	l.kubectl(ctx, "-n", l.ns, "delete", "vm", "vm-nobridge", "--wait", "--timeout", "120s")
	if out, err := l.try(ctx, "-n", l.ns, "wait", "--for", "delete", "--timeout", "120s", "pod/"+pod); err != nil {
		t.Fatalf("virt-launcher pod %s not gone: %v: %s", pod, err, out)
	}
	if rows := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/network", netName); len(rows) != 0 {
		t.Errorf("failed ADD left OVS interfaces: %v", rows)
	}
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", uid); len(rows) != 0 {
		t.Errorf("failed ADD left OVS ports: %v", rows)
	}
	p, err := l.layout.For(socketpath.Attachment{PodUID: uid, IfName: namescheme.GenerateHashedInterfaceName("dpdk")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p.VolumeDir); !os.IsNotExist(err) {
		t.Errorf("the launcher pod's volume %s is left (%v)", p.VolumeDir, err)
	}
	for n := range l.shortLinks() {
		if !links[n] {
			t.Errorf("failed ADD left short link %s", n)
		}
	}
}

// waitEvent waits for an event of reason on the pod whose message holds
// every one of want, and returns the message.
func (l *local) waitEvent(ctx context.Context, pod, reason string, want ...string) string {
	l.t.Helper()
	var msg string
	l.eventually(ctx, fmt.Sprintf("a %s event of %s with %q", reason, pod, want), func() error {
		out, err := l.try(ctx, "-n", l.ns, "get", "events", "-o", "json",
			"--field-selector", "involvedObject.name="+pod+",reason="+reason)
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
	next:
		for _, e := range evs.Items {
			for _, w := range want {
				if !strings.Contains(e.Message, w) {
					continue next
				}
			}
			msg = e.Message
			return nil
		}
		return fmt.Errorf("events so far: %v", evs.Items)
	})
	return msg
}
