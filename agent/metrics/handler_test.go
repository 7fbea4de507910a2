package metrics

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// logRecorder is a Logger that keeps the lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintln(v...))
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// get serves one request and returns the response and its body,
// decompressed.
func get(t *testing.T, h http.Handler, target string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// registry is what the agent registers beside the Writer: here one gauge
// and a summary (whose series have suffixes), in place of the reconciler's
// and the Go and process collectors.
func registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostuser_agent_reconcile_passes_total", Help: "Passes."})
	g.Set(3)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "go_gc_duration_seconds", Help: "GC.", Objectives: map[float64]float64{0.5: 0.05}})
	s.Observe(0.25)
	reg.MustRegister(g, s)
	return reg
}

func TestHandler(t *testing.T) {
	st, api := bench200()
	h := NewHandler(NewWriter(st, "node-1", api), registry(), HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
	for _, enc := range []string{"", "gzip", "gzip;q=1.0, identity;q=0.5, *;q=0"} {
		t.Run("Accept-Encoding "+enc, func(t *testing.T) {
			resp, body := get(t, h, "/metrics", "Accept-Encoding", enc,
				"Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if ce, want := resp.Header.Get("Content-Encoding"), map[bool]string{true: "gzip"}[enc != ""]; ce != want {
				t.Errorf("Content-Encoding %q, want %q", ce, want)
			}
			if v := resp.Header.Get("Vary"); v != "Accept-Encoding" {
				t.Errorf("Vary %q", v)
			}
			mfs := parse(t, body)
			if n := len(mfs["vhostuser_port_info"].GetMetric()); n != 200 {
				t.Errorf("%d info series, want 200", n)
			}
			for _, name := range []string{"vhostuser_agent_reconcile_passes_total", "go_gc_duration_seconds", "vhostuser_agent_api_synced"} {
				if mfs[name] == nil {
					t.Errorf("no %s", name)
				}
			}
		})
	}
}

// The agent's own families come from the Writer alone: a registry family
// of the same name is left out (a family twice fails the scrape), and said.
func TestHandlerFamilyOnce(t *testing.T) {
	reg := registry()
	dup := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostuser_agent_ports", Help: "Another."})
	dup.Set(99)
	reg.MustRegister(dup)
	log := &logRecorder{}
	h := NewHandler(NewWriter(&fakeState{ports: []ovsstate.Port{connectedPort("vhu1", "p")}, health: ovsstate.Health{Connected: true}}, "n", nil),
		reg, HandlerOpts{ErrorLog: log})
	_, body := get(t, h, "/metrics")
	mfs := parse(t, body) // fails on a family twice
	if v := mfs["vhostuser_agent_ports"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("vhostuser_agent_ports %v, want the Writer's 1", v)
	}
	if !strings.Contains(log.String(), "vhostuser_agent_ports is the agent's own family") {
		t.Errorf("the clash is not logged: %q", log)
	}
}

// ?name[]=… keeps the families named, as promhttp does.
func TestHandlerNameFilter(t *testing.T) {
	st, api := bench200()
	h := NewHandler(NewWriter(st, "node-1", api), registry(), HandlerOpts{})
	_, body := get(t, h, "/metrics?name[]=vhostuser_port_mtu_bytes&name[]=vhostuser_agent_ports&name[]=go_gc_duration_seconds")
	mfs := parse(t, body)
	if len(mfs) != 3 || len(mfs["vhostuser_port_mtu_bytes"].GetMetric()) != 200 || mfs["vhostuser_agent_ports"] == nil || mfs["go_gc_duration_seconds"] == nil {
		t.Errorf("got %d families:\n%s", len(mfs), body)
	}
}

// failingGatherer gathers some families and an error, as a registry does
// when one collector fails.
type failingGatherer struct{ prometheus.Gatherer }

func (f failingGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, _ := f.Gatherer.Gather()
	return mfs, errors.New("collector X failed")
}

// A failing collector is logged and the rest served (promhttp's
// ContinueOnError).
func TestHandlerGatherError(t *testing.T) {
	log := &logRecorder{}
	h := NewHandler(NewWriter(&fakeState{health: ovsstate.Health{Connected: true}}, "n", nil),
		failingGatherer{registry()}, HandlerOpts{ErrorLog: log})
	resp, body := get(t, h, "/metrics")
	mfs := parse(t, body)
	if resp.StatusCode != http.StatusOK || mfs["vhostuser_agent_ovsdb_connected"] == nil || mfs["vhostuser_agent_reconcile_passes_total"] == nil {
		t.Errorf("%s:\n%s", resp.Status, body)
	}
	if !strings.Contains(log.String(), "error gathering metrics: collector X failed") {
		t.Errorf("log %q", log)
	}
}

// brokenWriter is a ResponseWriter whose connection is gone.
type brokenWriter struct{ h http.Header }

func (b *brokenWriter) Header() http.Header         { return b.h }
func (b *brokenWriter) WriteHeader(int)             {}
func (b *brokenWriter) Write(p []byte) (int, error) { return 0, errors.New("connection reset") }

func TestHandlerWriteError(t *testing.T) {
	log := &logRecorder{}
	st, api := bench200()
	h := NewHandler(NewWriter(st, "n", api), registry(), HandlerOpts{ErrorLog: log})
	h.ServeHTTP(&brokenWriter{h: http.Header{}}, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if got := log.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "connection reset") {
		t.Errorf("log %q, want the one write error", got)
	}
}

// blockingState holds every scrape in Ports until released.
type blockingState struct {
	fakeState
	entered chan struct{}
	release chan struct{}
}

func (b *blockingState) Ports() []ovsstate.Port {
	b.entered <- struct{}{}
	<-b.release
	return b.ports
}

func TestHandlerInFlightLimit(t *testing.T) {
	st := &blockingState{fakeState: fakeState{health: ovsstate.Health{Connected: true}},
		entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := NewHandler(NewWriter(st, "n", nil), nil, HandlerOpts{MaxRequestsInFlight: 1})
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		done <- w.Code
	}()
	<-st.entered
	resp, body := get(t, h, "/metrics")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Limit of concurrent requests reached (1)") {
		t.Errorf("second request: %s %q", resp.Status, body)
	}
	close(st.release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first request: %d", code)
	}
	// The slot is free again.
	if resp, body := get(t, h, "/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("third request: %s %q", resp.Status, body)
	}
	<-st.entered
}

func TestHandlerTimeout(t *testing.T) {
	st := &blockingState{fakeState: fakeState{health: ovsstate.Health{Connected: true}},
		entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(st.release)
	h := NewHandler(NewWriter(st, "n", nil), nil, HandlerOpts{Timeout: time.Millisecond})
	resp, body := get(t, h, "/metrics")
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "Exceeded configured timeout of 1ms.\n" {
		t.Errorf("%s %q", resp.Status, body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"deflate", false},
		{"GZIP", false}, // as promhttp: codings compare case-sensitively
		{"gzip;q=0", false},
		{"gzip;q=0.5, identity;q=0.9", false},
		{"identity;q=0.5, gzip;q=0.9", true},
		{"gzip, identity", false}, // a tie goes to identity, as in promhttp
		{"*", false},
		{"*;q=0.1, gzip", true},
		{"gzip;level=9", false}, // a parameter other than q: the spec is skipped
	} {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Accept-Encoding", tt.header)
		}
		if got := acceptsGzip(h); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
