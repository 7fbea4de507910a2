package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// The node agent's DaemonSet (manifests/base/agent): its namespace, pod
// label and metrics port.
const (
	agentNamespace = "vhostuser-system"
	agentSelector  = "app.kubernetes.io/name=vhostuser-agent"
	agentPort      = "9731"
	// The agent's defaults (cmd/vhostuser-agent): the warning threshold
	// for a port never connected, and the reconciler's grace period.
	agentNotConnectedAfter = 60 * time.Second
	agentReconcileGrace    = 30 * time.Second
)

// agentURL is the /metrics address of node's agent pod, reached from this
// machine as Prometheus reaches it (pod IP and the metrics port).
func (l *local) agentURL(ctx context.Context, node string) string {
	l.t.Helper()
	var ip string
	l.eventually(ctx, "the agent pod of "+node+" Ready with an IP", func() error {
		out, err := l.try(ctx, "-n", agentNamespace, "get", "pods", "-l", agentSelector,
			"--field-selector", "spec.nodeName="+node, "-o",
			`jsonpath={range .items[*]}{.status.podIP} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) != 2 || f[1] != "True" {
			return fmt.Errorf("agent pods: %q (want one, Ready)", out)
		}
		ip = f[0]
		return nil
	})
	return "http://" + net.JoinHostPort(ip, agentPort) + "/metrics"
}

// scrape reads the agent's /metrics with Prometheus' own text parser.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(resp.Body)
}

// series returns the value of the one series of family whose labels
// include want, and whether there is exactly one.
func series(mfs map[string]*dto.MetricFamily, family string, want map[string]string) (float64, bool) {
	mf := mfs[family]
	if mf == nil {
		return 0, false
	}
	var v float64
	n := 0
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, w := range want {
			if got[k] != w {
				continue next
			}
		}
		n++
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		}
	}
	return v, n == 1
}

// checkVMSeries: a VM's interface has its traffic series, found by VMI
// name and network as KubeVirt's kubevirt_vmi_network_* are, and they grow
// while the guests ping (OVS refreshes statistics every 5 s).
func (l *local) checkVMSeries(ctx context.Context, url, vm, network string) {
	l.t.Helper()
	sel := map[string]string{"namespace": l.ns, "name": vm, "interface": network}
	const rx, tx = "vhostuser_vmi_network_receive_packets_total", "vhostuser_vmi_network_transmit_packets_total"
	read := func() (float64, float64, error) {
		mfs, err := scrape(ctx, url)
		if err != nil {
			return 0, 0, err
		}
		r, ok1 := series(mfs, rx, sel)
		t, ok2 := series(mfs, tx, sel)
		if !ok1 || !ok2 {
			return 0, 0, fmt.Errorf("no single %s/%s series with %v", rx, tx, sel)
		}
		if up, ok := series(mfs, "vhostuser_port_vhost_connected", sel); !ok || up != 1 {
			return 0, 0, fmt.Errorf("vhostuser_port_vhost_connected with %v: %v (present %v), want 1", sel, up, ok)
		}
		return r, t, nil
	}
	var r0, t0 float64
	l.eventually(ctx, fmt.Sprintf("%s's series by VMI name", vm), func() (err error) {
		r0, t0, err = read()
		return err
	})
	start := time.Now()
	var r1, t1 float64
	l.eventually(ctx, fmt.Sprintf("%s's packet counters growing", vm), func() (err error) {
		if r1, t1, err = read(); err != nil {
			return err
		}
		if r1 <= r0 || t1 <= t0 {
			return fmt.Errorf("received %v -> %v, transmitted %v -> %v", r0, r1, t0, t1)
		}
		return nil
	})
	l.t.Logf("%s/%s: received packets %v -> %v, transmitted %v -> %v within %.1f s", vm, network, r0, r1, t0, t1, time.Since(start).Seconds())
}

// kubeletPID is the pid of cluster-up's kubelet.
func (l *local) kubeletPID() int {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join(l.state, "pid", "kubelet.pid"))
	if err != nil {
		l.t.Fatalf("kubelet pid file (cluster-up writes it): %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		l.t.Fatalf("kubelet pid file: %q", b)
	}
	return pid
}

// TestLocalClusterAgent: the node agent (manifests/base/agent, as
// installed) on what really happens to a port.
//   - A pod whose port nothing serves (no QEMU) gets a VhostUserNotConnected
//     warning event naming the interface, once the threshold has passed.
//   - The pod is then deleted while its node cannot run CNI DEL (the
//     kubelet frozen, as a hung or crashed kubelet is), and force-removed
//     from the API as an operator does for a node that does not answer:
//     the agent removes the leaked port, short link and socket directory,
//     and leaves the port of a pod that still exists.
func TestLocalClusterAgent(t *testing.T) {
	l := setupVhostuser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	url := l.agentURL(ctx, node1)
	l.applyNAD(ctx, "vhostuser", localBridge)

	type podInfo struct {
		name, uid, ifname string
		paths             socketpath.Paths
		added             time.Time
	}
	pods := []*podInfo{{name: "leaked"}, {name: "kept"}}
	for _, p := range pods {
		l.apply(ctx, vhostuserPod(l.ns, p.name, "vhostuser"))
	}
	for _, p := range pods {
		l.waitRunning(ctx, p.name)
		p.uid = l.jsonpath(ctx, "{.metadata.uid}", "-n", l.ns, "get", "pod", p.name)
		// The port is in OVSDB once ADD returned, before the pod ran.
		p.added = time.Now()
		var err error
		p.ifname = l.multusIfname(ctx, p.name, "vhostuser")
		if p.paths, err = l.layout.For(socketpath.Attachment{PodUID: p.uid, IfName: p.ifname}); err != nil {
			t.Fatal(err)
		}
		if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", p.uid); len(rows) != 1 {
			t.Fatalf("%s: %d OVS ports, want 1", p.name, len(rows))
		}
	}
	leaked, kept := pods[0], pods[1]

	// The series of a port of a plain pod: no VMI name, not connected.
	l.eventually(ctx, "the pod's port series", func() error {
		mfs, err := scrape(ctx, url)
		if err != nil {
			return err
		}
		v, ok := series(mfs, "vhostuser_port_vhost_connected", map[string]string{"namespace": l.ns, "pod": leaked.name, "name": ""})
		if !ok || v != 0 {
			return fmt.Errorf("vhostuser_port_vhost_connected of %s: %v (present %v), want 0", leaked.name, v, ok)
		}
		return nil
	})

	msg := l.waitEvent(ctx, leaked.name, "VhostUserNotConnected", leaked.ifname, "vhu"+leaked.paths.ID, "not connected")
	late := time.Since(leaked.added) - agentNotConnectedAfter
	t.Logf("VhostUserNotConnected on %s, %.1f s after the threshold (the pod was Running at most that much after ADD): %s", leaked.name, late.Seconds(), msg)

	// The leak: the kubelet cannot act, the pod is removed from the API.
	pid := l.kubeletPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze the kubelet: %v", err)
	}
	frozen := true
	thaw := func() {
		if frozen {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("thaw the kubelet: %v", err)
			}
			frozen = false
		}
	}
	defer thaw()
	deleted := time.Now()
	l.kubectl(ctx, "-n", l.ns, "delete", "pod", leaked.name, "--grace-period=0", "--force", "--wait=false")
	l.eventually(ctx, "the pod gone from the API", func() error {
		if out, err := l.try(ctx, "-n", l.ns, "get", "pod", leaked.name, "-o", "name"); err == nil {
			return fmt.Errorf("still there: %s", out)
		}
		return nil
	})
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", leaked.uid); len(rows) != 1 {
		t.Fatalf("the port went before the reconciler could act (%d rows): the kubelet was not frozen", len(rows))
	}
	rctx, rcancel := context.WithTimeout(ctx, agentReconcileGrace+90*time.Second)
	l.eventually(rctx, "the leaked port, short link and socket directory removed by the agent", func() error {
		if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", leaked.uid); len(rows) != 0 {
			return fmt.Errorf("port still there")
		}
		if _, err := os.Lstat(leaked.paths.ShortLink); !os.IsNotExist(err) {
			return fmt.Errorf("short link %s still there (%v)", leaked.paths.ShortLink, err)
		}
		if _, err := os.Lstat(leaked.paths.HostDir); !os.IsNotExist(err) {
			return fmt.Errorf("socket directory %s still there (%v)", leaked.paths.HostDir, err)
		}
		return nil
	})
	rcancel()
	t.Logf("leaked attachment of %s removed %.1f s after the pod left the API (grace %s)", leaked.name, time.Since(deleted).Seconds(), agentReconcileGrace)
	if rows := l.ovsFind(ctx, "Port", "vhostuser.kubevirt.io/pod-uid", kept.uid); len(rows) != 1 {
		t.Errorf("the port of %s, whose pod exists, is gone (%d rows)", kept.name, len(rows))
	}
	if _, err := os.Lstat(kept.paths.ShortLink); err != nil {
		t.Errorf("the short link of %s, whose pod exists: %v", kept.name, err)
	}
	mfs, err := scrape(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := series(mfs, "vhostuser_agent_reconcile_removed_total", map[string]string{"kind": "port"}); !ok || v < 1 {
		t.Errorf("vhostuser_agent_reconcile_removed_total{kind=port} %v (present %v), want at least 1", v, ok)
	}

	// The kubelet comes back: its own cleanup (CNI DEL of the sandbox)
	// finds nothing left and succeeds, and the kept pod still runs.
	thaw()
	l.waitRunning(ctx, kept.name)
	l.kubectl(ctx, "-n", l.ns, "delete", "pod", kept.name, "--wait", "--timeout", "60s")
	l.checkGone(ctx, kept.uid, kept.paths)
	l.logAgentMemory()
	logs := l.kubectl(ctx, "-n", agentNamespace, "logs", "-l", agentSelector, "--tail", "-1")
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg, Kind, PodUID string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "reconcile: removed leaked") && rec.PodUID == kept.uid {
			t.Errorf("the agent removed something of the kept pod: %s", line)
		}
	}
}

// logAgentMemory logs the node agent's resident memory, read from the
// host's /proc (the agent's process is the node's, in its own PID
// namespace): a figure with the API side (informers, events) running.
func (l *local) logAgentMemory() {
	l.t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		l.t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "vhostuser-agent" {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var mem []string
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") || strings.HasPrefix(line, "VmRSS:") {
				mem = append(mem, strings.Join(strings.Fields(line), " "))
			}
		}
		l.t.Logf("node agent pid %s: %s", e.Name(), strings.Join(mem, ", "))
		return
	}
	l.t.Errorf("no vhostuser-agent process on the node")
}
