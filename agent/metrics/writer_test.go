package metrics

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// fakeState is a Source whose content a test sets.
type fakeState struct {
	ports  []ovsstate.Port
	health ovsstate.Health
}

func (f *fakeState) Ports() []ovsstate.Port  { return f.ports }
func (f *fakeState) Health() ovsstate.Health { return f.health }

func connectedPort(name, pod string) ovsstate.Port {
	return ovsstate.Port{
		Name: name, Namespace: "vms", Pod: pod, PodUID: "uid-" + pod, IfName: "pod1a2b3c", Network: "vhu-net",
		Interface: ovsstate.Interface{
			Type: "dpdkvhostuserclient", LinkState: "up", AdminState: "up", MTU: 9000,
			ServerPath: "/var/lib/vhu/" + name + "/sock",
			Status:     map[string]string{"mode": "client", "status": "connected", "num_of_vrings": "4"},
			Statistics: map[string]int{
				"rx_bytes": 1000, "tx_bytes": 2000, "rx_packets": 10, "tx_packets": 20,
				"rx_dropped": 1, "tx_dropped": 2, "rx_errors": 3, "tx_errors": 4,
				"ovs_tx_failure_drops": 5, "ovs_rx_qos_drops": 6, "ovs_tx_retries": 7,
			},
		},
	}
}

// scrape renders w and parses the text as Prometheus does (see parse).
func scrape(t *testing.T, w *Writer) map[string][]*dto.Metric {
	t.Helper()
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("write: %v", err)
	}
	out := map[string][]*dto.Metric{}
	for name, mf := range parse(t, buf.Bytes()) {
		out[name] = mf.Metric
	}
	return out
}

// parse reads a text exposition with Prometheus' own parser, after
// checking that every family is in one piece (its HELP, TYPE and series
// together, not once more further down), and then that no series repeats
// in a family: either would fail a real scrape.
func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	seen := map[string]bool{}
	cur := ""
	for _, line := range strings.Split(string(text), "\n") {
		var name string
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
			name = strings.Fields(line)[2]
		case strings.HasPrefix(line, "#"):
			continue
		default:
			name, _, _ = strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
			if cur != "" && (name == cur+"_sum" || name == cur+"_count" || name == cur+"_bucket") {
				name = cur
			}
		}
		if name != cur {
			if seen[name] {
				t.Fatalf("family %s appears twice:\n%s", name, text)
			}
			seen[name], cur = true, name
		}
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	for name, mf := range mfs {
		series := map[string]bool{}
		for _, m := range mf.Metric {
			k := fmt.Sprint(labels(m))
			if series[k] {
				t.Errorf("%s%s twice", name, k)
			}
			series[k] = true
		}
	}
	return mfs
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.Label {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// find returns the value of the series of name whose labels include want.
func find(got map[string][]*dto.Metric, name string, want map[string]string) (float64, bool) {
next:
	for _, m := range got[name] {
		l := labels(m)
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return value(m), true
	}
	return 0, false
}

func TestCollectPort(t *testing.T) {
	st := &fakeState{
		ports:  []ovsstate.Port{connectedPort("vhu0011aabb", "virt-launcher-a-x1")},
		health: ovsstate.Health{Connected: true, LastUpdate: time.Unix(1700000000, 500_000_000), Connects: 2},
	}
	got := scrape(t, NewWriter(st, "node-1", nil))
	port := map[string]string{"node": "node-1", "namespace": "vms", "pod": "virt-launcher-a-x1",
		"pod_interface": "pod1a2b3c", "network": "vhu-net", "port": "vhu0011aabb"}
	with := func(extra ...string) map[string]string {
		m := map[string]string{}
		for k, v := range port {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// The guest's view: what OVS transmits, the VM receives.
		{"vhostuser_vmi_network_receive_bytes_total", port, 2000},
		{"vhostuser_vmi_network_transmit_bytes_total", port, 1000},
		{"vhostuser_vmi_network_receive_packets_total", port, 20},
		{"vhostuser_vmi_network_transmit_packets_total", port, 10},
		{"vhostuser_vmi_network_receive_packets_dropped_total", port, 2},
		{"vhostuser_vmi_network_transmit_packets_dropped_total", port, 1},
		{"vhostuser_vmi_network_receive_errors_total", port, 4},
		{"vhostuser_vmi_network_transmit_errors_total", port, 3},
		{"vhostuser_port_ovs_drops_total", with("reason", "tx_failure"), 5},
		{"vhostuser_port_ovs_drops_total", with("reason", "rx_qos"), 6},
		{"vhostuser_port_ovs_tx_retries_total", port, 7},
		{"vhostuser_port_info", with("type", "dpdkvhostuserclient", "mode", "client", "socket", "/var/lib/vhu/vhu0011aabb/sock"), 1},
		{"vhostuser_port_link_up", port, 1},
		{"vhostuser_port_vhost_connected", port, 1},
		{"vhostuser_port_error", port, 0},
		{"vhostuser_port_mtu_bytes", port, 9000},
		{"vhostuser_port_queues", port, 2},
		{"vhostuser_agent_ovsdb_connected", nil, 1},
		{"vhostuser_agent_ovsdb_last_update_timestamp_seconds", nil, 1700000000.5},
		{"vhostuser_agent_ovsdb_connects_total", nil, 2},
		{"vhostuser_agent_ovsdb_errors_total", map[string]string{"kind": "connection_lost"}, 0},
		{"vhostuser_agent_ports", nil, 1},
	}
	for _, tt := range tests {
		v, ok := find(got, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v: missing", tt.name, tt.labels)
			continue
		}
		if v != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, v, tt.want)
		}
	}
	if n := len(got["vhostuser_port_ovs_drops_total"]); n != 2 {
		t.Errorf("%d ovs drop series, want 2 (ovs_tx_retries is no drop counter)", n)
	}
}

// A port OVS knows little about (just added, no QEMU yet) gets only the
// series OVS has values for: no counter is made up.
func TestCollectDisconnectedPort(t *testing.T) {
	p := ovsstate.Port{Name: "vhu1", Namespace: "ns", Pod: "p", IfName: "net1", Network: "n",
		Interface: ovsstate.Interface{Type: "dpdkvhostuserclient", LinkState: "down", Error: "could not open",
			Status:     map[string]string{"mode": "client", "status": "disconnected"},
			Statistics: map[string]int{"ovs_tx_failure_drops": 0}}}
	got := scrape(t, NewWriter(&fakeState{ports: []ovsstate.Port{p}, health: ovsstate.Health{Connected: true}}, "n1", nil))
	for name, want := range map[string]float64{
		"vhostuser_port_link_up": 0, "vhostuser_port_vhost_connected": 0, "vhostuser_port_error": 1,
		"vhostuser_port_ovs_drops_total": 0, "vhostuser_port_info": 1,
	} {
		if v, ok := find(got, name, map[string]string{"port": "vhu1"}); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	for _, name := range []string{"vhostuser_port_mtu_bytes", "vhostuser_port_queues",
		"vhostuser_vmi_network_receive_bytes_total", "vhostuser_port_ovs_tx_retries_total",
		"vhostuser_agent_ovsdb_last_update_timestamp_seconds"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s present, want absent", name)
		}
	}
}

func TestCollectHealth(t *testing.T) {
	tests := []struct {
		name      string
		health    ovsstate.Health
		wantPorts bool
	}{
		{"connected", ovsstate.Health{Connected: true}, true},
		// The last known counters are not served as if they were live.
		{"disconnected", ovsstate.Health{Connects: 1, Errors: ovsstate.Errors{Connect: 3, Monitor: 1, ConnectionLost: 2}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeState{ports: []ovsstate.Port{connectedPort("vhu1", "a"), connectedPort("vhu2", "b")}, health: tt.health}
			got := scrape(t, NewWriter(st, "n1", nil))
			if _, ok := got["vhostuser_port_info"]; ok != tt.wantPorts {
				t.Errorf("port series present %v, want %v", ok, tt.wantPorts)
			}
			if v, _ := find(got, "vhostuser_agent_ports", nil); v != 2 {
				t.Errorf("vhostuser_agent_ports = %v, want 2", v)
			}
			if v, _ := find(got, "vhostuser_agent_ovsdb_connected", nil); v != boolValue(tt.health.Connected) {
				t.Errorf("connected = %v", v)
			}
			for kind, want := range map[string]uint64{"connect": tt.health.Errors.Connect,
				"monitor": tt.health.Errors.Monitor, "connection_lost": tt.health.Errors.ConnectionLost} {
				if v, ok := find(got, "vhostuser_agent_ovsdb_errors_total", map[string]string{"kind": kind}); !ok || v != float64(want) {
					t.Errorf("errors{kind=%s} = %v, want %v", kind, v, want)
				}
			}
		})
	}
}

// Two ports for one pod interface (a stale port beside its successor) stay
// two distinct series sets: a duplicate would fail the whole scrape.
func TestCollectStaleBesideNew(t *testing.T) {
	a, b := connectedPort("vhuold", "p"), connectedPort("vhunew", "p")
	got := scrape(t, NewWriter(&fakeState{ports: []ovsstate.Port{a, b}, health: ovsstate.Health{Connected: true}}, "n", nil))
	if n := len(got["vhostuser_vmi_network_receive_bytes_total"]); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
}

func TestOVSDropReason(t *testing.T) {
	for key, want := range map[string]string{
		"ovs_tx_failure_drops": "tx_failure", "ovs_tx_mtu_exceeded_drops": "tx_mtu_exceeded",
		"ovs_tx_retries": "", "rx_dropped": "", "ovs_drops": "",
	} {
		got, ok := ovsDropReason(key)
		if ok != (want != "") || got != want {
			t.Errorf("ovsDropReason(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}

func TestHelpNamesTheSource(t *testing.T) {
	// Every traffic series says which OVS counter it shows, since the
	// direction is swapped.
	for _, s := range trafficStats {
		if !strings.Contains(s.fam.help, s.key) {
			t.Errorf("%s: help does not name %s", s.fam.name, s.key)
		}
	}
}

// fakeAPI answers Names from a map keyed by pod UID and pod interface.
type fakeAPI struct {
	names  map[[2]string][2]string
	synced bool
}

func (f *fakeAPI) Names(uid, ifName string) (string, string) {
	n := f.names[[2]string{uid, ifName}]
	return n[0], n[1]
}
func (f *fakeAPI) Synced() bool { return f.synced }

// With the API, port series carry the VMI name and VMI network name as
// KubeVirt's own series do (name, interface); a port the API knows nothing
// of keeps its series, without them.
func TestCollectVMILabels(t *testing.T) {
	known := connectedPort("vhu1", "virt-launcher-vm1-x")
	unknown := connectedPort("vhu2", "plain-pod")
	api := &fakeAPI{names: map[[2]string][2]string{{known.PodUID, known.IfName}: {"vm1", "fast"}}}
	got := scrape(t, NewWriter(&fakeState{ports: []ovsstate.Port{known, unknown}, health: ovsstate.Health{Connected: true}}, "n1", api))
	if v, ok := find(got, "vhostuser_vmi_network_receive_bytes_total", map[string]string{"namespace": "vms", "name": "vm1", "interface": "fast", "port": "vhu1"}); !ok || v != 2000 {
		t.Errorf("series by VMI name: %v %v", v, ok)
	}
	if _, ok := find(got, "vhostuser_vmi_network_receive_bytes_total", map[string]string{"name": "", "interface": "", "pod": "plain-pod"}); !ok {
		t.Error("the unknown pod's series lost")
	}
	if v, ok := find(got, "vhostuser_agent_api_synced", nil); !ok || v != 0 {
		t.Errorf("api_synced %v %v, want 0", v, ok)
	}
	api.synced = true
	got = scrape(t, NewWriter(&fakeState{health: ovsstate.Health{Connected: true}}, "n1", api))
	if v, ok := find(got, "vhostuser_agent_api_synced", nil); !ok || v != 1 {
		t.Errorf("api_synced %v %v, want 1", v, ok)
	}
	got = scrape(t, NewWriter(&fakeState{health: ovsstate.Health{Connected: true}}, "n1", nil))
	if _, ok := got["vhostuser_agent_api_synced"]; ok {
		t.Error("api_synced without an API")
	}
}
