//go:build integration

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// One private OVS-DPDK and one agent binary for the package run.
var (
	ovs      *ovsenv.OVS
	agentBin string
)

const testNode = "node-itest"

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the integration tests need root (ovsenv's network namespace)")
		return 1
	}
	dir, err := os.MkdirTemp("", "vhu-agent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if agentBin, err = agentBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	ovs, err = ovsenv.StartWithBridge(ctx, ovsenv.Options{Name: "vhuagent"}, "br0")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start OVS:", err)
		return 1
	}
	defer ovs.Stop()
	return m.Run()
}

// agentBinary is $VHOSTUSER_BIN/vhostuser-agent (make build), else built now.
func agentBinary(dir string) (string, error) {
	if bin := os.Getenv("VHOSTUSER_BIN"); bin != "" {
		p := filepath.Join(bin, "vhostuser-agent")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VHOSTUSER_BIN is set but: %w (run make build)", err)
		}
		return p, nil
	}
	p := filepath.Join(dir, "vhostuser-agent")
	cmd := exec.Command("go", "build", "-o", p, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return p, nil
}

// agent is one running vhostuser-agent.
type agent struct {
	addr string
	pid  int
	mu   sync.Mutex
	log  strings.Builder
}

// startAgent runs the agent against the private OVS; it is stopped (and
// its log shown on failure) when the test ends.
func startAgent(t testing.TB) *agent {
	t.Helper()
	cmd := exec.Command(agentBin, "-ovsdb", ovs.Endpoint(), "-listen", "127.0.0.1:0", "-node-name", testNode, "-api", "none", "-node-config", "", "-debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agent{pid: cmd.Process.Pid}
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			a.mu.Lock()
			a.log.WriteString(sc.Text() + "\n")
			a.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				addr <- line.Addr
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		// A clean SIGTERM exit is 0; anything else (a race report: 66)
		// fails the test.
		err := cmd.Wait()
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			t.Errorf("agent exit: %v; log:\n%s", err, a.log.String())
		} else if t.Failed() {
			t.Logf("agent log:\n%s", a.log.String())
		}
	})
	select {
	case a.addr = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not log its address")
	}
	return a
}

// scrape parses /metrics with Prometheus' own text parser.
func (a *agent) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + a.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape: content type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return mfs
}

func (a *agent) healthz(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + a.addr + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor scrapes until cond holds, at most 30 s (OVS refreshes
// statistics every 5 s).
func (a *agent) waitFor(t *testing.T, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs := a.scrape(t)
		if cond(mfs) {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last scrape:\n%s", what, dump(mfs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// series returns the series of family name whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		l := labelMap(m)
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.Label {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func val(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return -1
}

// gauge is the value of the one unlabelled series of name, or -1.
func gauge(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	s := series(mfs, name, labels)
	if len(s) != 1 {
		return -1
	}
	return val(s[0])
}

// anySeries tells whether any vhostuser_ series carries label k=v.
func anySeries(mfs map[string]*dto.MetricFamily, k, v string) string {
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "vhostuser_") {
			continue
		}
		for _, m := range mf.Metric {
			if labelMap(m)[k] == v {
				return name
			}
		}
	}
	return ""
}

func dump(mfs map[string]*dto.MetricFamily) string {
	var b strings.Builder
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "vhostuser_") {
			continue
		}
		for _, m := range mf.Metric {
			fmt.Fprintf(&b, "%s%v %v\n", name, labelMap(m), val(m))
		}
	}
	return b.String()
}

// attachment is what the plugin marks a port with.
type attachment struct{ port, namespace, pod, ifName, network string }

func (a attachment) marks(owner string) map[string]string {
	return map[string]string{
		ovsdb.KeyOwner: owner, ovsdb.KeyNamespace: a.namespace, ovsdb.KeyPodName: a.pod,
		ovsdb.KeyPodUID: "uid-" + a.pod, ovsdb.KeyContainerID: "cid-" + a.pod,
		ovsdb.KeyIfName: a.ifName, ovsdb.KeyNetwork: a.network,
	}
}

// addPort creates a dpdkvhostuserclient port as the plugin does, with the
// marks of owner on both its Port and Interface rows.
func addPort(t *testing.T, a attachment, owner string) {
	t.Helper()
	if out, err := ovs.Vsctl(context.Background(), addPortArgs(a, owner)...); err != nil {
		t.Fatalf("add port %s: %v %s", a.port, err, out)
	}
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--if-exists", "del-port", a.port) })
}

// addPortArgs are the ovs-vsctl commands that add a's port (chain several
// with "--" for one transaction).
func addPortArgs(a attachment, owner string) []string {
	var ids []string
	for k, v := range a.marks(owner) {
		ids = append(ids, fmt.Sprintf("external_ids:%q=%q", k, v))
	}
	args := append([]string{"add-port", "br0", a.port, "--", "set", "Interface", a.port,
		"type=dpdkvhostuserclient", "options:vhost-server-path=" + filepath.Join(ovs.Dir, a.port+".sock")}, ids...)
	return append(append(args, "--", "set", "Port", a.port), ids...)
}

func delPort(t *testing.T, name string) {
	t.Helper()
	if out, err := ovs.Vsctl(context.Background(), "del-port", name); err != nil {
		t.Fatalf("del port %s: %v %s", name, err, out)
	}
}

// TestPortSeries: a port of ours gets its series with the marks as labels,
// a port that is not ours gets none, and a deleted port's series go.
func TestPortSeries(t *testing.T) {
	ag := startAgent(t)
	ours := attachment{"vhu1a2b3c4d", "vms", "virt-launcher-vm1-abcde", "pod16367aacb67", "vhu-net"}
	theirs := attachment{"vhuintruder", "vms", "intruder", "net1", "vhu-net"}
	addPort(t, ours, ovsdb.Owner)
	addPort(t, theirs, "someone-else")

	want := map[string]string{"node": testNode, "namespace": ours.namespace, "pod": ours.pod,
		"pod_interface": ours.ifName, "network": ours.network, "port": ours.port,
		// -api none: no VMI known, so KubeVirt's two labels are empty.
		"name": "", "interface": ""}
	// Wait for the statistics too: ovs-vswitchd fills them in on its
	// next stats update.
	mfs := ag.waitFor(t, "the port's series", func(mfs map[string]*dto.MetricFamily) bool {
		return len(series(mfs, "vhostuser_port_info", want)) == 1 &&
			len(series(mfs, "vhostuser_port_ovs_drops_total", want)) > 0
	})
	info := series(mfs, "vhostuser_port_info", want)[0]
	if l := labelMap(info); l["type"] != "dpdkvhostuserclient" || l["mode"] != "client" ||
		l["socket"] != filepath.Join(ovs.Dir, ours.port+".sock") || len(l) != len(want)+3 {
		t.Errorf("vhostuser_port_info labels %v", l)
	}
	// No QEMU listens: OVS keeps retrying, the port is down.
	for name, v := range map[string]float64{"vhostuser_port_vhost_connected": 0, "vhostuser_port_link_up": 0,
		"vhostuser_port_error": 0} {
		if got := gauge(mfs, name, want); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if got := gauge(mfs, "vhostuser_port_ovs_drops_total", map[string]string{"port": ours.port, "reason": "tx_failure"}); got != 0 {
		t.Errorf("tx_failure drops = %v, want 0", got)
	}
	if mf := mfs["vhostuser_port_ovs_drops_total"]; mf.GetType() != dto.MetricType_COUNTER {
		t.Errorf("drops type %v", mf.GetType())
	}
	if name := anySeries(mfs, "port", theirs.port); name != "" {
		t.Errorf("a port that is not ours has series (%s)", name)
	}
	if name := anySeries(mfs, "pod", theirs.pod); name != "" {
		t.Errorf("a port that is not ours has series (%s)", name)
	}
	if got := gauge(mfs, "vhostuser_agent_ports", nil); got != 1 {
		t.Errorf("vhostuser_agent_ports = %v, want 1", got)
	}
	if got := gauge(mfs, "vhostuser_agent_ovsdb_connected", nil); got != 1 {
		t.Errorf("vhostuser_agent_ovsdb_connected = %v", got)
	}
	if code := ag.healthz(t); code != http.StatusOK {
		t.Errorf("healthz %d", code)
	}

	delPort(t, ours.port)
	mfs = ag.waitFor(t, "the deleted port's series to go", func(mfs map[string]*dto.MetricFamily) bool {
		return anySeries(mfs, "port", ours.port) == ""
	})
	if got := gauge(mfs, "vhostuser_agent_ports", nil); got != 0 {
		t.Errorf("vhostuser_agent_ports = %v after delete, want 0", got)
	}
}

// TestReconnect: the agent survives an ovsdb-server restart, and what
// changed while it was away (a port deleted) is right after it reconnects.
func TestReconnect(t *testing.T) {
	ag := startAgent(t)
	kept := attachment{"vhukept0001", "vms", "virt-launcher-kept-11111", "net1", "vhu-net"}
	gone := attachment{"vhugone0001", "vms", "virt-launcher-gone-22222", "net1", "vhu-net"}
	addPort(t, kept, ovsdb.Owner)
	addPort(t, gone, ovsdb.Owner)
	ag.waitFor(t, "both ports", func(mfs map[string]*dto.MetricFamily) bool {
		return gauge(mfs, "vhostuser_agent_ports", nil) == 2
	})
	uuid, err := ovs.Vsctl(context.Background(), "get", "Port", gone.port, "_uuid")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = ovs.StartDB(context.Background())
		}
	})
	mfs := ag.waitFor(t, "the agent to see the outage", func(mfs map[string]*dto.MetricFamily) bool {
		return gauge(mfs, "vhostuser_agent_ovsdb_connected", nil) == 0
	})
	if name := anySeries(mfs, "port", kept.port); name != "" {
		t.Errorf("port series served while disconnected (%s)", name)
	}
	if code := ag.healthz(t); code != http.StatusServiceUnavailable {
		t.Errorf("healthz %d while disconnected, want 503", code)
	}
	// Delete a port while the agent cannot see it: straight in the
	// database file, as another client would have while the agent was away.
	txn := fmt.Sprintf(`["Open_vSwitch",{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],`+
		`"mutations":[["ports","delete",["uuid",%q]]]}]`, strings.TrimSpace(uuid))
	if out, err := exec.CommandContext(ctx, "ovsdb-tool", "transact", filepath.Join(ovs.Dir, "conf.db"), txn).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool transact: %v %s", err, out)
	}
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	mfs = ag.waitFor(t, "the agent to reconnect", func(mfs map[string]*dto.MetricFamily) bool {
		return gauge(mfs, "vhostuser_agent_ovsdb_connected", nil) == 1 &&
			len(series(mfs, "vhostuser_port_info", map[string]string{"port": kept.port})) == 1
	})
	if name := anySeries(mfs, "port", gone.port); name != "" {
		t.Errorf("the port deleted during the outage still has series (%s)", name)
	}
	if got := gauge(mfs, "vhostuser_agent_ports", nil); got != 1 {
		t.Errorf("vhostuser_agent_ports = %v, want 1", got)
	}
	if got := gauge(mfs, "vhostuser_agent_ovsdb_connects_total", nil); got != 2 {
		t.Errorf("connects = %v, want 2", got)
	}
	if got := gauge(mfs, "vhostuser_agent_ovsdb_errors_total", map[string]string{"kind": "connection_lost"}); got < 1 {
		t.Errorf("connection_lost errors = %v, want at least 1", got)
	}
	if code := ag.healthz(t); code != http.StatusOK {
		t.Errorf("healthz %d after reconnect", code)
	}
	// Updates flow again on the new session.
	addPort(t, attachment{"vhuafter001", "vms", "virt-launcher-after-33333", "net1", "vhu-net"}, ovsdb.Owner)
	ag.waitFor(t, "a port added after the reconnect", func(mfs map[string]*dto.MetricFamily) bool {
		return len(series(mfs, "vhostuser_port_info", map[string]string{"port": "vhuafter001"})) == 1
	})
}
