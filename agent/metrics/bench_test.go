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
// connected ports from a fake state; issue 17's budget is 20 ms.
func BenchmarkScrape200(b *testing.B) {
	ports := make([]ovsstate.Port, 200)
	for i := range ports {
		ports[i] = connectedPort(fmt.Sprintf("vhu%08x", i), fmt.Sprintf("virt-launcher-vm%d-abcde", i))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(&fakeState{ports: ports, health: ovsstate.Health{Connected: true}}, "node-1"))
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
