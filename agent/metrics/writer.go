// Package metrics serves the agent's own Prometheus series, built from its
// OVSDB state at scrape time: a Writer reads the published snapshot, so a
// scrape costs no OVSDB round trip and no goroutine per port, and renders
// the text exposition format straight from it (as kube-state-metrics does)
// rather than building a client_golang Metric per series; the Handler serves
// it beside a registry's families (the reconciler's, Go's, the process's).
// The names and labels are documented in docs/observability.md.
package metrics

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// Source is what a scrape reads; *ovsstate.State is one.
type Source interface {
	Ports() []ovsstate.Port
	Health() ovsstate.Health
}

// API is what the agent knows from the Kubernetes API; *pods.Cache is one.
type API interface {
	// Names returns the VMI name and VMI network name of a pod interface,
	// "" for what is not known.
	Names(podUID, podIfName string) (vmi, network string)
	// Synced reports whether the pod cache is synced.
	Synced() bool
}

// Writer renders the series of the ports of ours and of the agent's health
// in the Prometheus text format (version 0.0.4). Every scrape renders each
// port's common labels once into pooled scratch space, then each family
// (its HELP and TYPE lines once, before its first series; a family without
// series is left out) one line per series, in chunks to the output: a
// scrape allocates nearly nothing, whatever the number of ports.
type Writer struct {
	src  Source
	node string
	api  API // nil: no API, no VMI labels
}

// NewWriter reads src (and api, which may be nil) at every scrape; node
// labels every port series.
func NewWriter(src Source, node string, api API) *Writer {
	return &Writer{src: src, node: node, api: api}
}

// WriteTo writes one scrape to out: the health series, and while OVSDB is
// connected one set of series per port of ours. While disconnected the
// port series are left out: the last known counters would read as a port
// without traffic. It stops at the first error of out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	return w.write(out, nil)
}

// ownFamily tells whether a Writer renders the family name (in some
// scrapes at least).
func ownFamily(name string) bool {
	_, ok := allFamilies[name]
	return ok
}

// chunk is how much text a scrape gathers before writing it to the output.
const chunk = 32 << 10

// scratch is one scrape's working memory; it is pooled, so that a scrape
// reuses what the last one grew.
type scratch struct {
	out  io.Writer
	n    int64
	err  error
	keep map[string]bool // nil: every family

	buf    []byte // text not written to out yet
	fam    *family
	headed bool // fam's HELP and TYPE are written

	labels []byte // every port's common labels, `{node="…",…,port="…"`
	ends   []int  // where each port's labels end in labels
	drops  []drop
}

type drop struct {
	reason string
	v      int
}

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, chunk+chunk/4)} }}

func (w *Writer) write(out io.Writer, keep map[string]bool) (int64, error) {
	s := scratchPool.Get().(*scratch)
	defer func() {
		s.out, s.keep, s.err, s.n, s.fam = nil, nil, nil, 0, nil
		if cap(s.buf) > 4*chunk { // a monster line; let it go
			s.buf = nil
		}
		s.buf, s.labels, s.ends, s.drops = s.buf[:0], s.labels[:0], s.ends[:0], s.drops[:0]
		scratchPool.Put(s)
	}()
	s.out, s.keep = out, keep

	h := w.src.Health()
	ports := w.src.Ports()
	w.writeHealth(s, h, len(ports))
	if h.Connected && len(ports) > 0 {
		for i := range ports {
			s.labels = w.appendPortLabels(s.labels, &ports[i])
			s.ends = append(s.ends, len(s.labels))
		}
		writePorts(s, ports)
	}
	s.flush()
	return s.n, s.err
}

func (w *Writer) writeHealth(s *scratch, h ovsstate.Health, ports int) {
	if s.family(famConnected) {
		s.plain(boolInt(h.Connected))
	}
	if !h.LastUpdate.IsZero() && s.family(famLastUpdate) {
		s.start()
		s.buf = append(s.buf, ' ')
		s.buf = appendFloat(s.buf, float64(h.LastUpdate.UnixNano())/1e9)
		s.endLine()
	}
	if s.family(famConnects) {
		s.plainUint(h.Connects)
	}
	if s.family(famErrors) {
		for _, e := range [...]struct {
			kind string
			n    uint64
		}{{errorConnect, h.Errors.Connect}, {errorMonitor, h.Errors.Monitor}, {errorLost, h.Errors.ConnectionLost}} {
			s.start()
			s.buf = append(s.buf, `{`+labelKind+`="`...)
			s.buf = appendEscaped(s.buf, e.kind)
			s.buf = append(s.buf, `"} `...)
			s.buf = strconv.AppendUint(s.buf, e.n, 10)
			s.endLine()
		}
	}
	if s.family(famPorts) {
		s.plain(int64(ports))
	}
	if w.api != nil && s.family(famAPISynced) {
		s.plain(boolInt(w.api.Synced()))
	}
}

// portValue is a port family whose series carry the port labels only: a
// port's value, if it has one.
type portValue struct {
	fam   *family
	value func(*ovsstate.Interface) (int64, bool)
}

var portValues = []portValue{
	{famLinkUp, func(i *ovsstate.Interface) (int64, bool) { return boolInt(i.LinkState == "up"), true }},
	{famConnectedVhost, func(i *ovsstate.Interface) (int64, bool) { return boolInt(i.Connected()), true }},
	{famError, func(i *ovsstate.Interface) (int64, bool) { return boolInt(i.Error != ""), true }},
	{famMTU, func(i *ovsstate.Interface) (int64, bool) { return int64(i.MTU), i.MTU > 0 }},
	{famQueues, func(i *ovsstate.Interface) (int64, bool) { q, ok := i.Queues(); return int64(q), ok }},
}

func writePorts(s *scratch, ports []ovsstate.Port) {
	if s.family(famInfo) {
		for k := range ports {
			i := &ports[k].Interface
			s.portStart(k)
			vals := [...]string{i.Type, i.Status[ovsstate.StatusMode], i.ServerPath}
			for j, v := range vals {
				s.buf = append(s.buf, infoLabelPrefix[j]...)
				s.buf = appendEscaped(s.buf, v)
				s.buf = append(s.buf, '"')
			}
			s.buf = append(s.buf, "} 1"...)
			s.endLine()
		}
	}
	for _, pv := range portValues {
		if !s.family(pv.fam) {
			continue
		}
		for k := range ports {
			if v, ok := pv.value(&ports[k].Interface); ok {
				s.portLine(k, v)
			}
		}
	}
	for _, st := range trafficStats {
		s.statFamily(ports, st.fam, st.key)
	}
	if s.family(famOVSDrops) {
		for k := range ports {
			s.drops = s.drops[:0]
			for key, v := range ports[k].Interface.Statistics {
				if reason, ok := ovsDropReason(key); ok {
					s.drops = append(s.drops, drop{reason, v})
				}
			}
			slices.SortFunc(s.drops, func(a, b drop) int { return strings.Compare(a.reason, b.reason) })
			for _, d := range s.drops {
				s.portStart(k)
				s.buf = append(s.buf, `,`+labelReason+`="`...)
				s.buf = appendEscaped(s.buf, d.reason)
				s.buf = append(s.buf, `"} `...)
				s.buf = strconv.AppendInt(s.buf, int64(d.v), 10)
				s.endLine()
			}
		}
	}
	s.statFamily(ports, famTxRetries, statTxRetries)
}

// statFamily writes a family of one statistics counter, for the ports that
// have it.
func (s *scratch) statFamily(ports []ovsstate.Port, f *family, key string) {
	if !s.family(f) {
		return
	}
	for k := range ports {
		if v, ok := ports[k].Interface.Statistics[key]; ok {
			s.portLine(k, int64(v))
		}
	}
}

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

// appendPortLabels appends p's labels (all of portLabels) to b, from the
// opening brace on: `{node="…",…,port="…"`.
func (w *Writer) appendPortLabels(b []byte, p *ovsstate.Port) []byte {
	var vmi, network string
	if w.api != nil {
		vmi, network = w.api.Names(p.PodUID, p.IfName)
	}
	vals := [...]string{w.node, p.Namespace, vmi, network, p.Pod, p.IfName, p.Network, p.Name}
	for j, v := range vals {
		b = append(b, portLabelPrefix[j]...)
		b = appendEscaped(b, v)
		b = append(b, '"')
	}
	return b
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

// ovsDropReason reads the drop counters OVS keeps per reason
// ("ovs_tx_failure_drops" gives "tx_failure").
func ovsDropReason(key string) (string, bool) {
	r, ok := strings.CutPrefix(key, "ovs_")
	if !ok {
		return "", false
	}
	r, ok = strings.CutSuffix(r, "_drops")
	if !ok || r == "" {
		return "", false
	}
	return r, true
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
