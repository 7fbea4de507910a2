package jsonrpc

import (
	"errors"
	"fmt"
	"io"
)

// framer cuts a byte stream into JSON texts. OVSDB sends its messages back
// to back with no delimiter (RFC 7047 section 4), so the end of a message is
// where the bracket that opened it closes, outside strings. Unlike
// json.Decoder, whose read errors are sticky, the framer keeps what it has
// read when a read times out, so a call whose context expires leaves the
// connection usable for the next one (the rollback of a failed ADD).
type framer struct {
	r   io.Reader
	max int // largest message accepted

	buf        []byte
	start, end int // unread bytes are buf[start:end]
	// Scan state of buf[start:start+scanned], kept across reads so that a
	// large reply arriving in many pieces is scanned once.
	scanned  int
	depth    int
	inString bool
	escaped  bool
}

// errTooLarge and errNotJSON break the connection: the stream cannot be
// resynchronised after them.
var (
	errTooLarge = errors.New("message too large")
	errNotJSON  = errors.New("not a JSON object or array")
)

func newFramer(r io.Reader, max int) *framer {
	return &framer{r: r, max: max, buf: make([]byte, 16<<10)}
}

// next returns the next complete JSON text. The slice is valid until the
// following call. A read error is returned as is; the bytes read so far are
// kept, so next may be called again after a timeout.
func (f *framer) next() ([]byte, error) {
	for {
		if msg, err := f.scan(); msg != nil || err != nil {
			return msg, err
		}
		if err := f.fill(); err != nil {
			return nil, err
		}
	}
}

// scan continues scanning the buffered bytes and returns a message once one
// is complete, or nil when more bytes are needed.
func (f *framer) scan() ([]byte, error) {
	for p := f.start + f.scanned; p < f.end; p++ {
		c := f.buf[p]
		if f.depth == 0 { // between messages
			switch c {
			case ' ', '\t', '\n', '\r':
				f.start = p + 1
			case '{', '[':
				f.start, f.depth = p, 1
			default:
				return nil, fmt.Errorf("%w: byte %q", errNotJSON, c)
			}
			continue
		}
		switch {
		case f.inString:
			switch {
			case f.escaped:
				f.escaped = false
			case c == '\\':
				f.escaped = true
			case c == '"':
				f.inString = false
			}
		case c == '"':
			f.inString = true
		case c == '{' || c == '[':
			f.depth++
		case c == '}' || c == ']':
			f.depth--
			if f.depth == 0 {
				msg := f.buf[f.start : p+1]
				f.start, f.scanned = p+1, 0
				return msg, nil
			}
		}
	}
	f.scanned = f.end - f.start
	if f.scanned > f.max {
		return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, f.max)
	}
	return nil, nil
}

// fill reads more bytes, first compacting or growing the buffer if it is full.
func (f *framer) fill() error {
	if f.start == f.end {
		f.start, f.end = 0, 0
	}
	if f.end == len(f.buf) {
		n := f.end - f.start
		if n > len(f.buf)/2 {
			nb := make([]byte, 2*len(f.buf))
			copy(nb, f.buf[f.start:f.end])
			f.buf = nb
		} else {
			copy(f.buf, f.buf[f.start:f.end])
		}
		f.start, f.end = 0, n
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	if n > 0 {
		return nil // data and an error: the error comes back on the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
