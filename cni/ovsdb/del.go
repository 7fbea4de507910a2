package ovsdb

import (
	"context"
	"fmt"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// DeletePorts detaches the ports with the given UUIDs from whatever bridge
// holds them, in one transaction; OVSDB then garbage-collects Port and
// Interface rows. Ports already gone are not an error.
func (c *Client) DeletePorts(ctx context.Context, uuids ...string) error {
	if len(uuids) == 0 {
		return nil
	}
	if _, err := c.transact(ctx, deletePortsOperations(uuids...)); err != nil {
		return fmt.Errorf("delete ports %v: %w", uuids, err)
	}
	return nil
}

// DetachAttachment is DEL's usual single round trip: it reads the ports
// whose external_ids include all of ids and the port named name (if name is
// not empty), as they were before the transaction, and in the same
// transaction detaches the port whose UUID is portUUID (PortUUID of the
// attachment) from whatever bridge holds it. OVSDB then garbage-collects its
// Port and Interface rows. The caller deletes what else the read found and
// is its own (ports from before UUIDs were derived, a replaced port).
func (c *Client) DetachAttachment(ctx context.Context, ids map[string]string, name, portUUID string) ([]Port, error) {
	ops := detachAttachmentOperations(ids, name, portUUID)
	res, err := c.transact(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("detach port %s: %w", portUUID, err)
	}
	var out []Port
	for _, r := range res[:len(ops)-1] {
		out = append(out, portsFromRows(r.Rows)...)
	}
	return out, nil
}

// detachAttachmentOperations is DetachAttachment's transaction: the reads,
// then the detach.
func detachAttachmentOperations(ids map[string]string, name, portUUID string) []lovsdb.Operation {
	ops := []lovsdb.Operation{selectPortsOperation(lovsdb.NewCondition("external_ids", lovsdb.ConditionIncludes, ovsMap(ids)))}
	if name != "" {
		ops = append(ops, selectPortsOperation(nameIs(name)))
	}
	return append(ops, detachPortOperation(portUUID))
}

// selectPortsOperation reads what DEL decides on of the ports where cond
// holds: UUID, name and marks.
func selectPortsOperation(cond lovsdb.Condition) lovsdb.Operation {
	return lovsdb.Operation{Op: lovsdb.OperationSelect, Table: tablePort, Columns: []string{"_uuid", "name", "external_ids"},
		Where: []lovsdb.Condition{cond}}
}

// deletePortsOperations detaches each of the ports.
func deletePortsOperations(uuids ...string) []lovsdb.Operation {
	ops := make([]lovsdb.Operation, 0, len(uuids))
	for _, u := range uuids {
		ops = append(ops, detachPortOperation(u))
	}
	return ops
}

// detachPortOperation removes the port from the ports of whatever bridge
// holds it (none: a no-op).
func detachPortOperation(portUUID string) lovsdb.Operation {
	set := uuidSet(portUUID)
	return lovsdb.Operation{Op: lovsdb.OperationMutate, Table: tableBridge,
		Where:     []lovsdb.Condition{lovsdb.NewCondition("ports", lovsdb.ConditionIncludes, set)},
		Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("ports", lovsdb.MutateOperationDelete, set)}}
}
