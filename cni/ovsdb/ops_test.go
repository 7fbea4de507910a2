package ovsdb

import (
	"encoding/json"
	"strings"
	"testing"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// wire is the JSON form an operation (or list of them) travels in.
func wire(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantWire checks that the wire form of v has every fragment of want and
// none of absent.
func wantWire(t *testing.T, name string, v any, want, absent []string) {
	t.Helper()
	w := wire(t, v)
	for _, f := range want {
		if !strings.Contains(w, f) {
			t.Errorf("%s: wire form lacks %s:\n%s", name, f, w)
		}
	}
	for _, f := range absent {
		if strings.Contains(w, f) {
			t.Errorf("%s: wire form has %s:\n%s", name, f, w)
		}
	}
}

// tables lists the table of each operation, to compare transactions' shapes.
func tables(ops []lovsdb.Operation) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = op.Op + " " + op.Table
	}
	return out
}

func TestOperationsHaveWhere(t *testing.T) {
	// RFC 7047 requires "where" on mutate and wait; an empty slice would vanish from the JSON.
	for name, op := range map[string]lovsdb.Operation{
		"detach": detachPortOperation("2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"),
		"wait":   netdevBridgeWaitOperation("br0"),
		"ready":  ovsReadyWaitOperation(),
		"all":    {Op: lovsdb.OperationMutate, Table: tableOpenvSwitch, Where: allRows()},
	} {
		b, _ := json.Marshal(op)
		if !strings.Contains(string(b), `"where":[`) {
			t.Errorf("%s: no where clause: %s", name, b)
		}
	}
	// And every mutate and wait of every transaction the package sends.
	s := PortSpec{Bridge: "br0", Name: "vhu0", ServerPath: "/p", UUID: PortUUID("c0", "net1")}
	careful, _ := carefulAddPortOperations(s, "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", false)
	for name, ops := range map[string][]lovsdb.Operation{
		"add":           addPortOperations(s),
		"careful add":   careful,
		"delete bridge": deleteUnusedBridgeOperations("br0", "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", "3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"),
		"detach":        detachAttachmentOperations(map[string]string{KeyOwner: Owner}, "vhu0", s.UUID),
		"readiness":     readinessOperations("br0"),
	} {
		for i, op := range ops {
			if op.Op != lovsdb.OperationMutate && op.Op != lovsdb.OperationWait && op.Op != lovsdb.OperationSelect {
				continue
			}
			if b := wire(t, op); !strings.Contains(b, `"where":[`) {
				t.Errorf("%s, operation %d: no where clause: %s", name, i, b)
			}
		}
	}
}
