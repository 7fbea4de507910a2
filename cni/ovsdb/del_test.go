package ovsdb

import (
	"reflect"
	"testing"
)

func TestDetachAttachmentOperations(t *testing.T) {
	ids := map[string]string{KeyOwner: Owner}
	derived := PortUUID("c0", "net1")
	for _, tt := range []struct {
		name, portName string
		want           []string
	}{
		{"by marks and name", "vhu0", []string{"select Port", "select Port", "mutate Bridge"}},
		{"by marks only", "", []string{"select Port", "mutate Bridge"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ops := detachAttachmentOperations(ids, tt.portName, derived)
			if got := tables(ops); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("operations %v, want %v", got, tt.want)
			}
			cols := []string{`"columns":["_uuid","name","external_ids"]`}
			wantWire(t, "by marks", ops[0], append(cols, `["external_ids","includes",["map",[["vhostuser.kubevirt.io/owner","vhostuser-cni"]]]]`), nil)
			if tt.portName != "" {
				wantWire(t, "by name", ops[1], append(cols, `["name","==","vhu0"]`), nil)
			}
			if !reflect.DeepEqual(ops[len(ops)-1], detachPortOperation(derived)) {
				t.Fatalf("last operation %+v, want the detach of %s", ops[len(ops)-1], derived)
			}
		})
	}
}

func TestDeletePortsOperations(t *testing.T) {
	for _, tt := range []struct {
		name  string
		uuids []string
	}{
		{"none", nil},
		{"one", []string{"2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"}},
		{"two", []string{"2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", "3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"}},
	} {
		ops := deletePortsOperations(tt.uuids...)
		if len(ops) != len(tt.uuids) {
			t.Fatalf("%s: %d operations for %d ports", tt.name, len(ops), len(tt.uuids))
		}
		for i, u := range tt.uuids {
			if !reflect.DeepEqual(ops[i], detachPortOperation(u)) {
				t.Errorf("%s: operation %d is not the detach of %s: %+v", tt.name, i, u, ops[i])
			}
		}
	}
}

func TestDetachPortOperation(t *testing.T) {
	const u = "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"
	// Whatever bridge holds the port: the condition and the mutation name the same UUID.
	wantWire(t, "detach", detachPortOperation(u), []string{`"op":"mutate"`, `"table":"Bridge"`,
		`["ports","includes",["uuid","` + u + `"]]`, `["ports","delete",["uuid","` + u + `"]]`}, nil)
}
