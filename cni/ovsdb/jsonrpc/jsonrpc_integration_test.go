//go:build integration

package jsonrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// A real ovsdb-server (no ovs-vswitchd) for the package run.
var ovs *ovsenv.OVS

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var err error
	ovs, err = ovsenv.Start(ctx, ovsenv.Options{Name: "vhujrpc", NoVswitchd: true})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start ovsdb-server:", err)
		return 1
	}
	defer ovs.Stop()
	return m.Run()
}

func dial(t *testing.T) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), ovs.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRealServer(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dbs []string
	if err := c.Call(ctx, "list_dbs", nil, &dbs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(dbs, ","), "Open_vSwitch") {
		t.Fatalf("list_dbs: %v", dbs)
	}
	var echo []string
	if err := c.Call(ctx, "echo", []any{"a", "b"}, &echo); err != nil || strings.Join(echo, ",") != "a,b" {
		t.Fatalf("echo: %v %v", echo, err)
	}

	// A JSON-RPC error reply, then the connection still serves.
	err := c.Call(ctx, "transact", []any{"No_Such_DB", map[string]any{"op": "comment", "comment": "x"}}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Err != "unknown database" {
		t.Fatalf("transact on an unknown database: %#v", err)
	}
	// A per-operation error is a result, not an error reply.
	var res []map[string]any
	if err := c.Call(ctx, "transact", []any{"Open_vSwitch", map[string]any{"op": "select", "table": "No_Such_Table", "where": []any{}}}, &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0]["error"] == nil {
		t.Fatalf("select from an unknown table: %v", res)
	}
}

// TestLargeReply: a reply of several MiB, read in many pieces.
func TestLargeReply(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]any, 0, 4000)
	for i := 0; i < cap(ids); i++ {
		ids = append(ids, []any{fmt.Sprintf("k%05d", i), strings.Repeat("v\"}", 300)})
	}
	name := "brlarge"
	insert := map[string]any{"op": "insert", "table": "Bridge", "uuid-name": "b",
		"row": map[string]any{"name": name, "external_ids": []any{"map", ids}}}
	root := map[string]any{"op": "mutate", "table": "Open_vSwitch", "where": []any{},
		"mutations": []any{[]any{"bridges", "insert", []any{"named-uuid", "b"}}}}
	var res []map[string]any
	if err := c.Call(ctx, "transact", []any{"Open_vSwitch", insert, root}, &res); err != nil || len(res) != 2 || res[0]["error"] != nil {
		t.Fatalf("insert: %v %v", res, err)
	}
	t.Cleanup(func() { _, _ = ovs.Vsctl(context.Background(), "--no-wait", "--if-exists", "del-br", name) })
	var rows []struct {
		Rows []struct {
			ExternalIDs []any `json:"external_ids"`
		} `json:"rows"`
	}
	sel := map[string]any{"op": "select", "table": "Bridge", "where": []any{[]any{"name", "==", name}}}
	if err := c.Call(ctx, "transact", []any{"Open_vSwitch", sel}, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(rows[0].Rows) != 1 || len(rows[0].Rows[0].ExternalIDs[1].([]any)) != len(ids) {
		t.Fatalf("select returned %d results", len(rows))
	}
}

// TestServerDropsConnection: ovsdb-server closing every connection makes the
// next call fail with ErrClosed, not hang.
func TestServerDropsConnection(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Call(ctx, "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ovs.Appctl(ctx, "ovsdb-server", "ovsdb-server/reconnect"); err != nil {
		t.Fatal(err)
	}
	// The server drops its connections soon after answering the command.
	var err error
	for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		err = c.Call(ctx, "echo", nil, nil)
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("call after the server dropped the connection: %v, want ErrClosed", err)
	}
}

// recordingConn keeps every byte read, to see what the server sent.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.got.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// TestServerEcho: over TCP ovsdb-server probes an idle client with "echo"
// requests (every 5 s by default) and drops it unless it answers. The
// client answers from within its next call and the connection survives.
func TestServerEcho(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a free port for ovsdb-server
	remote := "ptcp:" + strings.Replace(addr, "127.0.0.1:", "", 1) + ":127.0.0.1"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ovs.Appctl(ctx, "ovsdb-server", "ovsdb-server/add-remote", remote); err != nil {
		t.Fatal(err)
	}
	defer ovs.Appctl(context.Background(), "ovsdb-server", "ovsdb-server/remove-remote", remote)
	var nc net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if nc, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingConn{Conn: nc}
	c := New(rec)
	defer c.Close()
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(7 * time.Second) // past one probe interval, short of the drop
		}
		var echo []string
		if err := c.Call(ctx, "echo", []any{"x"}, &echo); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	rec.mu.Lock()
	got := rec.got.String()
	rec.mu.Unlock()
	if !strings.Contains(got, `"method":"echo"`) {
		t.Fatalf("the server sent no echo request in 14 s idle; read:\n%s", got)
	}
}
