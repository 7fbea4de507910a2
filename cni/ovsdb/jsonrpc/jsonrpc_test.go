package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeServer is the far end of a pipe, scripted by each test.
type fakeServer struct {
	t    *testing.T
	conn net.Conn
	in   *framer
}

func newPair(t *testing.T) (*Conn, *fakeServer) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return New(a), &fakeServer{t: t, conn: b, in: newFramer(b, MaxMessage)}
}

// read returns the next message the client sent.
func (s *fakeServer) read() map[string]any {
	raw, err := s.in.next()
	if err != nil {
		s.t.Errorf("server read: %v", err)
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		s.t.Errorf("client sent %q: %v", raw, err)
	}
	return m
}

// send writes raw bytes, in pieces when given several.
func (s *fakeServer) send(pieces ...string) {
	for _, p := range pieces {
		if _, err := s.conn.Write([]byte(p)); err != nil {
			s.t.Errorf("server write: %v", err)
			return
		}
	}
}

func serve(f func()) chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	return done
}

func TestCall(t *testing.T) {
	c, s := newPair(t)
	done := serve(func() {
		req := s.read()
		if req["method"] != "transact" || req["id"] != float64(1) {
			t.Errorf("request %v", req)
		}
		if p, _ := json.Marshal(req["params"]); string(p) != `["Open_vSwitch",{"op":"select","table":"Bridge","where":[]}]` {
			t.Errorf("params %s", p)
		}
		// The reply in pieces cut mid-token, after a server echo request and
		// a notification, which come first on the wire.
		s.send(`{"method":"echo","params":["probe"],"id":"echo"}`)
		if echo := s.read(); echo["id"] != "echo" || echo["error"] != nil || !equalJSON(echo["result"], []any{"probe"}) {
			t.Errorf("echo reply %v", echo)
		}
		s.send(`{"method":"update","params":[null,{}],"id":null}`,
			`{"id":1,"res`, `ult":[{"rows":[{"name":"br\"0"}]}],`, `"error":null}`)
	})
	var res []map[string][]map[string]string
	err := c.Call(context.Background(), "transact", []any{"Open_vSwitch", map[string]any{"op": "select", "table": "Bridge", "where": []any{}}}, &res)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0]["rows"][0]["name"] != `br"0` {
		t.Fatalf("result %v", res)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestErrorReply(t *testing.T) {
	c, s := newPair(t)
	tests := []struct {
		reply, wantErr, wantDetails string
	}{
		{`{"id":%d,"result":null,"error":{"error":"unknown database","details":"get_schema: no database named X"}}`, "unknown database", "get_schema: no database named X"},
		{`{"id":%d,"result":null,"error":"bad"}`, "", ""},
	}
	for i, tt := range tests {
		done := serve(func() {
			s.read()
			s.send(strings.Replace(tt.reply, "%d", string(rune('1'+i)), 1))
		})
		err := c.Call(context.Background(), "get_schema", []any{"X"}, nil)
		<-done
		var e *Error
		if !errors.As(err, &e) || e.Err != tt.wantErr || e.Details != tt.wantDetails || e.Method != "get_schema" {
			t.Fatalf("%d: error %#v", i, err)
		}
		if errors.Is(err, ErrClosed) {
			t.Fatalf("an error reply is not a closed connection: %v", err)
		}
	}
}

func TestClosedConnection(t *testing.T) {
	c, s := newPair(t)
	done := serve(func() {
		s.read()
		s.send(`{"id":1,"result":[`) // half a reply, then the server goes away
		s.conn.Close()
	})
	err := c.Call(context.Background(), "echo", nil, nil)
	<-done
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("error %v, want ErrClosed", err)
	}
	if err := c.Call(context.Background(), "echo", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("second call: %v, want ErrClosed", err)
	}
}

func TestGarbageBreaksConnection(t *testing.T) {
	c, s := newPair(t)
	done := serve(func() {
		s.read()
		s.send(`{"id":1,"result":[]} hello`)
	})
	if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	<-done
	done = serve(func() { s.read() })
	err := c.Call(context.Background(), "echo", nil, nil)
	<-done
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("error %v, want ErrClosed", err)
	}
}

func TestTimeoutKeepsConnection(t *testing.T) {
	for _, mode := range []string{"deadline", "cancel"} {
		t.Run(mode, func(t *testing.T) {
			c, s := newPair(t)
			var ctx context.Context
			var cancel context.CancelFunc
			if mode == "deadline" {
				ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			defer cancel()
			got := make(chan map[string]any, 1)
			go func() { got <- s.read() }()
			err := c.Call(ctx, "transact", []any{"Open_vSwitch"}, nil)
			want := context.DeadlineExceeded
			if mode == "cancel" {
				want = context.Canceled
			}
			if !errors.Is(err, want) || errors.Is(err, ErrClosed) {
				t.Fatalf("error %v, want %v", err, want)
			}
			if req := <-got; req["id"] != float64(1) {
				t.Fatalf("first request %v", req)
			}
			// The late reply to call 1 arrives before call 2's: skipped.
			done := serve(func() {
				if req := s.read(); req["id"] != float64(2) {
					t.Errorf("second request %v", req)
				}
				s.send(`{"id":1,"result":["late"],"error":null}`, `{"id":2,"result":["ok"],"error":null}`)
			})
			var res []string
			err = c.Call(context.Background(), "echo", []any{"ok"}, &res)
			<-done
			if err != nil || len(res) != 1 || res[0] != "ok" {
				t.Fatalf("call after a timeout: %v %v", res, err)
			}
		})
	}
}

func TestDoneContext(t *testing.T) {
	c, _ := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Call(ctx, "echo", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

func TestDialEndpoints(t *testing.T) {
	ctx := context.Background()
	for _, ep := range []string{"", "unix:", "ssl:1.2.3.4:6640", "/run/db.sock", "punix:/x"} {
		if _, err := Dial(ctx, ep); err == nil || !strings.Contains(err.Error(), "want unix:<path> or tcp:<host>:<port>") {
			t.Errorf("Dial(%q): %v", ep, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "nothing.sock")
	if _, err := Dial(ctx, "unix:"+missing); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Dial to a missing socket: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := Dial(ctx, "tcp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestDialFullBacklog: a unix listener whose backlog is full refuses
// non-blocking connects with EAGAIN; Dial waits until the server accepts.
func TestDialFullBacklog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Fill the backlog until a connect is refused with EAGAIN.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for {
		c, err := net.Dial("unix", path)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if held = append(held, c); len(held) > 100 {
			t.Fatal("backlog never filled")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = Dial(ctx, "unix:"+path)
	cancel()
	// Refused until the deadline: the last EAGAIN, or the dial the deadline
	// cut (net reports that as a timeout that Is context.DeadlineExceeded).
	if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial with the backlog full until the deadline: %v", err)
	}
	// Now the server accepts, slowly: Dial must get through.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
			c.Close()
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, "unix:"+path)
	if err != nil {
		t.Fatalf("Dial while the server drains its backlog: %v", err)
	}
	c.Close()
}
