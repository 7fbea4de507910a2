// Package jsonrpc is the plugin's OVSDB transport: JSON-RPC 1.0 over a unix
// or TCP stream as RFC 7047 section 4 specifies it, one call at a time.
//
// It exists because a CNI plugin is a process per call: libovsdb's client
// package brings a cache, monitors, reconnection and, through its imports,
// prometheus, protobuf and yaml, whose initialisation alone costs more than
// the round trip the plugin needs. Everything here is the standard library;
// the protocol's types stay libovsdb's (package ovsdb), used by the caller.
//
// What it handles: messages split over many reads or several in one read;
// replies of any size up to a bound; the server's "echo" requests (answered,
// so a TCP connection with inactivity probes stays up); notifications and
// replies to calls given up earlier (skipped); JSON-RPC error replies
// (*Error); deadlines and cancellation from the call's context. A call that
// times out while waiting leaves the connection usable; a broken stream (the
// server went away, a partial write, bytes that are not JSON) makes every
// later call fail with ErrClosed.
package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxMessage bounds one message from the server. The plugin's largest reply
// is a select of its own ports, far below this.
const MaxMessage = 64 << 20

// ErrClosed wraps every error of a connection that is gone or unusable.
var ErrClosed = errors.New("OVSDB connection closed")

// Error is a JSON-RPC error reply. OVSDB sends an object with "error" and
// "details" (RFC 7047 section 3.1); anything else is kept in Raw.
type Error struct {
	Method  string          `json:"-"`
	Err     string          `json:"error"`
	Details string          `json:"details"`
	Raw     json.RawMessage `json:"-"`
}

func (e *Error) Error() string {
	msg := e.Err
	if msg == "" {
		msg = string(e.Raw)
	}
	if e.Details != "" {
		msg += ": " + e.Details
	}
	return "OVSDB " + e.Method + ": " + msg
}

// Conn is one connection to ovsdb-server. Calls are serialised.
type Conn struct {
	mu     sync.Mutex
	conn   net.Conn
	in     *framer
	nextID uint64
	broken error // set once the stream is unusable
}

// Dial connects to endpoint, "unix:<path>" or "tcp:<host>:<port>", within
// ctx's deadline.
func Dial(ctx context.Context, endpoint string) (*Conn, error) {
	network, addr, ok := strings.Cut(endpoint, ":")
	if !ok || addr == "" || (network != "unix" && network != "tcp") {
		return nil, fmt.Errorf("endpoint %q: want unix:<path> or tcp:<host>:<port>", endpoint)
	}
	if network == "unix" {
		c, err := dialUnix(ctx, addr)
		if err != nil {
			return nil, err
		}
		return New(c), nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

// dialUnixTimeout bounds a unix connect when ctx has no deadline.
const dialUnixTimeout = 30 * time.Second

// dialUnix connects with a blocking connect(2), as OVS's own clients do. A
// unix socket whose listen backlog is full (a hundred plugins at once, and
// ovsdb-server accepts one at a time) makes a non-blocking connect, Go's,
// fail with EAGAIN at once; a blocking one is queued by the kernel and woken
// as soon as the server accepts, which no retry loop's sleep can match.
// SO_SNDTIMEO bounds the wait by ctx's deadline (then EAGAIN).
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(dialUnixTimeout)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("socket", err)}
	}
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			syscall.Close(fd)
			return nil, fmt.Errorf("dial unix %s: %w (listen backlog full)", path, errors.Join(syscall.EAGAIN, context.DeadlineExceeded))
		}
		tv := syscall.NsecToTimeval(left.Nanoseconds())
		if err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err != nil {
			break
		}
		// EINTR: a signal cut the wait before the connection was made;
		// the socket is still unconnected, so connect again.
		if err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: os.NewSyscallError("connect", err)}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	// FileConn duplicates the descriptor into Go's poller (non-blocking:
	// SO_SNDTIMEO never applies to its writes).
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("dial unix %s: %w", path, err)
	}
	return c, nil
}

// New wraps an established stream.
func New(c net.Conn) *Conn {
	return &Conn{conn: c, in: newFramer(c, MaxMessage)}
}

// Close closes the connection.
func (c *Conn) Close() error {
	return c.conn.Close()
}

type request struct {
	Method string `json:"method"`
	Params any    `json:"params"`
	ID     any    `json:"id"`
}

type response struct {
	Result any `json:"result"`
	Error  any `json:"error"`
	ID     any `json:"id"`
}

// message is any message from the server: a request or notification has a
// method, a response has none.
type message struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// Call sends method(params) and decodes the reply's result into result. The
// deadline and cancellation of ctx bound the whole call.
func (c *Conn) Call(ctx context.Context, method string, params []any, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline() // zero: no deadline
	if err := c.conn.SetDeadline(dl); err != nil {
		return c.fail(err)
	}
	// Cancellation without a deadline: wake the blocked read or write.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired // the next call's SetDeadline must come after this one's
		}
	}()

	c.nextID++
	id := c.nextID
	if params == nil {
		params = []any{}
	}
	if err := c.write(request{Method: method, Params: params, ID: id}); err != nil {
		return c.ioError(ctx, method, err)
	}
	for {
		raw, err := c.in.next()
		if err != nil {
			return c.ioError(ctx, method, err)
		}
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return c.fail(fmt.Errorf("undecodable message from the server: %w", err))
		}
		if m.Method != "" {
			if err := c.serve(m); err != nil {
				return c.ioError(ctx, method, err)
			}
			continue
		}
		var got uint64
		if json.Unmarshal(m.ID, &got) != nil || got != id {
			continue // the reply to a call given up earlier
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			e := &Error{Method: method, Raw: m.Error}
			_ = json.Unmarshal(m.Error, e) // not an object: Raw says it
			return e
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("OVSDB %s: decode result: %w", method, err)
		}
		return nil
	}
}

// serve answers a request from the server: "echo" with its own parameters,
// anything else with an error, as OVS's own clients do. Notifications (id
// null) need no answer; this client subscribes to none.
func (c *Conn) serve(m message) error {
	if len(m.ID) == 0 || string(m.ID) == "null" {
		return nil
	}
	if m.Method == "echo" {
		return c.write(response{Result: m.Params, ID: m.ID})
	}
	return c.write(response{Error: "unknown method " + m.Method, ID: m.ID})
}

// write sends one message. A write that fails after sending part of it
// leaves the stream unusable.
func (c *Conn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	n, err := c.conn.Write(b)
	if err != nil && n > 0 {
		return c.fail(err)
	}
	return err
}

// ioError classifies a read or write error: ctx's end and timeouts keep the
// connection (a late reply is skipped by its id); anything else breaks it.
func (c *Conn) ioError(ctx context.Context, method string, err error) error {
	if c.broken != nil {
		return c.broken
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// Only ctx sets deadlines; the socket's may fire a hair before ctx's timer.
		cerr := ctx.Err()
		if cerr == nil {
			cerr = context.DeadlineExceeded
		}
		return fmt.Errorf("OVSDB %s: %w", method, cerr)
	}
	return c.fail(fmt.Errorf("OVSDB %s: %w", method, err))
}

func (c *Conn) fail(err error) error {
	if c.broken == nil {
		c.broken = fmt.Errorf("%w: %w", ErrClosed, err)
		_ = c.conn.Close()
	}
	return c.broken
}
