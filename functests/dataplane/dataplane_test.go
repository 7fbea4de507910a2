package dataplane

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
)

// TestTwoGuestsPingOverOVSDPDK is the local dataplane e2e with KubeVirt's
// real virt-launcher: see Run (which asserts each step) and package
// launcherpod.
func TestTwoGuestsPingOverOVSDPDK(t *testing.T) {
	bin := os.Getenv("VHOSTUSER_BIN")
	if bin == "" {
		t.Fatal("VHOSTUSER_BIN is not set: run `make functest` or point it at the directory with vhostuser and vhostuser-sidecar (make build)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the dataplane e2e needs root (network and mount namespaces, OVS-DPDK)")
	}
	// A cold first run compiles virt-launcher (several minutes on 2 cores
	// shared with the other functests); the chain itself takes about one.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	res, err := Run(ctx, Config{BinDir: bin, CacheDir: guest.CacheDir(), Log: log, KeepWorkDir: os.Getenv("VHOSTUSER_KEEP") != ""})
	if res != nil {
		for _, s := range res.Steps {
			t.Logf("step %-55s %6.1fs", s.Name, s.Took.Seconds())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Guests) != 2 {
		t.Fatalf("%d guests reported, want 2", len(res.Guests))
	}
	for _, g := range res.Guests {
		if !strings.Contains(g.FirstPing, guest.MarkerPingOK) || !strings.Contains(g.PingAfterRestart, guest.MarkerPingOK) {
			t.Errorf("%s: ping lines %q / %q", g.Name, g.FirstPing, g.PingAfterRestart)
		}
		if g.RTT <= 0 {
			t.Errorf("%s: no round-trip time measured", g.Name)
		}
		t.Logf("%s %s port %s RTT median %v (first ping %v)", g.Name, g.IP, g.Port, g.RTT, g.FirstRTT)
		// virt-launcher's own account of the domain, as virt-handler receives it.
		var running, shutoff bool
		for _, e := range g.Events {
			running = running || e.Status == api.Running
			shutoff = shutoff || (running && e.Status == api.Shutoff)
		}
		if !running || !shutoff {
			t.Errorf("%s: domain events %v: want Running, then Shutoff", g.Name, g.Events)
		}
		if g.Defines < 2 {
			t.Errorf("%s: %d defines through the hooks, want virt-launcher's redefines too", g.Name, g.Defines)
		}
	}
	for _, p := range res.StaleStatus {
		t.Logf("port %s: OVSDB status stale after the ovs-vswitchd restart; ovs-vswitchd logged its vhost device as added again", p)
	}
	if len(res.Leftovers) != 0 {
		t.Errorf("left after CNI DEL: %v", res.Leftovers)
	}
	if _, err := os.Stat(res.WorkDir); os.Getenv("VHOSTUSER_KEEP") == "" && !os.IsNotExist(err) {
		t.Errorf("work directory %s not removed: %v", res.WorkDir, err)
	}
	if len(res.Netns) != 3 {
		t.Errorf("network namespaces created: %v, want OVS's and two pods'", res.Netns)
	}
	for _, ns := range res.Netns {
		if _, err := os.Stat("/var/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("network namespace %s left behind (%v)", ns, err)
		}
	}
}

// testWriter sends the chain's progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
