package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// notConnectedPort is a port whose socket no QEMU serves yet: OVS reports
// no MTU, no queues and no traffic counters, only its own drop counters.
func notConnectedPort(name, pod string) ovsstate.Port {
	return ovsstate.Port{
		Name: name, Namespace: "vms", Pod: pod, PodUID: "uid-" + pod, IfName: "pod9f8e7d", Network: "vhu-net",
		Interface: ovsstate.Interface{
			Type: "dpdkvhostuserclient", LinkState: "down", AdminState: "up",
			ServerPath: "/var/lib/vhu/" + name + "/sock",
			Status:     map[string]string{"mode": "client", "status": "disconnected"},
			Statistics: map[string]int{
				"ovs_rx_qos_drops": 0, "ovs_tx_failure_drops": 0, "ovs_tx_invalid_hwol_drops": 0,
				"ovs_tx_mtu_exceeded_drops": 0, "ovs_tx_qos_drops": 0, "ovs_tx_retries": 0,
			},
		},
	}
}

// equivCases are the snapshots the Writer and the old collector must agree
// on.
func equivCases() []struct {
	name string
	st   *fakeState
	node string
	api  *fakeAPI
} {
	up := ovsstate.Health{Connected: true, LastUpdate: time.Unix(1700000000, 123_456_789), Connects: 3,
		Errors: ovsstate.Errors{Connect: 1, Monitor: 2, ConnectionLost: 5}}

	a, b, c := connectedPort("vhu0a", "virt-launcher-a-1"), connectedPort("vhu0b", "virt-launcher-b-2"), connectedPort("vhu0c", "plain-pod")
	names := &fakeAPI{synced: true, names: map[[2]string][2]string{
		{a.PodUID, a.IfName}: {"vm-a", "fast"},
		{b.PodUID, b.IfName}: {"vm-b", ""}, // a network name not known yet
	}}

	var nc []ovsstate.Port
	for i := range 5 {
		nc = append(nc, notConnectedPort(fmt.Sprintf("vhu1%d", i), fmt.Sprintf("virt-launcher-n%d-x", i)))
	}

	errPorts := []ovsstate.Port{
		{Name: "vhu2a", Namespace: "ns", Pod: "p", IfName: "net1", Network: "n",
			Interface: ovsstate.Interface{Type: "dpdkvhostuserclient", LinkState: "down",
				Error:      "could not open network device vhu2a (No such device)",
				Status:     map[string]string{"mode": "client", "status": "disconnected"},
				Statistics: map[string]int{"ovs_tx_failure_drops": 0}}},
		// Nothing reported at all yet: no type, no status, no statistics.
		{Name: "vhu2b", Namespace: "ns", Pod: "q", IfName: "net1", Network: "n",
			Interface: ovsstate.Interface{Error: "bad"}},
	}

	odd := connectedPort(`vhu3"a`, "virt-launcher-\"quoted\"\\back\nslash-ü")
	odd.Namespace = `ns\with"quote`
	odd.IfName = "pod\nif"
	odd.Network = "réseau-网络-🚀"
	odd.Interface.Type = `type"x`
	odd.Interface.Status = map[string]string{"mode": "cli\\ent\n", "status": "connected", "num_of_vrings": "3"}
	odd.Interface.ServerPath = "/var/lib/vhu/\"x\"\\y\n/sock"
	odd.Interface.Statistics = map[string]int{
		"ovs_we\"ird\\_drops": 9, "ovs_new\nline_drops": 8, "ovs_üñí_drops": 7,
		"tx_bytes": 1 << 62, "rx_bytes": 1<<53 + 1, "tx_packets": 1_000_000, "rx_packets": 123456789012345,
		"tx_dropped": -1, "rx_dropped": 0,
	}
	oddAPI := &fakeAPI{synced: true, names: map[[2]string][2]string{
		{odd.PodUID, odd.IfName}: {"vm \"one\"\\\n", "net-ü"},
	}}

	queues := []ovsstate.Port{connectedPort("vhu4a", "a"), connectedPort("vhu4b", "b"), connectedPort("vhu4c", "c")}
	queues[0].Interface.Status = map[string]string{"mode": "client", "status": "connected", "num_of_vrings": "0"}
	queues[1].Interface.Status = map[string]string{"mode": "client", "status": "connected", "num_of_vrings": "x"}
	queues[2].Interface.MTU = 65535

	many, manyAPI := bench200()
	many.health = up

	return []struct {
		name string
		st   *fakeState
		node string
		api  *fakeAPI
	}{
		{"connected, all statistics, VMI names", &fakeState{ports: []ovsstate.Port{a, b, c}, health: up}, "node-1", names},
		{"not connected ports", &fakeState{ports: nc, health: up}, "node-1", names},
		{"ports with errors", &fakeState{ports: errPorts, health: up}, "node-1", nil},
		{"escaping and UTF-8", &fakeState{ports: []ovsstate.Port{odd}, health: up}, "node\"1\\ü\n", oddAPI},
		{"empty VMI names", &fakeState{ports: []ovsstate.Port{a, b, c}, health: up}, "node-1", &fakeAPI{}},
		{"no API", &fakeState{ports: []ovsstate.Port{a, c}, health: up}, "node-1", nil},
		{"queues and MTU", &fakeState{ports: queues, health: up}, "node-1", nil},
		{"stale beside new", &fakeState{ports: []ovsstate.Port{connectedPort("vhuold", "p"), connectedPort("vhunew", "p")}, health: up}, "n", nil},
		{"no ports", &fakeState{health: up}, "node-1", names},
		{"OVSDB disconnected", &fakeState{ports: []ovsstate.Port{a, b}, health: ovsstate.Health{
			LastUpdate: up.LastUpdate, Connects: 4, Errors: ovsstate.Errors{Connect: 7, ConnectionLost: 4}}}, "node-1", names},
		{"never connected", &fakeState{}, "", nil},
		{"200 ports", many, "node-1", manyAPI},
	}
}

// TestWriterMatchesClientGolang: for every snapshot, the Writer's text
// parses into the very families (names, HELP, types, label names and
// values, values) the old client_golang collector gave.
func TestWriterMatchesClientGolang(t *testing.T) {
	for _, tt := range equivCases() {
		t.Run(tt.name, func(t *testing.T) {
			var api API
			if tt.api != nil {
				api = tt.api
			}
			var buf bytes.Buffer
			if _, err := NewWriter(tt.st, tt.node, api).WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			got := canonical(parse(t, buf.Bytes()))
			want := canonical(oracleFamilies(t, newOracle(tt.st, tt.node, api)))
			if len(want) == 0 {
				t.Fatal("the oracle gave nothing")
			}
			for _, name := range union(got, want) {
				if got[name] != want[name] {
					t.Errorf("family %s:\nwriter:\n%s\nclient_golang:\n%s", name, got[name], want[name])
				}
			}
		})
	}
}

// oracleFamilies gathers c through a pedantic registry (which checks its
// series against its descriptors and for duplicates), encodes them as
// promhttp did, and parses that text back.
func oracleFamilies(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.FmtText)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return parse(t, buf.Bytes())
}

// canonical renders each family as text with its series and their labels
// sorted, so that two families compare as strings.
func canonical(mfs map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		key := func(m *dto.Metric) string {
			var sb strings.Builder
			for _, l := range m.Label {
				sb.WriteString(l.GetName() + "\x00" + l.GetValue() + "\x00")
			}
			return sb.String()
		}
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(key(a), key(b)) })
		var sb strings.Builder
		if _, err := expfmt.MetricFamilyToText(&sb, mf); err != nil {
			panic(err)
		}
		out[name] = sb.String()
	}
	return out
}

func union(a, b map[string]string) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Invalid UTF-8 (which client_golang refuses, panicking in the old
// collector) becomes U+FFFD: one bad value must not fail the scrape.
func TestWriterInvalidUTF8(t *testing.T) {
	p := connectedPort("vhu5", "pod-\xff-x")
	got := scrape(t, NewWriter(&fakeState{ports: []ovsstate.Port{p}, health: ovsstate.Health{Connected: true}}, "n\xc3", nil))
	if _, ok := find(got, "vhostuser_port_link_up", map[string]string{"pod": "pod-\uFFFD-x", "node": "n\uFFFD"}); !ok {
		t.Errorf("no series with the replaced values: %v", got["vhostuser_port_link_up"])
	}
}

func TestAppendEscaped(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"plain-1.2_3":  "plain-1.2_3",
		`a"b`:          `a\"b`,
		`a\b`:          `a\\b`,
		"a\nb":         `a\nb`,
		"\\\"\n":       `\\\"\n`,
		"ü网🚀":          "ü网🚀",
		"tab\there":    "tab\there",
		"x\xffy\xc3":   "x\uFFFDy\uFFFD",
		"/run/\"a\"/s": `/run/\"a\"/s`,
	} {
		if got := string(appendEscaped([]byte("pre:"), in)); got != "pre:"+want {
			t.Errorf("appendEscaped(%q) = %q, want %q", in, got, "pre:"+want)
		}
	}
}

// failAfter fails every write once n bytes are written.
type failAfter struct{ n, calls int }

func (f *failAfter) Write(p []byte) (int, error) {
	f.calls++
	if len(p) > f.n {
		w := f.n
		f.n = 0
		return w, errors.New("broken pipe")
	}
	f.n -= len(p)
	return len(p), nil
}

// A failing output stops the scrape at once and is reported; the scratch
// space goes back to the pool clean.
func TestWriterStopsOnError(t *testing.T) {
	st, api := bench200()
	w := NewWriter(st, "node-1", api)
	f := &failAfter{n: 1000}
	n, err := w.WriteTo(f)
	if err == nil || n != 1000 || f.calls != 1 {
		t.Errorf("WriteTo = %d, %v after %d writes; want 1000, the error, after one write", n, err, f.calls)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, w); len(got["vhostuser_port_info"]) != 200 {
		t.Errorf("%d info series after an error, want 200", len(got["vhostuser_port_info"]))
	}
}

// A scrape allocates next to nothing once the pool holds its scratch space
// (a guard on the design, not on timing).
func TestWriterAllocations(t *testing.T) {
	st, api := bench200()
	w := NewWriter(st, "node-1", api)
	if _, err := w.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { _, _ = w.WriteTo(io.Discard) }); n > 20 {
		t.Errorf("%v allocations per 200-port scrape, want at most 20", n)
	}
}
