package ovsdb

import lovsdb "github.com/ovn-org/libovsdb/ovsdb"

// The uuid-names that tie the rows of one ADD transaction together.
const (
	namedInterface = "iface"
	namedPort      = "port"
)

// addPortResult is the index, in addPortOperations, of the result that
// holds the new Port's UUID.
const addPortResult = 1

// addPortOperations is the fast path's one transaction: create the
// Interface and the Port, wait until OVS can run vhost-user ports on the
// bridge, attach the port to it.
func addPortOperations(s PortSpec) []lovsdb.Operation {
	return append(createPortOperations(s),
		ovsReadyWaitOperation(), netdevBridgeWaitOperation(s.Bridge), attachPortOperation(s.Bridge))
}

// carefulAddPortOperations is the careful path's transaction, built from
// what it read: detach the stale port replace (unless ""), create the port,
// and attach it to the bridge, or create the bridge with it. It returns the
// index of the result that holds the new Port's UUID.
func carefulAddPortOperations(s PortSpec, replace string, bridgeExists bool) ([]lovsdb.Operation, int) {
	var ops []lovsdb.Operation
	if replace != "" {
		ops = append(ops, detachPortOperation(replace))
		if replace == s.UUID {
			// ovsdb-server refuses a UUID deleted in the same transaction:
			// the replacement gets one of its own (DEL then finds it by its
			// external_ids, one round trip more).
			s.UUID = ""
		}
	}
	portOp := len(ops) + 1
	ops = append(ops, createPortOperations(s)...)
	if bridgeExists {
		// The wait fails the transaction if the bridge vanished (or stopped
		// being netdev) since it was read.
		return append(ops, netdevBridgeWaitOperation(s.Bridge), attachPortOperation(s.Bridge)), portOp
	}
	return append(ops, createBridgeOperations(s.Bridge)...), portOp
}

// createPortOperations inserts the Interface and the Port, in that order.
func createPortOperations(s PortSpec) []lovsdb.Operation {
	return []lovsdb.Operation{createInterfaceOperation(s), createPortOperation(s)}
}

// createInterfaceOperation inserts the dpdkvhostuserclient Interface.
func createInterfaceOperation(s PortSpec) lovsdb.Operation {
	row := lovsdb.Row{
		"name":         s.Name,
		"type":         InterfaceType,
		"options":      ovsMap(withServerPath(s.Options, s.ServerPath)),
		"external_ids": ovsMap(s.ExternalIDs),
	}
	if s.MTU > 0 {
		row["mtu_request"] = s.MTU
	}
	return lovsdb.Operation{Op: lovsdb.OperationInsert, Table: tableInterface, Row: row, UUIDName: namedInterface}
}

// createPortOperation inserts the Port holding the Interface, under s.UUID
// when set.
func createPortOperation(s PortSpec) lovsdb.Operation {
	row := lovsdb.Row{
		"name":         s.Name,
		"interfaces":   uuidSet(namedInterface),
		"external_ids": ovsMap(s.ExternalIDs),
	}
	if s.VLAN > 0 {
		row["tag"] = s.VLAN
	}
	if len(s.Trunk) > 0 {
		t := make([]interface{}, len(s.Trunk))
		for i, v := range s.Trunk {
			t[i] = v
		}
		row["trunks"] = lovsdb.OvsSet{GoSet: t}
	}
	return lovsdb.Operation{Op: lovsdb.OperationInsert, Table: tablePort, Row: row, UUIDName: namedPort, UUID: s.UUID}
}

// attachPortOperation inserts the new Port into the bridge's ports: a
// mutate, so that concurrent ADDs to one bridge commute.
func attachPortOperation(bridge string) lovsdb.Operation {
	return lovsdb.Operation{Op: lovsdb.OperationMutate, Table: tableBridge,
		Where:     []lovsdb.Condition{nameIs(bridge)},
		Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("ports", lovsdb.MutateOperationInsert, uuidSet(namedPort))}}
}

// withServerPath is opts with vhost-server-path set, opts left as it is.
func withServerPath(opts map[string]string, path string) map[string]string {
	m := make(map[string]string, len(opts)+1)
	for k, v := range opts {
		m[k] = v
	}
	m[OptionServerPth] = path
	return m
}
