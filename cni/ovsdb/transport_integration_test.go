//go:build integration

package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// TestTransport drives the client's transport seam (Connect, transact,
// selectRows, an echo, ErrUnreachable, txnError) against a real ovsdb-server:
// the transaction semantics the plugin relies on come from the server, not
// from this package.
func TestTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ovs, err := ovsenv.Start(ctx, ovsenv.Options{Name: "vhuovsdb", NoVswitchd: true})
	if err != nil {
		t.Fatalf("start ovsdb-server: %v", err)
	}
	t.Cleanup(func() { ovs.Stop() })
	// No ovs-vswitchd here: write what a running one reports, so AddPort's
	// readiness waits pass and the transaction itself is what is tested.
	if out, err := ovs.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "dpdk_initialized=true",
		"iface_types=["+InterfaceType+"]"); err != nil {
		t.Fatalf("report DPDK ready: %v: %s", err, out)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	connect := func(t *testing.T) *Client {
		t.Helper()
		c, err := Connect(ctx, ovs.Endpoint(), log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	marks := map[string]string{KeyOwner: Owner, KeyContainerID: "c1", KeyIfName: "net1"}

	t.Run("ping", func(t *testing.T) {
		if err := ping(ctx, connect(t)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("add and delete", func(t *testing.T) {
		c := connect(t)
		derived := PortUUID("c0", "net1")
		spec := PortSpec{Bridge: "brtr0", CreateBridge: true, Name: "vhutr0", ServerPath: "/run/x/vhost.sock",
			MTU: 9000, VLAN: 5, ExternalIDs: marks, UUID: derived}
		res, err := c.AddPort(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if !res.BridgeCreated || res.PortUUID != derived {
			t.Fatalf("AddPort: %+v, want the port under %s", res, derived)
		}
		br, err := c.Bridge(ctx, "brtr0")
		if err != nil || br == nil || len(br.Ports) != 2 || br.DatapathType != "netdev" {
			t.Fatalf("bridge: %+v %v", br, err)
		}
		ifc, err := c.InterfaceByName(ctx, "vhutr0")
		if err != nil || ifc == nil || ifc.Type != InterfaceType || ifc.Options[OptionServerPth] != "/run/x/vhost.sock" ||
			ifc.MTURequest == nil || *ifc.MTURequest != 9000 {
			t.Fatalf("interface: %+v %v", ifc, err)
		}
		// The same attachment again (a retried ADD): the fast path's insert
		// hits its own UUID ("duplicate uuid") and the name's unique index;
		// the careful path replaces our stale port in one transaction, under
		// a UUID of the server's (ovsdb-server refuses a UUID deleted in the
		// same transaction).
		again, err := c.AddPort(ctx, spec)
		if err != nil || again.Replaced != derived || again.BridgeCreated || again.PortUUID == "" || again.PortUUID == derived {
			t.Fatalf("AddPort over a stale port of ours: %+v %v", again, err)
		}
		if p, err := c.PortByName(ctx, "vhutr0"); err != nil || p == nil || p.UUID != again.PortUUID || p.Tag == nil || *p.Tag != 5 {
			t.Fatalf("PortByName: %+v %v", p, err)
		}
		if name, err := c.BridgeOfPort(ctx, again.PortUUID); err != nil || name != "brtr0" {
			t.Fatalf("BridgeOfPort: %q %v", name, err)
		}
		// DEL's transaction reads the port (by marks and by name) and
		// detaches the derived UUID, which is gone: the replacement stays
		// for the caller to delete.
		found, err := c.DetachAttachment(ctx, marks, "vhutr0", derived)
		if err != nil || len(found) != 2 || found[0].UUID != again.PortUUID || found[1].UUID != again.PortUUID ||
			found[0].Name != "vhutr0" || found[0].ExternalIDs[KeyOwner] != Owner {
			t.Fatalf("DetachAttachment: %+v %v", found, err)
		}
		if err := c.DeletePorts(ctx, again.PortUUID, res.PortUUID); err != nil {
			t.Fatal(err)
		}
		if p, err := c.PortByName(ctx, "vhutr0"); err != nil || p != nil {
			t.Fatalf("port after DeletePorts: %+v %v", p, err)
		}
		// A UUID deleted by an earlier transaction may be inserted again,
		// and DetachAttachment then removes the port in its one round trip.
		if res, err := c.AddPort(ctx, spec); err != nil || res.PortUUID != derived || res.Replaced != "" {
			t.Fatalf("AddPort after the delete: %+v %v", res, err)
		}
		found, err = c.DetachAttachment(ctx, marks, "", derived)
		if err != nil || len(found) != 1 || found[0].UUID != derived {
			t.Fatalf("DetachAttachment of the derived port: %+v %v", found, err)
		}
		if p, err := c.PortByName(ctx, "vhutr0"); err != nil || p != nil {
			t.Fatalf("port after DetachAttachment: %+v %v", p, err)
		}
		if deleted, err := c.DeleteBridgeIfUnused(ctx, "brtr0"); err != nil || !deleted {
			t.Fatalf("DeleteBridgeIfUnused: %v %v", deleted, err)
		}
	})

	t.Run("missing bridge", func(t *testing.T) {
		// The wait op fails the fast path ("timed out"); the careful path
		// then reports the missing bridge and changes nothing.
		c := connect(t)
		_, err := c.AddPort(ctx, PortSpec{Bridge: "brnone", Name: "vhutr1", ServerPath: "/p", ExternalIDs: marks})
		if !errors.Is(err, ErrBridgeMissing) {
			t.Fatalf("AddPort on a missing bridge: %v", err)
		}
		if p, err := c.PortByName(ctx, "vhutr1"); err != nil || p != nil {
			t.Fatalf("port left behind: %+v %v", p, err)
		}
	})

	t.Run("transaction error", func(t *testing.T) {
		_, err := connect(t).transact(ctx, deletePortsOperations("not-a-uuid"))
		var te *txnError
		if !errors.As(err, &te) || te.kind == "" || errors.Is(err, ErrUnreachable) {
			t.Fatalf("a bad operation: %#v", err)
		}
	})

	t.Run("deadline from ctx, then the same connection", func(t *testing.T) {
		c := connect(t)
		expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		if _, err := c.Bridge(expired, "brtr0"); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
			t.Fatalf("call with an expired ctx: %v", err)
		}
		// A server that stops answering mid-call: the ctx's deadline ends
		// the call, and once the server is back the late reply is skipped.
		pid := ovs.Pid("ovsdb-server")
		if pid == 0 {
			t.Fatal("no ovsdb-server pid")
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := c.Bridge(short, "brtr0")
		cancel2()
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
			t.Fatalf("call to a stopped server: %v", err)
		}
		// A rollback runs with a fresh ctx on the same client.
		if err := ping(ctx, c); err != nil {
			t.Fatalf("ping after a timed-out call: %v", err)
		}
		if br, err := c.Bridge(ctx, "brnone"); err != nil || br != nil {
			t.Fatalf("select after a timed-out call: %+v %v", br, err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		_, err := Connect(ctx, "unix:"+filepath.Join(t.TempDir(), "db.sock"), log)
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Connect to a missing socket: %v, want ErrUnreachable", err)
		}
		c := connect(t)
		if err := ping(ctx, c); err != nil { // the server has accepted the connection
			t.Fatal(err)
		}
		if _, err := ovs.Appctl(ctx, "ovsdb-server", "ovsdb-server/reconnect"); err != nil {
			t.Fatal(err)
		}
		// The server drops its connections soon after answering the command.
		var err2 error
		for deadline := time.Now().Add(5 * time.Second); err2 == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			_, err2 = c.Bridge(ctx, "brtr0")
		}
		if !errors.Is(err2, ErrUnreachable) {
			t.Fatalf("call on a connection the server dropped: %v, want ErrUnreachable", err2)
		}
	})
}

// ping sends an RFC 7047 echo: it proves the server answers.
func ping(ctx context.Context, c *Client) error {
	const token = "vhostuser"
	var res []string
	if err := c.call(ctx, "echo", []any{token}, &res); err != nil {
		return fmt.Errorf("OVSDB echo: %w", err)
	}
	if len(res) != 1 || res[0] != token {
		return fmt.Errorf("OVSDB echo: reply %q, want [%q]", res, token)
	}
	return nil
}
