package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// BenchmarkScrape200 is one full scrape (gather, encode as text) of 200
// connected ports from a fake state, each with its VMI names; issue 17's
// budget is 20 ms.
func BenchmarkScrape200(b *testing.B) {
	ports := make([]ovsstate.Port, 200)
	api := &fakeAPI{names: map[[2]string][2]string{}, synced: true}
	for i := range ports {
		ports[i] = connectedPort(fmt.Sprintf("vhu%08x", i), fmt.Sprintf("virt-launcher-vm%d-abcde", i))
		api.names[[2]string{ports[i].PodUID, ports[i].IfName}] = [2]string{fmt.Sprintf("vm%d", i), "fast"}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(&fakeState{ports: ports, health: ovsstate.Health{Connected: true}}, "node-1", api))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("scrape: %d", w.Code)
		}
	}
}
