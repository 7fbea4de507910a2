//go:build integration

package events

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/agent/pods"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// A real OVS-DPDK (ovsdb-server and ovs-vswitchd): the states the events
// are about are ovs-vswitchd's own reports.
var ovs *ovsenv.OVS

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the integration tests need root (ovsenv's network namespace)")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	ovs, err = ovsenv.StartWithBridge(ctx, ovsenv.Options{Name: "vhuev"}, "br0")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start OVS:", err)
		return 1
	}
	defer ovs.Stop()
	return m.Run()
}

// testSink hands every recorded event to the test, stamped on arrival.
type testSink chan stamped

type stamped struct {
	Event
	at time.Time
}

func (s testSink) Record(e Event) { s <- stamped{e, time.Now()} }

// plainPods knows every pod the test makes: plain pods, no VMI.
type plainPods struct{}

func (plainPods) Pod(uid string) (pods.Pod, bool) {
	return pods.Pod{UID: uid, Namespace: "tenant", Name: "pod-" + uid}, true
}
func (plainPods) VMI(string) (pods.VMI, bool) { return pods.VMI{}, false }

// run starts a monitor and Run with cfg until the test ends.
func run(t *testing.T, cfg Config) testSink {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	state := ovsstate.NewState()
	mon := &ovsstate.Monitor{Endpoint: ovs.Endpoint(), State: state, Log: log}
	s := make(testSink, 16)
	go func() { _ = mon.Run(ctx); done <- struct{}{} }()
	go func() { Run(ctx, cfg, state, plainPods{}, s, log); done <- struct{}{} }()
	return s
}

// addPort adds a port with the plugin's marks on bridge (and its extra
// ovs-vsctl settings); ovs-vsctl returns once ovs-vswitchd has applied it.
func addPort(t *testing.T, bridge, name, uid string, extra ...string) {
	t.Helper()
	marks := map[string]string{ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyPodUID: uid, ovsdb.KeyIfName: "net1",
		ovsdb.KeyNamespace: "tenant", ovsdb.KeyPodName: "pod-" + uid, ovsdb.KeyContainerID: "c-" + uid}
	var ids []string
	for k, v := range marks {
		ids = append(ids, fmt.Sprintf("external_ids:%q=%q", k, v))
	}
	args := append([]string{"add-port", bridge, name, "--", "set", "Interface", name}, extra...)
	args = append(append(args, ids...), "--", "set", "Port", name)
	args = append(args, ids...)
	if out, err := ovs.Vsctl(context.Background(), args...); err != nil {
		t.Fatalf("add port %s: %v %s", name, err, out)
	}
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--if-exists", "del-port", name) })
}

func next(t *testing.T, s testSink, within time.Duration) stamped {
	t.Helper()
	select {
	case e := <-s:
		return e
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
		return stamped{}
	}
}

func quiet(t *testing.T, s testSink, for_ time.Duration) {
	t.Helper()
	select {
	case e := <-s:
		t.Errorf("unexpected event %s: %s", e.Reason, e.Message)
	case <-time.After(for_):
	}
}

// TestNotConnectedOnRealOVS: a port whose socket nothing serves (OVS
// retries the connection for ever) gets one VhostUserNotConnected warning
// once the threshold has passed, naming the socket, and nothing more.
func TestNotConnectedOnRealOVS(t *testing.T) {
	const after = time.Second
	s := run(t, Config{NotConnectedAfter: after})
	sock := filepath.Join(ovs.Dir, "nobody.sock")
	added := time.Now()
	addPort(t, "br0", "vhunc0", "uid-nc", "type=dpdkvhostuserclient", "options:vhost-server-path="+sock)
	e := next(t, s, after+10*time.Second)
	if e.Reason != ReasonNotConnected || e.Type != TypeWarning || e.Pod.UID != "uid-nc" || e.Port != "vhunc0" {
		t.Fatalf("event %+v", e.Event)
	}
	if !strings.Contains(e.Message, sock) || !strings.Contains(e.Message, "net1") {
		t.Errorf("message names neither the socket nor the interface: %s", e.Message)
	}
	// The agent sees the port before ovs-vsctl returns (it waits for
	// ovs-vswitchd), so this is an upper bound of the delay.
	t.Logf("VhostUserNotConnected %s after the add began, %s past the threshold: %s", e.at.Sub(added), e.at.Sub(added)-after, e.Message)
	quiet(t, s, 3*time.Second)
}

// TestPortErrorOnRealOVS: ovs-vswitchd sets the error column of a port it
// cannot open (a DPDK device that does not exist); the agent sends one
// VhostUserPortError with OVS's own text, and nothing more while it stays.
func TestPortErrorOnRealOVS(t *testing.T) {
	s := run(t, Config{NotConnectedAfter: time.Hour})
	start := time.Now()
	addPort(t, "br0", "vhuerr0", "uid-err", "type=dpdk", "options:dpdk-devargs=net_vhuerr_missing0")
	out, err := ovs.Vsctl(context.Background(), "get", "Interface", "vhuerr0", "error")
	if err != nil || strings.Trim(strings.TrimSpace(out), `"`) == "" || strings.TrimSpace(out) == "[]" {
		t.Fatalf("OVS set no error on the port (%v): %q", err, out)
	}
	e := next(t, s, 10*time.Second)
	if e.Reason != ReasonPortError || e.Type != TypeWarning || e.Pod.UID != "uid-err" {
		t.Fatalf("event %+v", e.Event)
	}
	ovsErr := strings.Trim(strings.TrimSpace(out), `"`)
	if !strings.Contains(e.Message, ovsErr) {
		t.Errorf("message %q lacks OVS's error %q", e.Message, ovsErr)
	}
	t.Logf("VhostUserPortError %s after the add began (ovs-vswitchd sets the error as it applies it): %s", e.at.Sub(start), e.Message)
	quiet(t, s, 3*time.Second)
}
