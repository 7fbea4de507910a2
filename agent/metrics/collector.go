// Package metrics turns the agent's OVSDB state into Prometheus metrics at
// scrape time: one Collector reads the published snapshot, so a scrape
// costs no OVSDB round trip and no goroutine per port. The names and labels
// are documented in docs/observability.md.
package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

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

// Collector is a prometheus.Collector of the ports of ours and of the
// agent's health.
type Collector struct {
	src  Source
	node string
	api  API // nil: no API, no VMI labels
}

// NewCollector reads src (and api, which may be nil) at every scrape; node
// labels every port series.
func NewCollector(src Source, node string, api API) *Collector {
	return &Collector{src: src, node: node, api: api}
}

// Describe sends every descriptor the collector uses.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends the health series, and while OVSDB is connected one set of
// series per port of ours. While disconnected the port series are left
// out: the last known counters would read as a port without traffic.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	h := c.src.Health()
	ports := c.src.Ports()
	collectHealth(ch, h, len(ports))
	if c.api != nil {
		ch <- prometheus.MustNewConstMetric(descAPISynced, prometheus.GaugeValue, boolValue(c.api.Synced()))
	}
	if !h.Connected {
		return
	}
	lv := make([]string, len(portLabels), len(portLabels)+len(infoLabels))
	for i := range ports {
		c.collectPort(ch, &ports[i], lv)
	}
}

func collectHealth(ch chan<- prometheus.Metric, h ovsstate.Health, ports int) {
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, boolValue(h.Connected))
	if !h.LastUpdate.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastUpdate, prometheus.GaugeValue, float64(h.LastUpdate.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(descConnects, prometheus.CounterValue, float64(h.Connects))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(h.Errors.Connect), errorConnect)
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(h.Errors.Monitor), errorMonitor)
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(h.Errors.ConnectionLost), errorLost)
	ch <- prometheus.MustNewConstMetric(descPorts, prometheus.GaugeValue, float64(ports))
}

// collectPort sends one port's series; lv is scratch space for its labels.
func (c *Collector) collectPort(ch chan<- prometheus.Metric, p *ovsstate.Port, lv []string) {
	lv = lv[:len(portLabels)]
	var vmi, network string
	if c.api != nil {
		vmi, network = c.api.Names(p.PodUID, p.IfName)
	}
	lv[0], lv[1], lv[2], lv[3], lv[4], lv[5], lv[6], lv[7] = c.node, p.Namespace, vmi, network, p.Pod, p.IfName, p.Network, p.Name
	i := &p.Interface
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1,
		append(lv, i.Type, i.Status[ovsstate.StatusMode], i.ServerPath)...)
	ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, boolValue(i.LinkState == "up"), lv...)
	ch <- prometheus.MustNewConstMetric(descConnectedVhost, prometheus.GaugeValue, boolValue(i.Connected()), lv...)
	ch <- prometheus.MustNewConstMetric(descError, prometheus.GaugeValue, boolValue(i.Error != ""), lv...)
	if i.MTU > 0 {
		ch <- prometheus.MustNewConstMetric(descMTU, prometheus.GaugeValue, float64(i.MTU), lv...)
	}
	if q, ok := i.Queues(); ok {
		ch <- prometheus.MustNewConstMetric(descQueues, prometheus.GaugeValue, float64(q), lv...)
	}
	for _, s := range trafficStats {
		if v, ok := i.Statistics[s.key]; ok {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(v), lv...)
		}
	}
	for k, v := range i.Statistics {
		if reason, ok := ovsDropReason(k); ok {
			ch <- prometheus.MustNewConstMetric(descOVSDrops, prometheus.CounterValue, float64(v), append(lv, reason)...)
		}
	}
	if v, ok := i.Statistics[statTxRetries]; ok {
		ch <- prometheus.MustNewConstMetric(descTxRetries, prometheus.CounterValue, float64(v), lv...)
	}
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

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
