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

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb/jsonrpc"
)

// Client is one connection to ovsdb-server.
type Client struct {
	rpc *jsonrpc.Conn
}

// Connect dials endpoint ("unix:/path" or "tcp:host:port"). It sends
// nothing: the first transaction is the first round trip, and the server
// checks every operation against its schema. Its errors wrap ErrUnreachable.
func Connect(ctx context.Context, endpoint string, log *slog.Logger) (*Client, error) {
	conn, err := jsonrpc.Dial(ctx, endpoint)
	if err != nil {
		return nil, &unreachableError{fmt.Errorf("connect to OVSDB at %s: %w", endpoint, err)}
	}
	log.Debug("connected to OVSDB", "endpoint", endpoint)
	return &Client{rpc: conn}, nil
}

// Close ends the connection.
func (c *Client) Close() { _ = c.rpc.Close() }

// call is one JSON-RPC call; a connection that broke makes it fail with
// ErrUnreachable.
func (c *Client) call(ctx context.Context, method string, params []any, result any) error {
	err := c.rpc.Call(ctx, method, params, result)
	if errors.Is(err, jsonrpc.ErrClosed) {
		return &unreachableError{err}
	}
	return err
}

// transact sends ops as one transaction. An operation the server refused
// fails it with a *txnError.
func (c *Client) transact(ctx context.Context, ops []lovsdb.Operation) ([]lovsdb.OperationResult, error) {
	params := make([]any, 0, len(ops)+1)
	params = append(params, database)
	for _, op := range ops {
		params = append(params, op)
	}
	var res []lovsdb.OperationResult
	if err := c.call(ctx, "transact", params, &res); err != nil {
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
