package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPasses = prometheus.NewDesc("vhostuser_agent_reconcile_passes_total",
		"Reconcile passes run.", nil, nil)
	descRemoved = prometheus.NewDesc("vhostuser_agent_reconcile_removed_total",
		"Leaked objects the reconciler removed, by kind (port, link, temp-link, socket-dir).", []string{"kind"}, nil)
	descErrors = prometheus.NewDesc("vhostuser_agent_reconcile_errors_total",
		"Reconcile passes that ended with an error (API unreachable at the second look, a failed removal).", nil, nil)
	descLastSuccess = prometheus.NewDesc("vhostuser_agent_reconcile_last_success_timestamp_seconds",
		"When the last reconcile pass without error ended (Unix time; 0 before the first).", nil, nil)
	descOrphans = prometheus.NewDesc("vhostuser_agent_reconcile_orphans",
		"Suspected leaks currently waiting out the grace period, by kind.", []string{"kind"}, nil)
)

var kinds = []string{KindPort, KindLink, KindTempLink, KindSocketDir}

// Describe implements prometheus.Collector.
func (r *Reconciler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPasses, descRemoved, descErrors, descLastSuccess, descOrphans} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Every kind is always reported, so
// rate() and alerts see zeros rather than absent series.
func (r *Reconciler) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descPasses, prometheus.CounterValue, float64(r.passes))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(r.errors))
	var last float64
	if !r.lastSuccess.IsZero() {
		last = float64(r.lastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, last)
	for _, k := range kinds {
		ch <- prometheus.MustNewConstMetric(descRemoved, prometheus.CounterValue, float64(r.removed[k]), k)
		if k != KindSocketDir {
			ch <- prometheus.MustNewConstMetric(descOrphans, prometheus.GaugeValue, float64(r.orphans[k]), k)
		}
	}
}
