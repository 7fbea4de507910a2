package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, f *framer) []string {
	t.Helper()
	var out []string
	for {
		msg, err := f.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		out = append(out, string(msg))
	}
}

func TestFramer(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one", `{"id":1}`, []string{`{"id":1}`}},
		{"back to back", `{"id":1}{"id":2}[3]`, []string{`{"id":1}`, `{"id":2}`, `[3]`}},
		{"whitespace between", " \n{\"a\":1}\r\n\t {\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"brackets in strings", `{"s":"}]{[","t":"\"}"}{"u":"\\"}`, []string{`{"s":"}]{[","t":"\"}"}`, `{"u":"\\"}`}},
		{"nested", `{"result":[{"rows":[{"a":["set",[1,2]]}]}],"error":null,"id":7}`,
			[]string{`{"result":[{"rows":[{"a":["set",[1,2]]}]}],"error":null,"id":7}`}},
		{"unicode", `{"s":"ü\u00fc}"}`, []string{`{"s":"ü\u00fc}"}`}},
	}
	for _, tt := range tests {
		for rname, r := range map[string]func(string) io.Reader{
			"whole":    func(s string) io.Reader { return strings.NewReader(s) },
			"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
			"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
			"data+EOF": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		} {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got := readAll(t, newFramer(r(tt.in), 1<<20))
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestFramerErrors(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     error
	}{
		{"not JSON", `hello`, 1 << 20, errNotJSON},
		{"a bare string", `{"a":1} "x"`, 1 << 20, errNotJSON},
		{"too large", `{"a":"` + strings.Repeat("x", 100) + `"}`, 64, errTooLarge},
		{"truncated", `{"a":[1,2`, 1 << 20, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFramer(iotest.OneByteReader(strings.NewReader(tt.in)), tt.max)
			var err error
			for err == nil {
				_, err = f.next()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// timeoutReader returns its chunks in turn, with a timeout between them.
type timeoutReader struct {
	chunks []string
	gap    bool
}

func (r *timeoutReader) Read(p []byte) (int, error) {
	if r.gap = !r.gap; r.gap {
		return 0, os.ErrDeadlineExceeded
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestFramerResumesAfterTimeout(t *testing.T) {
	f := newFramer(&timeoutReader{chunks: []string{`{"id":1,"s":"a{`, `b\"`, `"}  {"id"`, `:2}`}}, 1<<20)
	var got []string
	timeouts := 0
	for {
		msg, err := f.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			timeouts++
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(msg))
	}
	want := []string{`{"id":1,"s":"a{b\""}`, `{"id":2}`}
	if strings.Join(got, "|") != strings.Join(want, "|") || timeouts < 4 {
		t.Fatalf("got %q after %d timeouts, want %q", got, timeouts, want)
	}
}

// randomReader returns random-sized pieces, like a socket under load.
type randomReader struct {
	r   io.Reader
	rnd *rand.Rand
}

func (r *randomReader) Read(p []byte) (int, error) {
	n := 1 + r.rnd.IntN(min(len(p), 70000))
	return r.r.Read(p[:n])
}

func TestFramerLargeMessages(t *testing.T) {
	// Three replies of a few MiB each (a select of many rows), back to back:
	// the buffer grows, compacts, and each scan resumes where it stopped.
	var in bytes.Buffer
	var want []string
	for i, size := range []int{5 << 20, 100, 3 << 20} {
		var m bytes.Buffer
		m.WriteString(`{"id":` + string(rune('1'+i)) + `,"result":[{"rows":[`)
		for m.Len() < size {
			m.WriteString(`{"name":"p\"}{","external_ids":["map",[["k","v]"]]]},`)
		}
		m.WriteString(`{}]}]}`)
		want = append(want, m.String())
		in.Write(m.Bytes())
	}
	f := newFramer(&randomReader{&in, rand.New(rand.NewPCG(1, 2))}, MaxMessage)
	got := readAll(t, f)
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte(`{"id":1}{"s":"\"}"}`), uint8(3))
	f.Add([]byte(`[[[[`), uint8(1))
	f.Add([]byte(` {"a":["x\\"]}",{"b":[]}],"c":"\\u005d"} `), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		// Whatever the bytes, the framer ends with an error, never panics,
		// and every message it returns is one balanced JSON text.
		r := io.Reader(bytes.NewReader(in))
		if chunk%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		fr := newFramer(r, 1<<16)
		for {
			msg, err := fr.next()
			if err != nil {
				break
			}
			if len(msg) == 0 || (msg[0] != '{' && msg[0] != '[') || !balanced(msg) {
				t.Fatalf("message %q", msg)
			}
		}
		// Against the standard library's parser: one valid JSON object or
		// array, twice, must come back as exactly those two messages.
		one := bytes.TrimSpace(in)
		if len(one) > 0 && (one[0] == '{' || one[0] == '[') && json.Valid(one) && len(one) < 1<<15 {
			fr := newFramer(bytes.NewReader(append(append(append([]byte{}, one...), '\n'), one...)), 1<<16)
			for i := 0; i < 2; i++ {
				msg, err := fr.next()
				if err != nil || !bytes.Equal(msg, one) {
					t.Fatalf("message %d of %q twice: %q, %v", i, one, msg, err)
				}
			}
			if _, err := fr.next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after two copies of %q: %v, want EOF", one, err)
			}
		}
	})
}

// balanced tells whether b is one JSON text whose brackets, outside strings,
// close exactly at its last byte: what the framer promises of a message,
// checked here without its code.
func balanced(b []byte) bool {
	depth, inString, escaped := 0, false, false
	for i, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == '{' || c == '['):
			depth++
		case !inString && (c == '}' || c == ']'):
			depth--
			if depth == 0 {
				return i == len(b)-1
			}
		}
	}
	return false
}
