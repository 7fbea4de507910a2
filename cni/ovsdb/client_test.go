package ovsdb

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

func TestPortOps(t *testing.T) {
	tests := []struct {
		name     string
		spec     PortSpec
		wantJSON []string // fragments the wire form must contain
		absent   []string
	}{
		{"plain", PortSpec{Bridge: "br0", Name: "vhu0", ServerPath: "/run/vhu/x/vhost.sock", ExternalIDs: map[string]string{KeyOwner: Owner}},
			[]string{`"type":"dpdkvhostuserclient"`, `["vhost-server-path","/run/vhu/x/vhost.sock"]`, `["named-uuid","iface"]`, `"uuid-name":"port"`, `["vhostuser.kubevirt.io/owner","vhostuser-cni"]`},
			[]string{"mtu_request", `"tag"`, "trunks"}},
		{"all options", PortSpec{Bridge: "br0", Name: "vhu1", ServerPath: "/p", MTU: 9000, VLAN: 7, Options: map[string]string{"tx-retries-max": "8"}},
			[]string{`"mtu_request":9000`, `"tag":7`, `["tx-retries-max","8"]`, `["vhost-server-path","/p"]`}, []string{"trunks"}},
		{"trunk", PortSpec{Bridge: "br0", Name: "vhu2", ServerPath: "/p", Trunk: []int{10, 20}},
			[]string{`"trunks":["set",[10,20]]`}, []string{`"tag"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := portOps(tt.spec)
			if len(ops) != 2 || ops[0].Table != tableInterface || ops[1].Table != tablePort {
				t.Fatalf("ops %+v", ops)
			}
			b, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantJSON {
				if !strings.Contains(string(b), w) {
					t.Errorf("wire form lacks %s:\n%s", w, b)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(string(b), a) {
					t.Errorf("wire form has %s:\n%s", a, b)
				}
			}
		})
	}
}

func TestOptionsNotAliased(t *testing.T) {
	opts := map[string]string{"a": "1"}
	m := withServerPath(opts, "/x")
	if _, ok := opts[OptionServerPth]; ok || m[OptionServerPth] != "/x" || m["a"] != "1" {
		t.Fatalf("withServerPath changed its input or lost data: %v %v", opts, m)
	}
}

func TestOperationsHaveWhere(t *testing.T) {
	// RFC 7047 requires "where" on mutate and wait; an empty slice would vanish from the JSON.
	for name, op := range map[string]lovsdb.Operation{
		"detach": detachPort("2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"),
		"wait":   netdevBridgeWait("br0"),
		"ready":  readyWait(),
		"all":    {Op: lovsdb.OperationMutate, Table: tableOpenvSwitch, Where: allRows()},
	} {
		b, _ := json.Marshal(op)
		if !strings.Contains(string(b), `"where":[`) {
			t.Errorf("%s: no where clause: %s", name, b)
		}
	}
}

func TestRowDecoding(t *testing.T) {
	var row lovsdb.Row
	raw := `{"_uuid":["uuid","2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],"name":"vhu1",
		"interfaces":["uuid","3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],
		"tag":["set",[]],"trunks":["set",[10,20]],"ofport":5,"error":["set",["boom"]],
		"external_ids":["map",[["k","v"]]]}`
	if err := json.Unmarshal([]byte(raw), &row); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"uuid", uuidOf(row["_uuid"]), "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"},
		{"single-element set", uuids(row["interfaces"]), []string{"3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"}},
		{"string", str(row["name"]), "vhu1"},
		{"map", strMap(row["external_ids"]), map[string]string{"k": "v"}},
		{"missing map", strMap(row["nothing"]), map[string]string{}},
		{"set len", len(setOf(row["trunks"])), 2},
		{"empty optional", func() bool { _, ok := optInt(row["tag"]); return ok }(), false},
		{"atom int", func() int { v, _ := optInt(row["ofport"]); return v }(), 5},
		{"error column", setOf(row["error"]), []interface{}{"boom"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	ports := portsFromRows([]lovsdb.Row{row})
	if len(ports) != 1 || ports[0].Tag != nil || !reflect.DeepEqual(ports[0].Trunks, []int{10, 20}) || ports[0].Name != "vhu1" {
		t.Fatalf("portsFromRows: %+v", ports)
	}
}

// TestReadyWaits: the ADD transaction's readiness waits, on the wire.
func TestReadyWaits(t *testing.T) {
	for name, tt := range map[string]struct {
		op   lovsdb.Operation
		want []string
	}{
		"ready": {readyWait(), []string{`"op":"wait"`, `"timeout":0`, `"table":"Open_vSwitch"`, `["iface_types","includes","dpdkvhostuserclient"]`,
			`["dpdk_initialized","==",true]`, `"until":"=="`, `"rows":[{"dpdk_initialized":true}]`}},
		"bridge": {netdevBridgeWait("br0"), []string{`"op":"wait"`, `"timeout":0`, `"table":"Bridge"`, `["name","==","br0"]`,
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

func TestTxnError(t *testing.T) {
	e := &txnError{kind: "constraint violation", details: "duplicate name"}
	if !strings.Contains(e.Error(), "constraint violation: duplicate name") {
		t.Fatal(e.Error())
	}
}
