package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
)

// restartVswitchd restarts node 1's ovs-vswitchd as an operator does
// (hack/cluster/ovs.sh restart-vswitchd: ovs-appctl exit, then the same
// command line).
func (l *local) restartVswitchd(ctx context.Context, down time.Duration) {
	l.t.Helper()
	l.restartVswitchdOn(ctx, node1, down)
}

// restartVswitchdOn is restartVswitchd on node.
func (l *local) restartVswitchdOn(ctx context.Context, node string, down time.Duration) {
	l.t.Helper()
	n := "1"
	if node == node2 {
		n = "2"
	}
	script := filepath.Join("..", "..", "hack", "cluster", "ovs.sh")
	cmd := exec.CommandContext(ctx, "bash", script, "restart-vswitchd")
	cmd.Env = append(os.Environ(), fmt.Sprintf("DOWN_SECONDS=%d", int(down.Seconds())), "VHOSTUSER_NODE="+n)
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("ovs.sh restart-vswitchd: %v: %s", err, out)
	}
}

// TestLocalClusterOVSRestart: two VMs ping each other through the node's
// OVS-DPDK; ovs-vswitchd is restarted as an operator restarts it; the
// ports reconnect and the pings resume, twice: at once, and after 10 s
// without ovs-vswitchd. The timeline (ovs-vswitchd back, each port
// connected, each guest's first ping answered) is logged: the recovery is a
// figure, not an assertion. The node agent sends no VhostUserDisconnected
// for it.
func TestLocalClusterOVSRestart(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l.applyNAD(ctx, "vhostuser", localBridge)
	type vmInfo struct {
		name, ip, peer string
		port           string
		console        guest.Console
	}
	vms := []*vmInfo{
		{name: "vm-r1", ip: "192.0.2.21/24", peer: "192.0.2.22"},
		{name: "vm-r2", ip: "192.0.2.22/24", peer: "192.0.2.21"},
	}
	start := time.Now()
	for _, vm := range vms {
		l.apply(ctx, kubevirtVM(l.ns, vm.name, "vhostuser", vm.ip, vm.peer))
	}
	for _, vm := range vms {
		l.waitVMIRunning(ctx, vm.name, start)
		_, uid := l.launcherPod(ctx, vm.name)
		rows := l.ovsFind(ctx, "Interface", "vhostuser.kubevirt.io/pod-uid", uid)
		if len(rows) != 1 {
			t.Fatalf("%s: %d OVS interfaces", vm.name, len(rows))
		}
		vm.port = fmt.Sprint(rows[0]["name"])
		vm.console, _ = l.console(vm.name)
	}
	for _, vm := range vms {
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
		_, err := vm.console.Collect(wctx, 0, guest.MarkerPingOK, 3)
		wcancel()
		if err != nil {
			t.Fatalf("%s: pings before the restart: %v\n%s", vm.name, err, vm.console.Tail(20))
		}
	}

	// An immediate restart, then one that leaves the node without
	// ovs-vswitchd for a while (a slow upgrade).
	for _, down := range []time.Duration{0, 10 * time.Second} {
		t0 := time.Now()
		l.restartVswitchd(ctx, down)
		restarted := time.Since(t0)
		connected := map[string]time.Duration{}
		pinged := map[string]time.Duration{}
		// A ping answered counts once both ports are connected again: one
		// answered before ovs-vswitchd exited may still be printed after t0.
		var offsets map[string]int64
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
		l.eventually(rctx, "ports connected and pings answered after the restart", func() error {
			var missing []string
			for _, vm := range vms {
				if _, ok := connected[vm.port]; ok {
					continue
				}
				if st := l.ovsStatus(rctx, vm.port); strings.Contains(st, "status=connected") || strings.Contains(st, `status="connected"`) {
					connected[vm.port] = time.Since(t0)
				} else {
					missing = append(missing, vm.port+" not connected")
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s", strings.Join(missing, ", "))
			}
			if offsets == nil {
				offsets = map[string]int64{}
				for _, vm := range vms {
					offsets[vm.name] = vm.console.Offset()
				}
			}
			for _, vm := range vms {
				if _, ok := pinged[vm.name]; ok {
					continue
				}
				if _, err := vm.console.Collect(ctxDone(), offsets[vm.name], guest.MarkerPingOK, 1); err == nil {
					pinged[vm.name] = time.Since(t0)
				} else {
					missing = append(missing, vm.name+" no ping answered")
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s", strings.Join(missing, ", "))
			}
			return nil
		})
		rcancel()
		for _, vm := range vms {
			t.Logf("%s, ovs-vswitchd down %s: restarted at %.1f s; port %s connected at %.1f s; first ping answered at %.1f s (the guest pings once a second, 2 s timeout)",
				vm.name, down, restarted.Seconds(), vm.port, connected[vm.port].Seconds(), pinged[vm.name].Seconds())
		}
	}
	// The node agent: a restart that reconnects is no news for the VMs'
	// owners (its VhostUserDisconnected waits 10 s for a reconnect).
	if out := l.kubectl(ctx, "-n", l.ns, "get", "events", "--field-selector", "reason=VhostUserDisconnected", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("VhostUserDisconnected events after restarts that reconnected: %s", out)
	}
}

// ctxDone is an ended context: Collect then looks once and does not wait.
func ctxDone() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
