// Package ovsdb talks to ovsdb-server over the OVSDB protocol (RFC 7047): it
// creates and deletes the plugin's dpdkvhostuserclient ports and reads them
// back, without forking ovs-vsctl. Operations are libovsdb's protocol types
// (package github.com/ovn-org/libovsdb/ovsdb, standard library only); they
// travel over the small transport in ./jsonrpc, one short connection per
// plugin run, no schema fetch, no monitor, no cache.
//
// Concurrency: many plugin processes may add ports to one bridge at once.
// Bridge.ports is only ever changed with a "mutate" (insert/delete of one
// UUID), never read-modify-written, so concurrent transactions commute; the
// one conflict left, two processes creating the same missing bridge, surfaces
// as a unique-index violation and is retried.
package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb/jsonrpc"
)

// Marks the plugin writes into external_ids.
const (
	KeyOwner        = "vhostuser.kubevirt.io/owner"
	Owner           = "vhostuser-cni"
	KeyNamespace    = "vhostuser.kubevirt.io/pod-namespace"
	KeyPodName      = "vhostuser.kubevirt.io/pod-name"
	KeyPodUID       = "vhostuser.kubevirt.io/pod-uid"
	KeyContainerID  = "vhostuser.kubevirt.io/container-id"
	KeyIfName       = "vhostuser.kubevirt.io/ifname"
	KeyNetwork      = "vhostuser.kubevirt.io/network"
	KeyCreated      = "vhostuser.kubevirt.io/created-bridge"
	InterfaceType   = "dpdkvhostuserclient"
	OptionServerPth = "vhost-server-path"
)

// ErrBridgeMissing is returned by AddPort when the bridge does not exist and may not be created.
var ErrBridgeMissing = errors.New("bridge does not exist")

// ErrNotReady means OVS cannot run a vhost-user port on the bridge: DPDK not
// initialised, no dpdkvhostuserclient support, or a bridge that is not netdev.
var ErrNotReady = errors.New("OVS cannot run vhost-user ports")

// DatapathNetdev is the userspace datapath DPDK ports need.
const DatapathNetdev = "netdev"

// Client is one connection to ovsdb-server.
type Client struct {
	rpc *jsonrpc.Conn
}

// database is the one database the plugin uses.
const database = "Open_vSwitch"

// Connect dials endpoint ("unix:/path" or "tcp:host:port"). It sends
// nothing: the first transaction is the first round trip, and the server
// checks every operation against its schema.
func Connect(ctx context.Context, endpoint string, log *slog.Logger) (*Client, error) {
	conn, err := jsonrpc.Dial(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to OVSDB at %s: %w", endpoint, err)
	}
	log.Debug("connected to OVSDB", "endpoint", endpoint)
	return &Client{rpc: conn}, nil
}

// Close ends the connection.
func (c *Client) Close() { _ = c.rpc.Close() }

// PortSpec describes the port AddPort creates.
type PortSpec struct {
	Bridge       string
	CreateBridge bool
	Name         string // port and interface name
	// UUID, when set, is the Port row's UUID (PortUUID of the attachment);
	// empty lets ovsdb-server choose one.
	UUID        string
	ServerPath  string // vhost-server-path
	Options     map[string]string
	MTU         int
	VLAN        int
	Trunk       []int
	ExternalIDs map[string]string // ownership marks, on both Port and Interface
}

// AddResult tells what AddPort changed.
type AddResult struct {
	BridgeCreated bool
	PortUUID      string
	Replaced      string // UUID of a stale port of ours with the same name that was replaced
}

// AddPort creates Interface and Port and inserts the port into the bridge in
// one transaction. A stale port of the same name that we own (a sandbox
// re-created without DEL) is replaced in the same transaction; one we do not
// own is an error.
func (c *Client) AddPort(ctx context.Context, s PortSpec) (AddResult, error) {
	// Fast path, one round trip: the bridge exists and the name is free,
	// which is every ADD on a healthy node. Anything else fails the whole
	// transaction without effect and takes the careful path below.
	res, err := c.addPortFast(ctx, s)
	if err == nil {
		return res, nil
	}
	var te *txnError
	// "duplicate uuid": a port of this very attachment exists (a retried
	// ADD); the careful path replaces it.
	if !errors.As(err, &te) || (te.kind != "constraint violation" && te.kind != "timed out" && te.kind != "duplicate uuid") {
		return AddResult{}, fmt.Errorf("add port %s to bridge %s: %w", s.Name, s.Bridge, err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return AddResult{}, fmt.Errorf("add port %s: %w (last error: %v)", s.Name, ctx.Err(), lastErr)
			case <-time.After(time.Duration(attempt*20) * time.Millisecond):
			}
		}
		res, retry, err := c.addPortOnce(ctx, s)
		if err == nil {
			return res, nil
		}
		if !retry {
			return AddResult{}, err
		}
		lastErr = err
	}
	return AddResult{}, fmt.Errorf("add port %s: gave up after retries: %w", s.Name, lastErr)
}

func (c *Client) addPortFast(ctx context.Context, s PortSpec) (AddResult, error) {
	out, err := c.transact(ctx, AddPortOps(s))
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{PortUUID: out[1].UUID.GoUUID}, nil
}

// AddPortOps is the one transaction of AddPort's usual path: insert the
// Interface and the Port, wait until OVS can run vhost-user ports on the
// bridge, insert the port into the bridge's ports. Result 1 holds the new
// Port's UUID. Exported so that the benchmark can send the very same
// transaction with OVS's own client. The readiness checks are waits with
// timeout 0: a healthy ADD stays one round trip, and a failure ("timed out")
// takes the careful path, which reads once more to say what is wrong.
func AddPortOps(s PortSpec) []lovsdb.Operation {
	return append(portOps(s), readyWait(), netdevBridgeWait(s.Bridge), lovsdb.Operation{Op: lovsdb.OperationMutate, Table: tableBridge,
		Where:     []lovsdb.Condition{lovsdb.NewCondition("name", lovsdb.ConditionEqual, s.Bridge)},
		Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("ports", lovsdb.MutateOperationInsert, uuidSet("port"))}})
}

// readyWait fails the transaction unless ovs-vswitchd reports DPDK
// initialised and dpdkvhostuserclient among its interface types. (DPDK
// initialised can be left over from an earlier run: necessary, not
// sufficient; the Interface's error column tells the rest.)
func readyWait() lovsdb.Operation {
	zero := 0
	return lovsdb.Operation{Op: lovsdb.OperationWait, Table: tableOpenvSwitch, Timeout: &zero,
		Where: []lovsdb.Condition{
			lovsdb.NewCondition("iface_types", lovsdb.ConditionIncludes, lovsdb.OvsSet{GoSet: []interface{}{InterfaceType}}),
			lovsdb.NewCondition("dpdk_initialized", lovsdb.ConditionEqual, true),
		},
		Columns: []string{"dpdk_initialized"}, Until: string(lovsdb.WaitConditionEqual),
		Rows: []lovsdb.Row{{"dpdk_initialized": true}}}
}

// netdevBridgeWait fails the transaction unless the bridge exists with the
// netdev datapath.
func netdevBridgeWait(name string) lovsdb.Operation {
	zero := 0
	return lovsdb.Operation{Op: lovsdb.OperationWait, Table: tableBridge, Timeout: &zero,
		Where:   []lovsdb.Condition{lovsdb.NewCondition("name", lovsdb.ConditionEqual, name)},
		Columns: []string{"name", "datapath_type"}, Until: string(lovsdb.WaitConditionEqual),
		Rows: []lovsdb.Row{{"name": name, "datapath_type": DatapathNetdev}}}
}

// Readiness reads, in one round trip, whether OVS can run a vhost-user port
// on bridge, and says what to fix when it cannot (errors wrap ErrNotReady or
// ErrBridgeMissing). A missing bridge is an error only when bridgeRequired.
func (c *Client) Readiness(ctx context.Context, bridge string, bridgeRequired bool) error {
	res, err := c.transact(ctx, []lovsdb.Operation{
		{Op: lovsdb.OperationSelect, Table: tableOpenvSwitch, Where: allRows(), Columns: []string{"dpdk_initialized", "iface_types"}},
		{Op: lovsdb.OperationSelect, Table: tableBridge, Where: []lovsdb.Condition{lovsdb.NewCondition("name", lovsdb.ConditionEqual, bridge)},
			Columns: []string{"datapath_type"}},
	})
	if err != nil {
		return fmt.Errorf("read OVS readiness: %w", err)
	}
	return readiness(res[0].Rows, res[1].Rows, bridge, bridgeRequired)
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
	if dp := str(bridgeRows[0]["datapath_type"]); dp != DatapathNetdev {
		return fmt.Errorf("%w: bridge %q has datapath_type %q; vhost-user ports need %q: ovs-vsctl set Bridge %s datapath_type=netdev", ErrNotReady, bridge, dp, DatapathNetdev, bridge)
	}
	return nil
}

// portOps inserts the Interface ("iface") and the Port ("port"), in that order.
func portOps(s PortSpec) []lovsdb.Operation {
	ifRow := lovsdb.Row{
		"name":         s.Name,
		"type":         InterfaceType,
		"options":      ovsMap(withServerPath(s.Options, s.ServerPath)),
		"external_ids": ovsMap(s.ExternalIDs),
	}
	if s.MTU > 0 {
		ifRow["mtu_request"] = s.MTU
	}
	portRow := lovsdb.Row{
		"name":         s.Name,
		"interfaces":   uuidSet("iface"),
		"external_ids": ovsMap(s.ExternalIDs),
	}
	if s.VLAN > 0 {
		portRow["tag"] = s.VLAN
	}
	if len(s.Trunk) > 0 {
		t := make([]interface{}, len(s.Trunk))
		for i, v := range s.Trunk {
			t[i] = v
		}
		portRow["trunks"] = lovsdb.OvsSet{GoSet: t}
	}
	return []lovsdb.Operation{
		{Op: lovsdb.OperationInsert, Table: tableInterface, Row: ifRow, UUIDName: "iface"},
		{Op: lovsdb.OperationInsert, Table: tablePort, Row: portRow, UUIDName: "port", UUID: s.UUID},
	}
}

func (c *Client) addPortOnce(ctx context.Context, s PortSpec) (AddResult, bool, error) {
	var res AddResult
	if err := c.Readiness(ctx, s.Bridge, !s.CreateBridge); err != nil {
		return res, false, fmt.Errorf("add port %s: %w", s.Name, err)
	}
	br, err := c.Bridge(ctx, s.Bridge)
	if err != nil {
		return res, false, err
	}
	if br == nil && !s.CreateBridge {
		return res, false, fmt.Errorf("add port %s: bridge %q: %w (create it, or set \"createBridge\": true)", s.Name, s.Bridge, ErrBridgeMissing)
	}
	stale, err := c.PortByName(ctx, s.Name)
	if err != nil {
		return res, false, err
	}
	var ops []lovsdb.Operation
	if stale != nil {
		if stale.ExternalIDs[KeyOwner] != Owner {
			return res, false, fmt.Errorf("add port %s: a port of that name exists and is not owned by %s; remove it by hand", s.Name, Owner)
		}
		// Only the same attachment (pod UID and ifname: a re-created
		// sandbox) may take a port over; the name is a hash of both.
		for _, k := range []string{KeyPodUID, KeyIfName} {
			if stale.ExternalIDs[k] != s.ExternalIDs[k] {
				return res, false, fmt.Errorf("add port %s: a port of that name belongs to another attachment (%s %q, this one %q); refusing to replace it",
					s.Name, k, stale.ExternalIDs[k], s.ExternalIDs[k])
			}
		}
		ops = append(ops, detachPort(stale.UUID))
		res.Replaced = stale.UUID
		if stale.UUID == s.UUID {
			// ovsdb-server refuses a UUID deleted in the same transaction:
			// the replacement gets one of its own (DEL then finds it by its
			// external_ids, one round trip more).
			s.UUID = ""
		}
	}
	portOp := len(ops) + 1
	ops = append(ops, portOps(s)...)
	if br != nil {
		ops = append(ops,
			// Fails the transaction if the bridge vanished (or stopped being
			// netdev) since we read it.
			netdevBridgeWait(s.Bridge),
			lovsdb.Operation{Op: lovsdb.OperationMutate, Table: tableBridge,
				Where:     []lovsdb.Condition{lovsdb.NewCondition("name", lovsdb.ConditionEqual, s.Bridge)},
				Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("ports", lovsdb.MutateOperationInsert, uuidSet("port"))}},
		)
	} else {
		// A bridge like ovs-vsctl add-br makes it: with its internal port, netdev datapath.
		ops = append(ops,
			lovsdb.Operation{Op: lovsdb.OperationInsert, Table: tableInterface, UUIDName: "briface",
				Row: lovsdb.Row{"name": s.Bridge, "type": "internal"}},
			lovsdb.Operation{Op: lovsdb.OperationInsert, Table: tablePort, UUIDName: "brport",
				Row: lovsdb.Row{"name": s.Bridge, "interfaces": uuidSet("briface")}},
			lovsdb.Operation{Op: lovsdb.OperationInsert, Table: tableBridge, UUIDName: "bridge",
				Row: lovsdb.Row{"name": s.Bridge, "datapath_type": "netdev", "ports": uuidSet("port", "brport"),
					"external_ids": ovsMap(map[string]string{KeyOwner: Owner, KeyCreated: "true"})}},
			lovsdb.Operation{Op: lovsdb.OperationMutate, Table: tableOpenvSwitch, Where: allRows(),
				Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("bridges", lovsdb.MutateOperationInsert, uuidSet("bridge"))}},
		)
		res.BridgeCreated = true
	}
	out, err := c.transact(ctx, ops)
	if err != nil {
		var te *txnError
		if errors.As(err, &te) {
			switch te.kind {
			case "constraint violation": // a concurrent ADD created the same bridge or port name
				return res, true, fmt.Errorf("add port %s: %w", s.Name, err)
			case "timed out": // the bridge vanished between read and commit
				return res, false, fmt.Errorf("add port %s: bridge %q: %w", s.Name, s.Bridge, ErrBridgeMissing)
			}
		}
		return res, false, fmt.Errorf("add port %s to bridge %s: %w", s.Name, s.Bridge, err)
	}
	res.PortUUID = out[portOp].UUID.GoUUID
	return res, false, nil
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
	if br.ExternalIDs[KeyCreated] != "true" || br.ExternalIDs[KeyOwner] != Owner {
		return false, nil
	}
	internal, err := c.PortByName(ctx, name)
	if err != nil {
		return false, err
	}
	if internal == nil || len(br.Ports) != 1 || br.Ports[0] != internal.UUID {
		return false, nil
	}
	zero := 0
	ops := []lovsdb.Operation{
		{Op: lovsdb.OperationWait, Table: tableBridge, Timeout: &zero,
			Where:   []lovsdb.Condition{lovsdb.NewCondition("name", lovsdb.ConditionEqual, name)},
			Columns: []string{"ports"}, Until: string(lovsdb.WaitConditionEqual),
			Rows: []lovsdb.Row{{"ports": lovsdb.OvsSet{GoSet: []interface{}{lovsdb.UUID{GoUUID: internal.UUID}}}}}},
		{Op: lovsdb.OperationMutate, Table: tableOpenvSwitch, Where: allRows(),
			Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("bridges", lovsdb.MutateOperationDelete,
				lovsdb.OvsSet{GoSet: []interface{}{lovsdb.UUID{GoUUID: br.UUID}}})}},
	}
	if _, err := c.transact(ctx, ops); err != nil {
		var te *txnError
		if errors.As(err, &te) && te.kind == "timed out" {
			return false, nil // a port was added meanwhile
		}
		return false, fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return true, nil
}

// DeletePorts detaches the ports with the given UUIDs from whatever bridge
// holds them, in one transaction; OVSDB then garbage-collects Port and
// Interface rows. Ports already gone are not an error.
func (c *Client) DeletePorts(ctx context.Context, uuids ...string) error {
	if len(uuids) == 0 {
		return nil
	}
	if _, err := c.transact(ctx, DeletePortsOps(uuids...)); err != nil {
		return fmt.Errorf("delete ports %v: %w", uuids, err)
	}
	return nil
}

// DeletePortsOps is DeletePorts' transaction (exported for the benchmark).
func DeletePortsOps(uuids ...string) []lovsdb.Operation {
	ops := make([]lovsdb.Operation, 0, len(uuids))
	for _, u := range uuids {
		ops = append(ops, detachPort(u))
	}
	return ops
}

func detachPort(portUUID string) lovsdb.Operation {
	set := lovsdb.OvsSet{GoSet: []interface{}{lovsdb.UUID{GoUUID: portUUID}}}
	return lovsdb.Operation{Op: lovsdb.OperationMutate, Table: tableBridge,
		Where:     []lovsdb.Condition{lovsdb.NewCondition("ports", lovsdb.ConditionIncludes, set)},
		Mutations: []lovsdb.Mutation{*lovsdb.NewMutation("ports", lovsdb.MutateOperationDelete, set)}}
}

// Bridge returns the bridge named name, or nil when there is none.
func (c *Client) Bridge(ctx context.Context, name string) (*Bridge, error) {
	rows, err := c.selectRows(ctx, tableBridge, lovsdb.NewCondition("name", lovsdb.ConditionEqual, name))
	if err != nil {
		return nil, fmt.Errorf("read bridge %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r := rows[0]
	return &Bridge{UUID: uuidOf(r["_uuid"]), Name: str(r["name"]), Ports: uuids(r["ports"]),
		DatapathType: str(r["datapath_type"]), ExternalIDs: strMap(r["external_ids"])}, nil
}

// BridgeOfPort returns the name of the bridge that holds the port, or "".
func (c *Client) BridgeOfPort(ctx context.Context, portUUID string) (string, error) {
	set := lovsdb.OvsSet{GoSet: []interface{}{lovsdb.UUID{GoUUID: portUUID}}}
	rows, err := c.selectRows(ctx, tableBridge, lovsdb.NewCondition("ports", lovsdb.ConditionIncludes, set))
	if err != nil {
		return "", fmt.Errorf("find bridge of port %s: %w", portUUID, err)
	}
	if len(rows) == 0 {
		return "", nil
	}
	return str(rows[0]["name"]), nil
}

// PortByName returns the port named name, or nil.
func (c *Client) PortByName(ctx context.Context, name string) (*Port, error) {
	ports, err := c.ports(ctx, lovsdb.NewCondition("name", lovsdb.ConditionEqual, name))
	if err != nil || len(ports) == 0 {
		return nil, err
	}
	return &ports[0], nil
}

// DetachAttachment is DEL's usual single round trip: it reads the ports
// whose external_ids include all of ids and the port named name (if name is
// not empty), as they were before the transaction, and in the same
// transaction detaches the port whose UUID is portUUID (PortUUID of the
// attachment) from whatever bridge holds it. OVSDB then garbage-collects its
// Port and Interface rows. The caller deletes what else the read found and
// is its own (ports from before UUIDs were derived, a replaced port).
func (c *Client) DetachAttachment(ctx context.Context, ids map[string]string, name, portUUID string) ([]Port, error) {
	ops := DetachAttachmentOps(ids, name, portUUID)
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

// DetachAttachmentOps is DetachAttachment's transaction (exported for the
// benchmark): the reads, then the detach.
func DetachAttachmentOps(ids map[string]string, name, portUUID string) []lovsdb.Operation {
	cols := []string{"_uuid", "name", "external_ids"}
	ops := []lovsdb.Operation{{Op: lovsdb.OperationSelect, Table: tablePort, Columns: cols,
		Where: []lovsdb.Condition{lovsdb.NewCondition("external_ids", lovsdb.ConditionIncludes, ovsMap(ids))}}}
	if name != "" {
		ops = append(ops, lovsdb.Operation{Op: lovsdb.OperationSelect, Table: tablePort, Columns: cols,
			Where: []lovsdb.Condition{lovsdb.NewCondition("name", lovsdb.ConditionEqual, name)}})
	}
	return append(ops, detachPort(portUUID))
}

// PortsByExternalIDs returns every port whose external_ids include all of ids.
func (c *Client) PortsByExternalIDs(ctx context.Context, ids map[string]string) ([]Port, error) {
	return c.ports(ctx, lovsdb.NewCondition("external_ids", lovsdb.ConditionIncludes, ovsMap(ids)))
}

func (c *Client) ports(ctx context.Context, cond lovsdb.Condition) ([]Port, error) {
	rows, err := c.selectRows(ctx, tablePort, cond)
	if err != nil {
		return nil, fmt.Errorf("read ports: %w", err)
	}
	return portsFromRows(rows), nil
}

func portsFromRows(rows []lovsdb.Row) []Port {
	out := make([]Port, 0, len(rows))
	for _, r := range rows {
		p := Port{UUID: uuidOf(r["_uuid"]), Name: str(r["name"]), Interfaces: uuids(r["interfaces"]),
			ExternalIDs: strMap(r["external_ids"])}
		if t, ok := optInt(r["tag"]); ok {
			p.Tag = &t
		}
		for _, v := range setOf(r["trunks"]) {
			if f, ok := v.(float64); ok {
				p.Trunks = append(p.Trunks, int(f))
			}
		}
		out = append(out, p)
	}
	return out
}

// InterfaceByName returns the interface named name, or nil.
func (c *Client) InterfaceByName(ctx context.Context, name string) (*Interface, error) {
	rows, err := c.selectRows(ctx, tableInterface, lovsdb.NewCondition("name", lovsdb.ConditionEqual, name))
	if err != nil {
		return nil, fmt.Errorf("read interface %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r := rows[0]
	i := &Interface{UUID: uuidOf(r["_uuid"]), Name: str(r["name"]), Type: str(r["type"]),
		Options: strMap(r["options"]), ExternalIDs: strMap(r["external_ids"])}
	if v, ok := optInt(r["mtu_request"]); ok {
		i.MTURequest = &v
	}
	if v, ok := optInt(r["ofport"]); ok {
		i.Ofport = &v
	}
	if s := setOf(r["error"]); len(s) == 1 {
		e, _ := s[0].(string)
		i.Error = &e
	}
	return i, nil
}

// Ping sends an RFC 7047 echo: it proves the server answers.
func (c *Client) Ping(ctx context.Context) error {
	const token = "vhostuser"
	var res []string
	if err := c.rpc.Call(ctx, "echo", []any{token}, &res); err != nil {
		return fmt.Errorf("OVSDB echo: %w", err)
	}
	if len(res) != 1 || res[0] != token {
		return fmt.Errorf("OVSDB echo: reply %q, want [%q]", res, token)
	}
	return nil
}

func (c *Client) selectRows(ctx context.Context, table string, cond lovsdb.Condition) ([]lovsdb.Row, error) {
	res, err := c.transact(ctx, []lovsdb.Operation{{Op: lovsdb.OperationSelect, Table: table, Where: []lovsdb.Condition{cond}}})
	if err != nil {
		return nil, err
	}
	return res[0].Rows, nil
}

type txnError struct {
	kind, details string
}

func (e *txnError) Error() string {
	if e.details == "" {
		return "ovsdb transaction: " + e.kind
	}
	return "ovsdb transaction: " + e.kind + ": " + e.details
}

func (c *Client) transact(ctx context.Context, ops []lovsdb.Operation) ([]lovsdb.OperationResult, error) {
	params := make([]any, 0, len(ops)+1)
	params = append(params, database)
	for _, op := range ops {
		params = append(params, op)
	}
	var res []lovsdb.OperationResult
	if err := c.rpc.Call(ctx, "transact", params, &res); err != nil {
		return nil, err
	}
	if len(res) < len(ops) {
		return nil, fmt.Errorf("ovsdb transaction: %d operations, %d results", len(ops), len(res))
	}
	for _, r := range res {
		if r.Error != "" {
			return nil, &txnError{kind: r.Error, details: r.Details}
		}
	}
	return res, nil
}

func withServerPath(opts map[string]string, path string) map[string]string {
	m := make(map[string]string, len(opts)+1)
	for k, v := range opts {
		m[k] = v
	}
	m[OptionServerPth] = path
	return m
}

func ovsMap(m map[string]string) lovsdb.OvsMap {
	g := make(map[interface{}]interface{}, len(m))
	for k, v := range m {
		g[k] = v
	}
	return lovsdb.OvsMap{GoMap: g}
}

func uuidSet(names ...string) lovsdb.OvsSet {
	s := make([]interface{}, len(names))
	for i, n := range names {
		s[i] = lovsdb.UUID{GoUUID: n}
	}
	return lovsdb.OvsSet{GoSet: s}
}

// setOf normalises an OVSDB value that may be a set or a single atom.
func setOf(v interface{}) []interface{} {
	switch t := v.(type) {
	case nil:
		return nil
	case lovsdb.OvsSet:
		return t.GoSet
	default:
		return []interface{}{t}
	}
}

func uuids(v interface{}) []string {
	var out []string
	for _, e := range setOf(v) {
		if u := uuidOf(e); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func uuidOf(v interface{}) string {
	if u, ok := v.(lovsdb.UUID); ok {
		return u.GoUUID
	}
	return ""
}

func str(v interface{}) string {
	s, _ := v.(string)
	return s
}

func optInt(v interface{}) (int, bool) {
	s := setOf(v)
	if len(s) != 1 {
		return 0, false
	}
	f, ok := s[0].(float64)
	return int(f), ok
}

func strMap(v interface{}) map[string]string {
	m, ok := v.(lovsdb.OvsMap)
	if !ok {
		return map[string]string{}
	}
	out := make(map[string]string, len(m.GoMap))
	for k, val := range m.GoMap {
		ks, _ := k.(string)
		vs, _ := val.(string)
		out[ks] = vs
	}
	return out
}

// IsUnreachable tells whether err means ovsdb-server could not be reached.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, jsonrpc.ErrClosed) || strings.Contains(err.Error(), "connect to OVSDB")
}

// allRows is a condition true for every row: RFC 7047 requires "where" on
// mutate, and an empty list would be dropped from the JSON.
func allRows() []lovsdb.Condition {
	return []lovsdb.Condition{lovsdb.NewCondition("_uuid", lovsdb.ConditionNotEqual,
		lovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"})}
}
