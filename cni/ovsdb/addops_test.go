package ovsdb

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestCreatePortOperations(t *testing.T) {
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
			ops := createPortOperations(tt.spec)
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

func TestAddPortOperations(t *testing.T) {
	s := PortSpec{Bridge: "br0", Name: "vhu0", ServerPath: "/p", UUID: PortUUID("c0", "net1")}
	ops := addPortOperations(s)
	want := []string{"insert Interface", "insert Port", "wait Open_vSwitch", "wait Bridge", "mutate Bridge"}
	if got := tables(ops); !reflect.DeepEqual(got, want) {
		t.Fatalf("operations %v, want %v", got, want)
	}
	if ops[addPortResult].Table != tablePort || ops[addPortResult].UUID != s.UUID {
		t.Fatalf("result %d is not the Port under %s: %+v", addPortResult, s.UUID, ops[addPortResult])
	}
	wantWire(t, "attach", ops[4], []string{`["ports","insert",["named-uuid","port"]]`, `["name","==","br0"]`}, nil)
}

func TestCarefulAddPortOperations(t *testing.T) {
	const stale = "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"
	derived := PortUUID("c0", "net1")
	s := PortSpec{Bridge: "br0", Name: "vhu0", ServerPath: "/p", UUID: derived}
	attach := []string{"insert Interface", "insert Port", "wait Bridge", "mutate Bridge"}
	create := []string{"insert Interface", "insert Port", "insert Interface", "insert Port", "insert Bridge", "mutate Open_vSwitch"}
	for _, tt := range []struct {
		name         string
		replace      string
		bridgeExists bool
		want         []string
		portOp       int
		portUUID     string // the UUID the Port is inserted under
	}{
		{"existing bridge", "", true, attach, 1, derived},
		{"new bridge", "", false, create, 1, derived},
		{"replace another UUID", stale, true, append([]string{"mutate Bridge"}, attach...), 2, derived},
		// ovsdb-server refuses a UUID deleted in the same transaction.
		{"replace the derived UUID", derived, true, append([]string{"mutate Bridge"}, attach...), 2, ""},
		{"replace, new bridge", stale, false, append([]string{"mutate Bridge"}, create...), 2, derived},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ops, portOp := carefulAddPortOperations(s, tt.replace, tt.bridgeExists)
			if got := tables(ops); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("operations %v, want %v", got, tt.want)
			}
			if portOp != tt.portOp || ops[portOp].Table != tablePort || ops[portOp].UUIDName != namedPort || ops[portOp].UUID != tt.portUUID {
				t.Fatalf("port operation %d: %+v, want %d under %q", portOp, ops[portOp], tt.portOp, tt.portUUID)
			}
			if tt.replace != "" {
				wantWire(t, "detach", ops[0], []string{`["ports","delete",["uuid","` + tt.replace + `"]]`}, nil)
			}
		})
	}
	if s.UUID != derived {
		t.Fatalf("carefulAddPortOperations changed the caller's spec: %+v", s)
	}
}

func TestCreateInterfaceAndPortOperation(t *testing.T) {
	s := PortSpec{Name: "vhu0", ServerPath: "/p", UUID: PortUUID("c0", "net1")}
	wantWire(t, "interface", createInterfaceOperation(s),
		[]string{`"op":"insert"`, `"table":"Interface"`, `"uuid-name":"iface"`, `"name":"vhu0"`}, []string{`"uuid":`})
	wantWire(t, "port", createPortOperation(s),
		[]string{`"op":"insert"`, `"table":"Port"`, `"uuid-name":"port"`, `"uuid":"` + s.UUID + `"`, `"interfaces":["named-uuid","iface"]`}, nil)
	s.UUID = ""
	wantWire(t, "port, server's UUID", createPortOperation(s), []string{`"uuid-name":"port"`}, []string{`"uuid":`})
}
