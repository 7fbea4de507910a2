package ovsdb

import (
	"context"
	"fmt"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// The uuid-names of the rows of a bridge ADD creates.
const (
	namedBridge          = "bridge"
	namedBridgeInterface = "briface"
	namedBridgePort      = "brport"
)

// createBridgeOperations makes the bridge as ovs-vsctl add-br does, with its
// internal port and the netdev datapath, holding the port created earlier in
// the same transaction, and adds it to the root row's bridges.
func createBridgeOperations(bridge string) []lovsdb.Operation {
	return []lovsdb.Operation{
		{Op: lovsdb.OperationInsert, Table: tableInterface, UUIDName: namedBridgeInterface,
			Row: lovsdb.Row{"name": bridge, "type": "internal"}},
		{Op: lovsdb.OperationInsert, Table: tablePort, UUIDName: namedBridgePort,
			Row: lovsdb.Row{"name": bridge, "interfaces": uuidSet(namedBridgeInterface)}},
		{Op: lovsdb.OperationInsert, Table: tableBridge, UUIDName: namedBridge,
			Row: lovsdb.Row{"name": bridge, "datapath_type": datapathNetdev, "ports": uuidSet(namedPort, namedBridgePort),
				"external_ids": ovsMap(createdBridgeMarks())}},
		{Op: lovsdb.OperationMutate, Table: tableOpenvSwitch, Where: allRows(),
			Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("bridges", lovsdb.MutateOperationInsert, uuidSet(namedBridge))}},
	}
}

// DeleteBridgeIfUnused removes a bridge this plugin created when it holds no
// port but its own internal one. It is a no-op for any other bridge, and the
// check and the removal are one transaction, so a concurrent ADD that just
// added a port keeps the bridge.
func (c *Client) DeleteBridgeIfUnused(ctx context.Context, name string) (bool, error) {
	br, err := c.Bridge(ctx, name)
	if err != nil || br == nil {
		return false, err
	}
	if !isCreatedBridge(br.ExternalIDs) {
		return false, nil
	}
	internal, err := c.PortByName(ctx, name)
	if err != nil {
		return false, err
	}
	if internal == nil || len(br.Ports) != 1 || br.Ports[0] != internal.UUID {
		return false, nil
	}
	if _, err := c.transact(ctx, deleteUnusedBridgeOperations(name, br.UUID, internal.UUID)); err != nil {
		if refusal(err) == kindTimedOut {
			return false, nil // a port was added meanwhile
		}
		return false, fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return true, nil
}

// deleteUnusedBridgeOperations removes the bridge from the root row's
// bridges (OVSDB then garbage-collects it and its ports) while its ports are
// still its internal port alone.
func deleteUnusedBridgeOperations(name, bridgeUUID, internalPortUUID string) []lovsdb.Operation {
	zero := 0
	return []lovsdb.Operation{
		{Op: lovsdb.OperationWait, Table: tableBridge, Timeout: &zero,
			Where:   []lovsdb.Condition{nameIs(name)},
			Columns: []string{"ports"}, Until: string(lovsdb.WaitConditionEqual),
			Rows: []lovsdb.Row{{"ports": uuidSet(internalPortUUID)}}},
		{Op: lovsdb.OperationMutate, Table: tableOpenvSwitch, Where: allRows(),
			Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("bridges", lovsdb.MutateOperationDelete, uuidSet(bridgeUUID))}},
	}
}
