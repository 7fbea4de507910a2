package metrics

// The text exposition format, written by hand: HELP and TYPE lines, label
// escaping and value formatting as client_golang's encoder does them.

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// family makes f the family series are written for, and tells whether it
// is wanted at all.
func (s *scratch) family(f *family) bool {
	s.fam, s.headed = f, false
	return s.err == nil && (s.keep == nil || s.keep[f.name])
}

// start begins a series line of the family: its name, after the family's
// HELP and TYPE lines if this is its first series.
func (s *scratch) start() {
	if !s.headed {
		s.buf = append(s.buf, s.fam.header...)
		s.headed = true
	}
	s.buf = append(s.buf, s.fam.name...)
}

// portStart begins a series line of port k, up to its common labels; the
// caller adds its own labels and "} value".
func (s *scratch) portStart(k int) {
	s.start()
	from := 0
	if k > 0 {
		from = s.ends[k-1]
	}
	s.buf = append(s.buf, s.labels[from:s.ends[k]]...)
}

func (s *scratch) portLine(k int, v int64) {
	s.portStart(k)
	s.buf = append(s.buf, "} "...)
	s.buf = strconv.AppendInt(s.buf, v, 10)
	s.endLine()
}

func (s *scratch) plain(v int64) {
	s.start()
	s.buf = append(s.buf, ' ')
	s.buf = strconv.AppendInt(s.buf, v, 10)
	s.endLine()
}

func (s *scratch) plainUint(v uint64) {
	s.start()
	s.buf = append(s.buf, ' ')
	s.buf = strconv.AppendUint(s.buf, v, 10)
	s.endLine()
}

func (s *scratch) endLine() {
	s.buf = append(s.buf, '\n')
	if len(s.buf) >= chunk {
		s.flush()
	}
}

// flush writes what is gathered; after an error of out it only drops it.
func (s *scratch) flush() {
	if s.err == nil && len(s.buf) > 0 {
		n, err := s.out.Write(s.buf)
		s.n += int64(n)
		s.err = err
	}
	s.buf = s.buf[:0]
}

// portLabelPrefix and infoLabelPrefix are what goes before each label's
// value: `{node="`, `,namespace="`…
var (
	portLabelPrefix = labelPrefixes("{", portLabels)
	infoLabelPrefix = labelPrefixes(",", infoLabels)
)

func labelPrefixes(first string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		sep := ","
		if i == 0 {
			sep = first
		}
		out[i] = sep + n + `="`
	}
	return out
}

// appendEscaped appends a label value as the text format wants it
// between its double quotes: backslash, double quote and newline escaped.
// Invalid UTF-8, which a Prometheus parser refuses (failing the whole
// scrape), becomes U+FFFD.
func appendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\\' || c == '"' || c == '\n' || c >= utf8.RuneSelf {
			return appendEscapedSlow(append(b, v[:i]...), v[i:])
		}
	}
	return append(b, v...)
}

func appendEscapedSlow(b []byte, v string) []byte {
	for len(v) > 0 {
		r, size := utf8.DecodeRuneInString(v)
		switch {
		case r == '\\':
			b = append(b, `\\`...)
		case r == '"':
			b = append(b, `\"`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == utf8.RuneError && size == 1:
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = append(b, v[:size]...)
		}
		v = v[size:]
	}
	return b
}

// appendFloat formats f as client_golang's text encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
