package ovsdb

import (
	"context"
	"fmt"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// Readiness reads, in one round trip, whether OVS can run a vhost-user port
// on bridge, and says what to fix when it cannot (errors wrap ErrNotReady or
// ErrBridgeMissing). A missing bridge is an error only when bridgeRequired.
func (c *Client) Readiness(ctx context.Context, bridge string, bridgeRequired bool) error {
	res, err := c.transact(ctx, readinessOperations(bridge))
	if err != nil {
		return fmt.Errorf("read OVS readiness: %w", err)
	}
	return readiness(res[0].Rows, res[1].Rows, bridge, bridgeRequired)
}

// readinessOperations reads what readiness judges: the root row's DPDK state
// and interface types, then the bridge's datapath.
func readinessOperations(bridge string) []lovsdb.Operation {
	return []lovsdb.Operation{
		{Op: lovsdb.OperationSelect, Table: tableOpenvSwitch, Where: allRows(), Columns: []string{"dpdk_initialized", "iface_types"}},
		{Op: lovsdb.OperationSelect, Table: tableBridge, Where: []lovsdb.Condition{nameIs(bridge)}, Columns: []string{"datapath_type"}},
	}
}

// readiness is Readiness's judgement on the rows read, apart for unit tests.
func readiness(ovsRows, bridgeRows []lovsdb.Row, bridge string, bridgeRequired bool) error {
	if len(ovsRows) == 0 {
		return fmt.Errorf("%w: the Open_vSwitch table is empty (run ovs-vsctl init, or start OVS with its service script)", ErrNotReady)
	}
	if v, _ := ovsRows[0]["dpdk_initialized"].(bool); !v {
		return fmt.Errorf("%w: DPDK is not initialised in ovs-vswitchd (Open_vSwitch dpdk_initialized is false): set other_config:dpdk-init=true, give it hugepages, and check the ovs-vswitchd log", ErrNotReady)
	}
	found := false
	for _, t := range setOf(ovsRows[0]["iface_types"]) {
		if t == InterfaceType {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w: ovs-vswitchd does not list %s in iface_types: run the DPDK build of ovs-vswitchd (Debian: openvswitch-switch-dpdk and update-alternatives for ovs-vswitchd)", ErrNotReady, InterfaceType)
	}
	if len(bridgeRows) == 0 {
		if bridgeRequired {
			return fmt.Errorf("bridge %q: %w (create it with datapath_type=netdev, or set \"createBridge\": true)", bridge, ErrBridgeMissing)
		}
		return nil
	}
	if dp := str(bridgeRows[0]["datapath_type"]); dp != datapathNetdev {
		return fmt.Errorf("%w: bridge %q has datapath_type %q; vhost-user ports need %q: ovs-vsctl set Bridge %s datapath_type=netdev", ErrNotReady, bridge, dp, datapathNetdev, bridge)
	}
	return nil
}

// The waits below are readiness checks inside a transaction: timeout 0, so a
// ready node's ADD stays one round trip, and a failure ("timed out") takes
// the careful path, which reads once more to say what is wrong.

// ovsReadyWaitOperation fails the transaction unless ovs-vswitchd reports
// DPDK initialised and dpdkvhostuserclient among its interface types. (DPDK
// initialised can be left over from an earlier run: necessary, not
// sufficient; the Interface's error column tells the rest.)
func ovsReadyWaitOperation() lovsdb.Operation {
	zero := 0
	return lovsdb.Operation{Op: lovsdb.OperationWait, Table: tableOpenvSwitch, Timeout: &zero,
		Where: []lovsdb.Condition{
			lovsdb.NewCondition("iface_types", lovsdb.ConditionIncludes, lovsdb.OvsSet{GoSet: []interface{}{InterfaceType}}),
			lovsdb.NewCondition("dpdk_initialized", lovsdb.ConditionEqual, true),
		},
		Columns: []string{"dpdk_initialized"}, Until: string(lovsdb.WaitConditionEqual),
		Rows: []lovsdb.Row{{"dpdk_initialized": true}}}
}

// netdevBridgeWaitOperation fails the transaction unless the bridge exists
// with the netdev datapath.
func netdevBridgeWaitOperation(bridge string) lovsdb.Operation {
	zero := 0
	return lovsdb.Operation{Op: lovsdb.OperationWait, Table: tableBridge, Timeout: &zero,
		Where:   []lovsdb.Condition{nameIs(bridge)},
		Columns: []string{"name", "datapath_type"}, Until: string(lovsdb.WaitConditionEqual),
		Rows: []lovsdb.Row{{"name": bridge, "datapath_type": datapathNetdev}}}
}
