package ovsdb

import (
	"context"
	"fmt"
	"time"
)

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
	switch refusal(err) {
	// "duplicate uuid": a port of this very attachment exists (a retried
	// ADD); the careful path replaces it.
	case kindConstraintViolation, kindTimedOut, kindDuplicateUUID:
	default:
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
		res, retry, err := c.addPortCareful(ctx, s)
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
	out, err := c.transact(ctx, addPortOperations(s))
	if err != nil {
		return AddResult{}, err
	}
	return AddResult{PortUUID: out[addPortResult].UUID.GoUUID}, nil
}

// addPortCareful reads what the fast path assumed (readiness, the bridge, a
// port of the same name) and sends the transaction that fits. It tells
// whether a failure is worth retrying: a concurrent ADD won a race.
func (c *Client) addPortCareful(ctx context.Context, s PortSpec) (AddResult, bool, error) {
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
	if stale != nil {
		if err := checkReplace(s.Name, stale.ExternalIDs, s.ExternalIDs); err != nil {
			return res, false, err
		}
		res.Replaced = stale.UUID
	}
	ops, portOp := carefulAddPortOperations(s, res.Replaced, br != nil)
	res.BridgeCreated = br == nil
	out, err := c.transact(ctx, ops)
	if err != nil {
		switch refusal(err) {
		case kindConstraintViolation: // a concurrent ADD created the same bridge or port name
			return res, true, fmt.Errorf("add port %s: %w", s.Name, err)
		case kindTimedOut: // the bridge vanished between read and commit
			return res, false, fmt.Errorf("add port %s: bridge %q: %w", s.Name, s.Bridge, ErrBridgeMissing)
		}
		return res, false, fmt.Errorf("add port %s to bridge %s: %w", s.Name, s.Bridge, err)
	}
	res.PortUUID = out[portOp].UUID.GoUUID
	return res, false, nil
}
