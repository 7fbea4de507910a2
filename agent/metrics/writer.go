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
	"slices"
	"strconv"
	"strings"
	"sync"

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
