//go:build integration

package ovsenv_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// TestLifecycle starts a private instance, simulates both outages, and checks
// that Stop leaves no process, namespace or directory behind.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o, err := ovsenv.Start(ctx, ovsenv.Options{Name: "ovsenvt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Stop() })
	if !strings.HasPrefix(o.Endpoint(), "unix:/") || len(o.DBSocket) > 107 {
		t.Fatalf("endpoint %q", o.Endpoint())
	}
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		if o.Pid(d) == 0 {
			t.Fatalf("%s not running", d)
		}
	}
	if out, err := o.Vsctl(ctx, "get", "Open_vSwitch", ".", "dpdk_initialized"); err != nil || strings.TrimSpace(out) != "true" {
		t.Fatalf("dpdk_initialized %q %v", out, err)
	}
	if out, _ := o.Vsctl(ctx, "get", "Open_vSwitch", ".", "other_config:pmd-maxsleep"); !strings.Contains(out, "10000") {
		t.Fatalf("pmd-maxsleep %q", out)
	}
	if _, err := o.Vsctl(ctx, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev"); err != nil {
		t.Fatal(err)
	}
	// The bridge's tap device lives in the private namespace, not on the host.
	if out, err := exec.Command("ip", "netns", "exec", o.Netns, "ip", "link", "show", "br0").CombinedOutput(); err != nil {
		t.Fatalf("br0 not in netns %s: %v %s", o.Netns, err, out)
	}

	old := o.Pid("ovs-vswitchd")
	if err := o.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	if p := o.Pid("ovs-vswitchd"); p == 0 || p == old {
		t.Fatalf("ovs-vswitchd pid %d after restart (was %d)", p, old)
	}
	if _, err := o.Appctl(ctx, "ovs-vswitchd", "version"); err != nil {
		t.Fatal(err)
	}

	if err := o.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Vsctl(ctx, "--timeout=2", "show"); err == nil {
		t.Fatal("ovs-vsctl works with ovsdb-server stopped")
	}
	if err := o.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := o.Vsctl(ctx, "br-exists", "br0"); err != nil {
		t.Fatalf("br0 lost across the database restart: %v %s", err, out)
	}

	dir, ns := o.Dir, o.Netns
	pids := []int{o.Pid("ovsdb-server"), o.Pid("ovs-vswitchd")}
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("instance directory kept: %v", err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
		t.Fatalf("netns %s kept", ns)
	}
	for _, p := range pids {
		// A zombie waiting for a reaper is gone for our purposes.
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
			t.Fatalf("process %d still running: %s", p, b)
		}
	}
	if err := o.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestRestartLoop restarts ovs-vswitchd many times in a row on the same DPDK
// file prefix, with a vhost-user port configured. A restart used to fail now
// and then with "EAL: Cannot allocate memzone list": the stop counted the
// old daemon as gone once its pid file was removed (or its leader thread
// was a zombie) while other threads still held DPDK's runtime files. After
// every stop no thread of the old process may be left.
func TestRestartLoop(t *testing.T) {
	const restarts = 12
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	o, err := ovsenv.Start(ctx, ovsenv.Options{Name: "ovsenvr"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Stop() })
	if _, err := o.Vsctl(ctx, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev",
		"--", "add-port", "br0", "vhu0", "--", "set", "Interface", "vhu0", "type=dpdkvhostuserclient",
		"options:vhost-server-path="+o.Dir+"/vhu0.sock"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < restarts; i++ {
		old := o.Pid("ovs-vswitchd")
		if old == 0 {
			t.Fatalf("restart %d: ovs-vswitchd not running", i)
		}
		if err := o.StopVswitchd(ctx); err != nil {
			t.Fatalf("restart %d: stop: %v", i, err)
		}
		if live := liveThreads(old); len(live) > 0 {
			t.Fatalf("restart %d: StopVswitchd returned while threads of pid %d still run: %v", i, old, live)
		}
		if err := o.StartVswitchd(ctx); err != nil {
			t.Fatalf("restart %d: start: %v", i, err)
		}
		p := o.Pid("ovs-vswitchd")
		if p == 0 || p == old {
			t.Fatalf("restart %d: ovs-vswitchd pid %d (was %d)", i, p, old)
		}
		if out, err := o.Vsctl(ctx, "get", "Interface", "vhu0", "type"); err != nil || strings.TrimSpace(out) != "dpdkvhostuserclient" {
			t.Fatalf("restart %d: port vhu0 %q %v", i, out, err)
		}
	}
	if log := o.LogTail("ovs-vswitchd", 100000); strings.Contains(log, "Cannot allocate memzone") || strings.Contains(log, "Cannot init memzone") {
		t.Fatalf("EAL memzone failure in the log:\n%s", log)
	}
	prefix := o.FilePrefix
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ovsenv.DPDKRuntimeDir + "/" + prefix); !os.IsNotExist(err) {
		t.Fatalf("DPDK runtime directory of prefix %s left behind: %v", prefix, err)
	}
}

// liveThreads lists the threads of pid that are neither zombie nor dead.
func liveThreads(pid int) []string {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var live []string
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		if st := s[i+2]; st != 'Z' && st != 'X' && st != 'x' {
			live = append(live, task.Name()+":"+string(st))
		}
	}
	return live
}
