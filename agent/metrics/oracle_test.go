package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// oracle is the client_golang collector the agent served its port series
// with before the Writer (one const Metric per series): the Writer's output
// must parse into the same families. Its descriptors come from the same
// families (names, HELP, types), its logic is the old one.
type oracle struct {
	src  Source
	node string
	api  API
}

func newOracle(src Source, node string, api API) *oracle {
	return &oracle{src: src, node: node, api: api}
}

func desc(f *family, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(f.name, f.help, labels, nil)
}

func portDesc(f *family, extra ...string) *prometheus.Desc {
	return desc(f, append(append([]string(nil), portLabels...), extra...)...)
}

var (
	descInfo           = portDesc(famInfo, infoLabels...)
	descLinkUp         = portDesc(famLinkUp)
	descConnectedVhost = portDesc(famConnectedVhost)
	descError          = portDesc(famError)
	descMTU            = portDesc(famMTU)
	descQueues         = portDesc(famQueues)
	descOVSDrops       = portDesc(famOVSDrops, labelReason)
	descTxRetries      = portDesc(famTxRetries)
	descConnected      = desc(famConnected)
	descLastUpdate     = desc(famLastUpdate)
	descConnects       = desc(famConnects)
	descErrors         = desc(famErrors, labelKind)
	descAPISynced      = desc(famAPISynced)
	descPorts          = desc(famPorts)
	descTraffic        = func() map[string]*prometheus.Desc {
		m := map[string]*prometheus.Desc{}
		for _, s := range trafficStats {
			m[s.key] = portDesc(s.fam)
		}
		return m
	}()
)

func (c *oracle) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descLinkUp, descConnectedVhost, descError, descMTU, descQueues,
		descOVSDrops, descTxRetries, descConnected, descLastUpdate, descConnects, descErrors, descPorts, descAPISynced} {
		ch <- d
	}
	for _, d := range descTraffic {
		ch <- d
	}
}

func (c *oracle) Collect(ch chan<- prometheus.Metric) {
	h := c.src.Health()
	ports := c.src.Ports()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	cnt := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	gauge(descConnected, boolValue(h.Connected))
	if !h.LastUpdate.IsZero() {
		gauge(descLastUpdate, float64(h.LastUpdate.UnixNano())/1e9)
	}
	cnt(descConnects, float64(h.Connects))
	cnt(descErrors, float64(h.Errors.Connect), errorConnect)
	cnt(descErrors, float64(h.Errors.Monitor), errorMonitor)
	cnt(descErrors, float64(h.Errors.ConnectionLost), errorLost)
	gauge(descPorts, float64(len(ports)))
	if c.api != nil {
		gauge(descAPISynced, boolValue(c.api.Synced()))
	}
	if !h.Connected {
		return
	}
	for k := range ports {
		p := &ports[k]
		var vmi, network string
		if c.api != nil {
			vmi, network = c.api.Names(p.PodUID, p.IfName)
		}
		lv := []string{c.node, p.Namespace, vmi, network, p.Pod, p.IfName, p.Network, p.Name}
		with := func(extra ...string) []string { return append(append([]string(nil), lv...), extra...) }
		i := &p.Interface
		gauge(descInfo, 1, with(i.Type, i.Status[ovsstate.StatusMode], i.ServerPath)...)
		gauge(descLinkUp, boolValue(i.LinkState == "up"), lv...)
		gauge(descConnectedVhost, boolValue(i.Connected()), lv...)
		gauge(descError, boolValue(i.Error != ""), lv...)
		if i.MTU > 0 {
			gauge(descMTU, float64(i.MTU), lv...)
		}
		if q, ok := i.Queues(); ok {
			gauge(descQueues, float64(q), lv...)
		}
		for _, s := range trafficStats {
			if v, ok := i.Statistics[s.key]; ok {
				cnt(descTraffic[s.key], float64(v), lv...)
			}
		}
		for k, v := range i.Statistics {
			if reason, ok := ovsDropReason(k); ok {
				cnt(descOVSDrops, float64(v), with(reason)...)
			}
		}
		if v, ok := i.Statistics[statTxRetries]; ok {
			cnt(descTxRetries, float64(v), lv...)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
