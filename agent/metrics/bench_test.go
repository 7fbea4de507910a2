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

// bench200 is 200 connected ports from a fake state, each with its VMI
// names.
func bench200() (*fakeState, *fakeAPI) {
	ports := make([]ovsstate.Port, 200)
	api := &fakeAPI{names: map[[2]string][2]string{}, synced: true}
	for i := range ports {
		ports[i] = connectedPort(fmt.Sprintf("vhu%08x", i), fmt.Sprintf("virt-launcher-vm%d-abcde", i))
		api.names[[2]string{ports[i].PodUID, ports[i].IfName}] = [2]string{fmt.Sprintf("vm%d", i), "fast"}
	}
	return &fakeState{ports: ports, health: ovsstate.Health{Connected: true}}, api
}

func benchScrape(b *testing.B, h http.Handler, acceptEncoding string) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("scrape: %d", w.Code)
		}
	}
}

// BenchmarkScrape200 is one full scrape (render, serve as text) of 200
// connected ports through the agent's Handler (with an empty registry
// beside); issue 17's budget is 20 ms.
func BenchmarkScrape200(b *testing.B) {
	st, api := bench200()
	benchScrape(b, NewHandler(NewWriter(st, "node-1", api), prometheus.NewRegistry(), HandlerOpts{}), "")
}

// BenchmarkScrape200Gzip is BenchmarkScrape200 as Prometheus scrapes:
// gzipped.
func BenchmarkScrape200Gzip(b *testing.B) {
	st, api := bench200()
	benchScrape(b, NewHandler(NewWriter(st, "node-1", api), prometheus.NewRegistry(), HandlerOpts{}), "gzip")
}

// BenchmarkScrape200ClientGolang is BenchmarkScrape200 the way the agent
// served it before the Writer: a client_golang collector (the oracle of
// the tests) gathered and encoded by promhttp.
func BenchmarkScrape200ClientGolang(b *testing.B) {
	st, api := bench200()
	reg := prometheus.NewRegistry()
	reg.MustRegister(newOracle(st, "node-1", api))
	benchScrape(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), "")
}
