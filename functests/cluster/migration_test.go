package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kubevirt.io/kubevirt/pkg/network/namescheme"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// pingInterval is how often the peer VM pings the VM that migrates: the
// ping gap of a migration is measured in these.
const pingInterval = 100 * time.Millisecond

// needTwoNodes fails the test unless make cluster-up brought up two nodes.
func (l *local) needTwoNodes() {
	l.t.Helper()
	if len(l.nodes()) != 2 {
		l.t.Fatalf("the migration tests need the two nodes of make cluster-up (VHOSTUSER_CLUSTER_NODES=2, the default); %s/nodes says %v",
			l.state, l.nodes())
	}
}

// attachment is one vhostuser NIC of a virt-launcher pod on a node.
type attachment struct {
	network string
	paths   socketpath.Paths
}

// launcher is a VM's virt-launcher pod on a node.
type launcher struct {
	node, pod, uid string
	nics           []attachment
}

// runningLauncher returns the VM's Running virt-launcher pod: after a
// migration the source pod stays, Completed, beside the target's.
func (l *vhu) runningLauncher(ctx context.Context, vm string, nics int) launcher {
	l.t.Helper()
	var lp launcher
	l.eventually(ctx, "the Running virt-launcher pod of "+vm, func() error {
		out, err := l.try(ctx, "-n", l.ns, "get", "pods", "-l", "vm.kubevirt.io/name="+vm,
			"--field-selector", "status.phase=Running",
			"-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid} {.spec.nodeName}{\"\\n\"}{end}")
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) != 3 {
			return fmt.Errorf("want one Running virt-launcher pod, got %q", out)
		}
		lp = launcher{pod: f[0], uid: f[1], node: f[2]}
		return nil
	})
	for i := range max(nics, 1) {
		ifname := l.multusIfnameN(ctx, lp.pod, i)
		p, err := l.layout.For(socketpath.Attachment{PodUID: lp.uid, IfName: ifname})
		if err != nil {
			l.t.Fatal(err)
		}
		lp.nics = append(lp.nics, attachment{network: networkName(i), paths: p})
	}
	return lp
}

// multusIfnameN is the pod interface of the pod's i-th (0-based) network of
// Multus' network-status, the default network left out.
func (l *local) multusIfnameN(ctx context.Context, pod string, i int) string {
	l.t.Helper()
	statuses, statusJSON := l.networkStatus(ctx, pod)
	var secondary []networkStatus
	for _, s := range statuses {
		if s.Name != defaultNetwork {
			secondary = append(secondary, s)
		}
	}
	if i >= len(secondary) {
		l.t.Fatalf("%s: no secondary network %d in %s", pod, i, statusJSON)
	}
	return secondary[i].Interface
}

// checkConnected waits until every NIC of the launcher has its OVS port on
// the launcher's node, connected (QEMU listens on the socket OVS reaches
// through the short link: the compute-view path the domain XML names).
func (l *vhu) checkConnected(ctx context.Context, lp launcher) {
	l.t.Helper()
	v := l.view(lp.node)
	for _, a := range lp.nics {
		port := "vhu" + a.paths.ID
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		l.eventually(wctx, lp.node+": "+port+" of "+lp.pod+" connected", func() error {
			if st := l.ovsStatusOn(wctx, v, port); !strings.Contains(st, "status=connected") && !strings.Contains(st, `status="connected"`) {
				return fmt.Errorf("status %s", st)
			}
			return nil
		})
		cancel()
		if fi, err := os.Lstat(v.path(a.paths.HostSocket)); err != nil || fi.Mode()&os.ModeSocket == 0 {
			l.t.Errorf("%s: QEMU's socket %s of %s: %v", lp.node, a.paths.HostSocket, lp.pod, err)
		}
	}
}

// vmiMACs is the MAC of each of the VMI's interfaces, as KubeVirt reports it.
func (l *local) vmiMACs(ctx context.Context, vm string) string {
	l.t.Helper()
	return l.jsonpath(ctx, `{range .status.interfaces[*]}{.name}={.mac} {end}`, "-n", l.ns, "get", "vmi", vm)
}

// replyTimes follows a guest console and records when (on this machine's
// clock) each ping reply line first appeared, by busybox's sequence number.
type replyTimes struct {
	mu   sync.Mutex
	seen map[int]time.Time
	stop func()
	done chan struct{}
}

func followReplies(c guest.Console, from int64) *replyTimes {
	ctx, cancel := context.WithCancel(context.Background())
	r := &replyTimes{seen: map[int]time.Time{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			lines, err := c.Lines(from, guest.MarkerPingOK)
			if err == nil {
				if seqs, err := guest.PingSeqs(lines); err == nil {
					now := time.Now()
					r.mu.Lock()
					for _, s := range seqs {
						if _, ok := r.seen[s]; !ok {
							r.seen[s] = now
						}
					}
					r.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *replyTimes) at(seq int) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.seen[seq]
	return t, ok
}

func (r *replyTimes) close() { r.stop(); <-r.done }

// migrationFigures are what one migration is measured by.
type migrationFigures struct {
	from, to string
	// total: from the request to the VMIM's Succeeded.
	total time.Duration
	// kubevirt: KubeVirt's own startTimestamp..endTimestamp (seconds).
	kubevirt time.Duration
	// lost replies of the peer's pings, and the gap they make.
	lost int
	gap  time.Duration
	// firstReply: from the request to the first reply after the gap.
	firstReply time.Duration
	// measured: a peer's pings were followed (lost, gap, firstReply).
	measured bool
}

func (f migrationFigures) String() string {
	if !f.measured {
		return fmt.Sprintf("%s -> %s: total %.1f s (KubeVirt's start..end %.0f s)", f.from, f.to, f.total.Seconds(), f.kubevirt.Seconds())
	}
	return fmt.Sprintf("%s -> %s: total %.1f s (KubeVirt's start..end %.0f s); ping gap %d lost x %s = %.1f s; first reply after the gap %.1f s after the request",
		f.from, f.to, f.total.Seconds(), f.kubevirt.Seconds(), f.lost, pingInterval, f.gap.Seconds(), f.firstReply.Seconds())
}

// migrate live-migrates vm as users do (virtctl migrate) and checks the
// result: the VMIM Succeeded, the VMI is on another node, its launcher
// there has every NIC's port connected on that node's OVS, the source pod
// leaves nothing of ours on its node, the guest keeps its MACs, and the
// peer's pings (followed on peerConsole, a console of a VM that stays:
// a VM's own console ends when it migrates) resume; without a peer console
// (nil) the caller checks the traffic. nics is the VM's NIC count.
func (l *vhu) migrate(ctx context.Context, vm string, nics int, peerConsole *guest.Console) migrationFigures {
	l.t.Helper()
	src := l.runningLauncher(ctx, vm, nics)
	macs := l.vmiMACs(ctx, vm)
	var off int64
	var replies *replyTimes
	if peerConsole != nil {
		off = peerConsole.Offset()
		replies = followReplies(*peerConsole, off)
		defer replies.close()
	}

	start := time.Now()
	existing := l.migrations(ctx, vm)
	if out, err := exec.CommandContext(ctx, "virtctl", "migrate", "-n", l.ns, vm).CombinedOutput(); err != nil {
		l.t.Fatalf("virtctl migrate %s: %v: %s", vm, err, out)
	}
	vmim := l.newMigration(ctx, vm, existing)
	l.waitMigration(ctx, vmim)
	f := migrationFigures{from: src.node, total: time.Since(start)}
	var done int64
	if peerConsole != nil {
		done = peerConsole.Offset()
	}
	f.to = l.jsonpath(ctx, "{.status.nodeName}", "-n", l.ns, "get", "vmi", vm)
	if f.to == src.node {
		l.t.Fatalf("%s: migration %s Succeeded but the VMI is still on %s", vm, vmim, f.to)
	}
	if s, e := l.jsonpath(ctx, "{.status.migrationState.startTimestamp}", "-n", l.ns, "get", "vmi", vm),
		l.jsonpath(ctx, "{.status.migrationState.endTimestamp}", "-n", l.ns, "get", "vmi", vm); s != "" && e != "" {
		ts, err1 := time.Parse(time.RFC3339, s)
		te, err2 := time.Parse(time.RFC3339, e)
		if err1 == nil && err2 == nil {
			f.kubevirt = te.Sub(ts)
		}
	}

	dst := l.runningLauncher(ctx, vm, nics)
	if dst.node != f.to || dst.uid == src.uid {
		l.t.Fatalf("%s: Running launcher %s on %s, want a new pod on %s", vm, dst.pod, dst.node, f.to)
	}
	for i := range dst.nics {
		if dst.nics[i].paths.ComputeSocket != src.nics[i].paths.ComputeSocket {
			l.t.Errorf("%s: %s's socket is %s in the compute container on %s, %s on %s", vm, dst.nics[i].network,
				dst.nics[i].paths.ComputeSocket, f.to, src.nics[i].paths.ComputeSocket, src.node)
		}
	}
	l.checkConnected(ctx, dst)
	if got := l.vmiMACs(ctx, vm); got != macs {
		l.t.Errorf("%s: MACs %q after the migration, %q before", vm, got, macs)
	}

	if peerConsole != nil {
		// The peer's pings resume: 20 replies after the migration ended.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if _, err := peerConsole.Collect(wctx, done, guest.MarkerPingOK, 20); err != nil {
			l.t.Fatalf("the peer's pings to %s after the migration: %v\n%s", vm, err, peerConsole.Tail(20))
		}
		cancel()
		lines, err := peerConsole.Lines(off, guest.MarkerPingOK)
		if err != nil {
			l.t.Fatal(err)
		}
		lost, _, first, err := guest.PingGap(lines)
		if err != nil {
			l.t.Fatal(err)
		}
		f.lost, f.gap, f.measured = lost, time.Duration(lost)*pingInterval, true
		if at, ok := replies.at(first); ok {
			f.firstReply = at.Sub(start)
		}
	}

	// The source pod completes; its sandbox goes, and with it (CNI DEL)
	// everything of ours on the source node.
	gctx, gcancel := context.WithTimeout(ctx, 3*time.Minute)
	l.eventually(gctx, "source pod "+src.pod+" finished", func() error {
		phase, err := l.try(gctx, "-n", l.ns, "get", "pod", src.pod, "-o", "jsonpath={.status.phase}")
		if err != nil && strings.Contains(phase, "NotFound") {
			return nil
		}
		if err != nil {
			return err
		}
		if phase != "Succeeded" && phase != "Failed" {
			return fmt.Errorf("phase %q", phase)
		}
		return nil
	})
	l.eventually(gctx, "the source pod's sandbox gone (its CNI DEL ran)", func() error {
		if rows := l.ovsFindOn(gctx, l.view(src.node), "Interface", "vhostuser.kubevirt.io/pod-uid", src.uid); len(rows) != 0 {
			return fmt.Errorf("%d OVS interfaces of %s on %s", len(rows), src.pod, src.node)
		}
		return nil
	})
	gcancel()
	v := l.view(src.node)
	for _, a := range src.nics {
		l.checkGoneOn(ctx, v, src.uid, a.paths)
	}
	return f
}

// migrations lists the VMIMs of vm.
func (l *local) migrations(ctx context.Context, vm string) map[string]bool {
	l.t.Helper()
	out := l.kubectl(ctx, "-n", l.ns, "get", "vmim", "-l", "kubevirt.io/vmi-name="+vm, "-o", "name")
	m := map[string]bool{}
	for _, n := range strings.Fields(out) {
		m[n] = true
	}
	return m
}

// newMigration returns the VMIM of vm that is not in existing.
func (l *local) newMigration(ctx context.Context, vm string, existing map[string]bool) string {
	l.t.Helper()
	var name string
	l.eventually(ctx, "the migration of "+vm, func() error {
		for n := range l.migrations(ctx, vm) {
			if !existing[n] {
				name = n
				return nil
			}
		}
		return fmt.Errorf("no new VirtualMachineInstanceMigration")
	})
	return name
}

// waitMigration waits for the VMIM's phase Succeeded; Failed ends the test
// with the VMIM, the VMI's migration state and the namespace's events.
func (l *local) waitMigration(ctx context.Context, vmim string) {
	l.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var phase string
	for {
		phase, _ = l.try(wctx, "-n", l.ns, "get", vmim, "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" {
			return
		}
		if phase == "Failed" || wctx.Err() != nil {
			obj, _ := l.try(ctx, "-n", l.ns, "get", vmim, "-o", "yaml")
			ev, _ := l.try(ctx, "-n", l.ns, "get", "events", "--sort-by", ".lastTimestamp")
			l.t.Fatalf("%s: phase %q (%v)\n%s\nevents:\n%s", vmim, phase, wctx.Err(), obj, ev)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestLocalClusterMigration: VMs whose NICs use our binding, on the two
// nodes of make cluster-up, joined by the DPDK link between their br-dpdk:
//   - vm-peer (node 2) and vm-a (node 1) ping each other across the nodes;
//     vm-peer pings vm-a 10 times a second;
//   - vm-a live-migrates (virtctl migrate) to node 2 and back while vm-peer
//     pings it; each migration succeeds, every port of the target pod is
//     connected on the target node's OVS, the source node keeps nothing of
//     ours, the guest keeps its MAC and address (vm-peer's pings to it
//     resume); total time, ping gap and first reply are logged;
//   - ovs-vswitchd of the node vm-a runs on is restarted right after a
//     migration, and the pings resume;
//   - node 1 is drained with vm-a and vm-b (two NICs) on it: both migrate to
//     node 2 (evictionStrategy LiveMigrate), with their ports connected
//     there and none left on node 1.
func TestLocalClusterMigration(t *testing.T) {
	l := setupVhostuser(t)
	l.needTwoNodes()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	l.applyNAD(ctx, "vhostuser", localBridge)

	peer := vmSpec{name: "vm-peer", nad: "vhostuser", ip: "192.0.2.31/24", peer: "192.0.2.32", interval: pingInterval, node: node2}
	a := vmSpec{name: "vm-a", nad: "vhostuser", ip: "192.0.2.32/24", peer: "192.0.2.31", prefer: node1, liveMigrate: true}
	b := vmSpec{name: "vm-b", nad: "vhostuser", ip: "192.0.2.33/24", peer: "192.0.2.31", interval: pingInterval, prefer: node1, liveMigrate: true, nics: 2}
	start := time.Now()
	for _, vm := range []vmSpec{peer, a, b} {
		l.apply(ctx, vm.object(l.ns))
	}
	for _, vm := range []vmSpec{peer, a, b} {
		took := l.waitVMIRunning(ctx, vm.name, start)
		t.Logf("VMI %s Running %.1f s after the VMs were applied", vm.name, took.Seconds())
	}
	placed := map[string]string{}
	for _, vm := range []vmSpec{peer, a, b} {
		lp := l.runningLauncher(ctx, vm.name, vm.nics)
		placed[vm.name] = lp.node
		l.checkConnected(ctx, lp)
	}
	if placed["vm-peer"] != node2 || placed["vm-a"] != node1 || placed["vm-b"] != node1 {
		t.Fatalf("VMs on %v: want vm-peer on %s, vm-a and vm-b on %s", placed, node2, node1)
	}

	// Across the nodes: each way through both OVS-DPDK bridges and the link.
	peerConsole, _ := l.console(peer.name)
	aConsole, _ := l.console(a.name)
	for _, c := range []struct {
		name    string
		console guest.Console
	}{{peer.name, peerConsole}, {a.name, aConsole}} {
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
		lines, err := c.console.Collect(wctx, 0, guest.MarkerPingOK, 10)
		wcancel()
		if err != nil {
			t.Fatalf("%s: cross-node ping: %v\n%s", c.name, err, c.console.Tail(20))
		}
		rtt, err := guest.MedianRTT(lines[1:])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s pings across the nodes: median RTT %s over %d pings", c.name, rtt, len(lines)-1)
	}

	var figures []migrationFigures
	for _, want := range []string{node2, node1} {
		f := l.migrate(ctx, a.name, 1, &peerConsole)
		if f.to != want {
			t.Errorf("vm-a migrated to %s, want %s", f.to, want)
		}
		t.Logf("migration of vm-a (1 NIC) %s", f)
		figures = append(figures, f)
		if want == node2 {
			l.checkOVSRestartAfterMigration(ctx, node2, peerConsole)
		}
	}

	// A drain of node 1 migrates both VMs there.
	off := peerConsole.Offset()
	srcA, srcB := l.runningLauncher(ctx, a.name, 1), l.runningLauncher(ctx, b.name, 2)
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "kubectl", "drain", node1, "--pod-selector", "kubevirt.io=virt-launcher",
		"--delete-emptydir-data", "--timeout", "10m").CombinedOutput()
	drained := time.Since(t0)
	uncordoned := false
	uncordon := func() {
		if uncordoned {
			return
		}
		uncordoned = true
		if out, err := exec.Command("kubectl", "uncordon", node1).CombinedOutput(); err != nil {
			t.Errorf("kubectl uncordon %s: %v: %s", node1, err, out)
		}
	}
	defer uncordon()
	if err != nil {
		ev, _ := l.try(ctx, "-n", l.ns, "get", "events", "--sort-by", ".lastTimestamp")
		t.Fatalf("kubectl drain %s: %v: %s\nevents:\n%s", node1, err, out, ev)
	}
	t.Logf("kubectl drain %s with vm-a and vm-b (2 NICs) on it: %.1f s", node1, drained.Seconds())
	for _, vm := range []struct {
		spec vmSpec
		src  launcher
	}{{a, srcA}, {b, srcB}} {
		dst := l.runningLauncher(ctx, vm.spec.name, vm.spec.nics)
		if dst.node != node2 {
			t.Errorf("%s on %s after the drain of %s", vm.spec.name, dst.node, node1)
		}
		l.checkConnected(ctx, dst)
		for _, at := range vm.src.nics {
			l.checkGoneOn(ctx, l.view(node1), vm.src.uid, at.paths)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	if _, err := peerConsole.Collect(wctx, off, guest.MarkerPingOK, 20); err != nil {
		t.Errorf("vm-peer's pings to vm-a after the drain: %v", err)
	}
	wcancel()
	if lines, err := peerConsole.Lines(off, guest.MarkerPingOK); err == nil {
		if lost, _, _, err := guest.PingGap(lines); err == nil {
			t.Logf("drain: vm-peer's pings to vm-a: gap %d lost x %s = %.1f s", lost, pingInterval, (time.Duration(lost) * pingInterval).Seconds())
		}
	}

	// The VM with two NICs back to node 1. Its own console ends with the
	// migration, and vm-peer pings vm-a: its traffic is checked on a console
	// opened on the target, its gap not measured.
	uncordon()
	f := l.migrate(ctx, b.name, 2, nil)
	if f.to != node1 {
		t.Errorf("vm-b migrated to %s, want %s", f.to, node1)
	}
	// Its own pings to vm-peer, on a console opened on the target.
	bConsole, _ := l.console(b.name)
	wctx, wcancel = context.WithTimeout(ctx, 2*time.Minute)
	if _, err := bConsole.Collect(wctx, 0, guest.MarkerPingOK, 20); err != nil {
		t.Fatalf("vm-b's pings to vm-peer after the migration: %v\n%s", err, bConsole.Tail(20))
	}
	wcancel()
	t.Logf("migration of vm-b (2 NICs; its own pings answered after it) %s", f)
	figures = append(figures, f)
	for _, f := range figures {
		t.Logf("figures: %s", f)
	}
}

// checkOVSRestartAfterMigration restarts node's ovs-vswitchd (as an operator
// does) right after a migration to it: the peer's pings resume.
func (l *vhu) checkOVSRestartAfterMigration(ctx context.Context, node string, peerConsole guest.Console) {
	l.t.Helper()
	off := peerConsole.Offset()
	t0 := time.Now()
	l.restartVswitchdOn(ctx, node, 0)
	restarted := peerConsole.Offset()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := peerConsole.Collect(wctx, restarted, guest.MarkerPingOK, 10); err != nil {
		l.t.Fatalf("pings after the restart of %s's ovs-vswitchd: %v\n%s", node, err, peerConsole.Tail(20))
	}
	lines, _ := peerConsole.Lines(off, guest.MarkerPingOK)
	lost, _, _, _ := guest.PingGap(lines)
	l.t.Logf("ovs-vswitchd of %s restarted right after the migration: pings resumed, gap %d lost x %s = %.1f s (checked %.1f s after the restart began)",
		node, lost, pingInterval, (time.Duration(lost) * pingInterval).Seconds(), time.Since(t0).Seconds())
}

// TestLocalClusterMigrationMissingBridge: a migration to a node whose OVS
// lacks the NAD's bridge: the target pod's events carry our plugin's error
// naming the bridge, the VM keeps running on its node with its traffic,
// and once the migration is cancelled nothing of ours is left on the
// target node.
func TestLocalClusterMigrationMissingBridge(t *testing.T) {
	l := setupVhostuser(t)
	l.needTwoNodes()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	v1, v2 := l.view(node1), l.view(node2)
	// A bridge on node 1 only.
	bridge := "brmig" + nonce(t)[:6]
	vsctl := func(v nodeView, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ovs-vsctl", append([]string{"--db", v.db, "--timeout", "10"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ovs-vsctl %v on %s: %v: %s", args, v.name, err, out)
		}
	}
	vsctl(v1, "add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev")
	t.Cleanup(func() { vsctl(v1, "--if-exists", "del-br", bridge) })
	l.applyNAD(ctx, "node1-only", bridge)

	f1 := vmSpec{name: "vm-f1", nad: "node1-only", ip: "192.0.2.41/24", peer: "192.0.2.42", prefer: node1}
	f2 := vmSpec{name: "vm-f2", nad: "node1-only", ip: "192.0.2.42/24", peer: "192.0.2.41", interval: pingInterval, node: node1}
	start := time.Now()
	for _, vm := range []vmSpec{f1, f2} {
		l.apply(ctx, vm.object(l.ns))
	}
	for _, vm := range []vmSpec{f1, f2} {
		l.waitVMIRunning(ctx, vm.name, start)
	}
	src := l.runningLauncher(ctx, f1.name, 1)
	if src.node != node1 {
		t.Fatalf("vm-f1 on %s, want %s", src.node, node1)
	}
	peerConsole, _ := l.console(f2.name)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	if _, err := peerConsole.Collect(wctx, 0, guest.MarkerPingOK, 10); err != nil {
		t.Fatalf("vm-f2's pings to vm-f1: %v\n%s", err, peerConsole.Tail(20))
	}
	wcancel()

	if out, err := exec.CommandContext(ctx, "virtctl", "migrate", "-n", l.ns, f1.name).CombinedOutput(); err != nil {
		t.Fatalf("virtctl migrate: %v: %s", err, out)
	}
	var target, targetUID string
	l.eventually(ctx, "the migration's target pod on "+node2, func() error {
		out, err := l.try(ctx, "-n", l.ns, "get", "pods", "-l", "vm.kubevirt.io/name="+f1.name,
			"--field-selector", "spec.nodeName="+node2, "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.uid}{end}")
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			return fmt.Errorf("target pods: %q", out)
		}
		target, targetUID = f[0], f[1]
		return nil
	})
	msg := l.waitEvent(ctx, target, "FailedCreatePodSandBox", fmt.Sprintf("%q", bridge), "does not exist")
	t.Logf("target pod %s: %s", target, msg)

	// The VM stays where it was, with its traffic.
	off := peerConsole.Offset()
	wctx, wcancel = context.WithTimeout(ctx, time.Minute)
	if _, err := peerConsole.Collect(wctx, off, guest.MarkerPingOK, 20); err != nil {
		t.Errorf("vm-f2's pings to vm-f1 while the migration fails: %v", err)
	}
	wcancel()
	if node := l.jsonpath(ctx, "{.status.nodeName}", "-n", l.ns, "get", "vmi", f1.name); node != node1 {
		t.Errorf("vm-f1 on %q during the failed migration, want %s", node, node1)
	}
	if lines, err := peerConsole.Lines(off, guest.MarkerPingOK); err == nil {
		if lost, _, _, err := guest.PingGap(lines); err == nil && lost > 0 {
			t.Errorf("vm-f2 lost %d pings to vm-f1 while the migration failed", lost)
		}
	}

	if out, err := exec.CommandContext(ctx, "virtctl", "migrate-cancel", "-n", l.ns, f1.name).CombinedOutput(); err != nil {
		t.Fatalf("virtctl migrate-cancel: %v: %s", err, out)
	}
	if out, err := l.try(ctx, "-n", l.ns, "wait", "--for", "delete", "--timeout", "120s", "pod/"+target); err != nil {
		t.Fatalf("target pod %s not removed after the cancel: %v: %s", target, err, out)
	}
	if rows := l.ovsFindOn(ctx, v2, "Interface", "vhostuser.kubevirt.io/pod-uid", targetUID); len(rows) != 0 {
		t.Errorf("%s: OVS interfaces of the failed target pod: %v", node2, rows)
	}
	// The attachment the target pod's ADD would have made: KubeVirt's pod
	// interface name for the VMI network, the target pod's UID.
	p, err := l.layout.For(socketpath.Attachment{PodUID: targetUID, IfName: namescheme.GenerateHashedInterfaceName(networkName(0))})
	if err != nil {
		t.Fatal(err)
	}
	if exists(v2.path(p.ShortLink)) {
		t.Errorf("%s: short link %s of the failed target pod left", node2, p.ShortLink)
	}
	// The kubelet removes a deleted pod's directory (and the socket
	// directory in its emptyDir) in its housekeeping.
	dctx, dcancel := context.WithTimeout(ctx, time.Minute)
	l.eventually(dctx, node2+": the failed target pod's directory removed", func() error {
		if dir := v2.path(filepath.Join(l.node.KubeletRoot, "pods", targetUID)); exists(dir) {
			return fmt.Errorf("%s left", dir)
		}
		return nil
	})
	dcancel()
	if node := l.jsonpath(ctx, "{.status.nodeName}", "-n", l.ns, "get", "vmi", f1.name); node != node1 {
		t.Errorf("vm-f1 on %q after the cancel, want %s", node, node1)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
