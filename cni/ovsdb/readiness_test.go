package ovsdb

import (
	"encoding/json"
	"strings"
	"testing"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// TestReadyWaits: the ADD transaction's readiness waits, on the wire.
func TestReadyWaits(t *testing.T) {
	for name, tt := range map[string]struct {
		op   lovsdb.Operation
		want []string
	}{
		"ready": {ovsReadyWaitOperation(), []string{`"op":"wait"`, `"timeout":0`, `"table":"Open_vSwitch"`, `["iface_types","includes","dpdkvhostuserclient"]`,
			`["dpdk_initialized","==",true]`, `"until":"=="`, `"rows":[{"dpdk_initialized":true}]`}},
		"bridge": {netdevBridgeWaitOperation("br0"), []string{`"op":"wait"`, `"timeout":0`, `"table":"Bridge"`, `["name","==","br0"]`,
			`"columns":["name","datapath_type"]`, `"rows":[{"datapath_type":"netdev","name":"br0"}]`}},
	} {
		b, err := json.Marshal(tt.op)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: wire form lacks %s:\n%s", name, w, b)
			}
		}
	}
}

func TestReadiness(t *testing.T) {
	row := func(raw string) lovsdb.Row {
		var r lovsdb.Row
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	good := row(`{"dpdk_initialized":true,"iface_types":["set",["dpdk","dpdkvhostuserclient","internal"]]}`)
	netdev := row(`{"datapath_type":"netdev"}`)
	for _, tt := range []struct {
		name     string
		ovs, br  []lovsdb.Row
		required bool
		want     string // "" for ready
	}{
		{"ready", []lovsdb.Row{good}, []lovsdb.Row{netdev}, true, ""},
		{"missing bridge, created on demand", []lovsdb.Row{good}, nil, false, ""},
		{"missing bridge", []lovsdb.Row{good}, nil, true, "createBridge"},
		{"system bridge", []lovsdb.Row{good}, []lovsdb.Row{row(`{"datapath_type":""}`)}, true, "datapath_type=netdev"},
		{"no dpdk", []lovsdb.Row{row(`{"dpdk_initialized":false,"iface_types":["set",["dpdkvhostuserclient"]]}`)}, []lovsdb.Row{netdev}, true, "dpdk-init=true"},
		{"no vhost-user type", []lovsdb.Row{row(`{"dpdk_initialized":true,"iface_types":["set",["internal","system"]]}`)}, []lovsdb.Row{netdev}, true, "DPDK build"},
		{"single type as an atom", []lovsdb.Row{row(`{"dpdk_initialized":true,"iface_types":"dpdkvhostuserclient"}`)}, []lovsdb.Row{netdev}, true, ""},
		{"empty database", nil, nil, true, "ovs-vsctl init"},
	} {
		err := readiness(tt.ovs, tt.br, "br0", tt.required)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestReadinessOperations(t *testing.T) {
	ops := readinessOperations("br0")
	if len(ops) != 2 {
		t.Fatalf("%d operations, want 2", len(ops))
	}
	wantWire(t, "root row", ops[0], []string{`"op":"select"`, `"table":"Open_vSwitch"`, `"columns":["dpdk_initialized","iface_types"]`}, nil)
	wantWire(t, "bridge", ops[1], []string{`"op":"select"`, `"table":"Bridge"`, `["name","==","br0"]`, `"columns":["datapath_type"]`}, nil)
}
