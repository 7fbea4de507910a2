package ovsdb

import (
	"reflect"
	"testing"
)

func TestCreateBridgeOperations(t *testing.T) {
	ops := createBridgeOperations("br0")
	want := []string{"insert Interface", "insert Port", "insert Bridge", "mutate Open_vSwitch"}
	if got := tables(ops); !reflect.DeepEqual(got, want) {
		t.Fatalf("operations %v, want %v", got, want)
	}
	// Like ovs-vsctl add-br: an internal port of the bridge's name, netdev.
	wantWire(t, "internal interface", ops[0], []string{`"name":"br0"`, `"type":"internal"`, `"uuid-name":"briface"`}, nil)
	wantWire(t, "internal port", ops[1], []string{`"name":"br0"`, `"interfaces":["named-uuid","briface"]`, `"uuid-name":"brport"`}, nil)
	wantWire(t, "bridge", ops[2], []string{`"name":"br0"`, `"datapath_type":"netdev"`, `"uuid-name":"bridge"`,
		`["named-uuid","port"]`, `["named-uuid","brport"]`, `["vhostuser.kubevirt.io/created-bridge","true"]`, `["vhostuser.kubevirt.io/owner","vhostuser-cni"]`}, nil)
	wantWire(t, "root row", ops[3], []string{`["bridges","insert",["named-uuid","bridge"]]`, `"where":[`}, nil)
}

func TestDeleteUnusedBridgeOperations(t *testing.T) {
	const br, internal = "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", "3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"
	ops := deleteUnusedBridgeOperations("br0", br, internal)
	want := []string{"wait Bridge", "mutate Open_vSwitch"}
	if got := tables(ops); !reflect.DeepEqual(got, want) {
		t.Fatalf("operations %v, want %v", got, want)
	}
	// The wait fails the transaction ("timed out") once another port is on the bridge.
	wantWire(t, "wait", ops[0], []string{`"timeout":0`, `["name","==","br0"]`, `"columns":["ports"]`, `"until":"=="`,
		`"rows":[{"ports":["uuid","` + internal + `"]}]`}, nil)
	wantWire(t, "remove", ops[1], []string{`["bridges","delete",["uuid","` + br + `"]]`}, nil)
}
