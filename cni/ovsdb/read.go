package ovsdb

import (
	"context"
	"fmt"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// Bridge returns the bridge named name, or nil when there is none.
func (c *Client) Bridge(ctx context.Context, name string) (*Bridge, error) {
	rows, err := c.selectRows(ctx, tableBridge, nameIs(name))
	if err != nil {
		return nil, fmt.Errorf("read bridge %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return bridgeFromRow(rows[0]), nil
}

// BridgeOfPort returns the name of the bridge that holds the port, or "".
func (c *Client) BridgeOfPort(ctx context.Context, portUUID string) (string, error) {
	rows, err := c.selectRows(ctx, tableBridge, lovsdb.NewCondition("ports", lovsdb.ConditionIncludes, uuidSet(portUUID)))
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
	ports, err := c.ports(ctx, nameIs(name))
	if err != nil || len(ports) == 0 {
		return nil, err
	}
	return &ports[0], nil
}

// PortsByExternalIDs returns every port whose external_ids include all of ids.
func (c *Client) PortsByExternalIDs(ctx context.Context, ids map[string]string) ([]Port, error) {
	return c.ports(ctx, lovsdb.NewCondition("external_ids", lovsdb.ConditionIncludes, ovsMap(ids)))
}

// InterfaceByName returns the interface named name, or nil.
func (c *Client) InterfaceByName(ctx context.Context, name string) (*Interface, error) {
	rows, err := c.selectRows(ctx, tableInterface, nameIs(name))
	if err != nil {
		return nil, fmt.Errorf("read interface %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return interfaceFromRow(rows[0]), nil
}

func (c *Client) ports(ctx context.Context, cond lovsdb.Condition) ([]Port, error) {
	rows, err := c.selectRows(ctx, tablePort, cond)
	if err != nil {
		return nil, fmt.Errorf("read ports: %w", err)
	}
	return portsFromRows(rows), nil
}

// selectRows reads every column of the rows of table where cond holds.
func (c *Client) selectRows(ctx context.Context, table string, cond lovsdb.Condition) ([]lovsdb.Row, error) {
	res, err := c.transact(ctx, []lovsdb.Operation{{Op: lovsdb.OperationSelect, Table: table, Where: []lovsdb.Condition{cond}}})
	if err != nil {
		return nil, err
	}
	return res[0].Rows, nil
}

func bridgeFromRow(r lovsdb.Row) *Bridge {
	return &Bridge{UUID: uuidOf(r["_uuid"]), Name: str(r["name"]), Ports: uuids(r["ports"]),
		DatapathType: str(r["datapath_type"]), ExternalIDs: strMap(r["external_ids"])}
}

func portsFromRows(rows []lovsdb.Row) []Port {
	out := make([]Port, 0, len(rows))
	for _, r := range rows {
		p := Port{UUID: uuidOf(r["_uuid"]), Name: str(r["name"]), Interfaces: uuids(r["interfaces"]),
			Trunks: ints(r["trunks"]), ExternalIDs: strMap(r["external_ids"])}
		if t, ok := optInt(r["tag"]); ok {
			p.Tag = &t
		}
		out = append(out, p)
	}
	return out
}

func interfaceFromRow(r lovsdb.Row) *Interface {
	i := &Interface{UUID: uuidOf(r["_uuid"]), Name: str(r["name"]), Type: str(r["type"]),
		Options: strMap(r["options"]), ExternalIDs: strMap(r["external_ids"])}
	if v, ok := optInt(r["mtu_request"]); ok {
		i.MTURequest = &v
	}
	if s := setOf(r["error"]); len(s) == 1 {
		e, _ := s[0].(string)
		i.Error = &e
	}
	return i
}
