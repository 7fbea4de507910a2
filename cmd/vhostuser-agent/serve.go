package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kubevirt-vhostuser/vhostuser/agent/events"
	"github.com/kubevirt-vhostuser/vhostuser/agent/metrics"
	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/agent/reconcile"
	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/internal/version"
)

// serve runs the OVSDB monitor, the HTTP server and, with the API (k not
// nil), the informers, the event detector and the reconciler, until ctx ends
// or the monitor or server fails.
func serve(ctx context.Context, stop context.CancelFunc, o options, log *slog.Logger, node config.NodeConf, state *ovsstate.State, k *apiSide) int {
	reg := prometheus.NewRegistry()
	var api metrics.API
	var loops []func(context.Context)
	if k != nil {
		api = k.cache
		loops = append(loops, func(ctx context.Context) { k.cache.Run(ctx, log) })
		if k.recorder != nil {
			loops = append(loops, func(ctx context.Context) { events.Run(ctx, o.eventCfg, state, k.cache, k.recorder, log) })
			defer k.recorder.Shutdown()
		}
		if o.reconcile {
			// Each removal is logged by the reconciler.
			rec := reconcile.New(reconcile.Config{Layout: node.Layout(), Endpoint: o.endpoint, Grace: o.grace, Log: log}, state, k.cache)
			reg.MustRegister(rec)
			loops = append(loops, rec.Run)
		}
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	// The port and health series are written straight from the state; the
	// registry's families follow them.
	mux.Handle("/metrics", metrics.NewHandler(metrics.NewWriter(state, o.node, api), reg, metrics.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelError),
		MaxRequestsInFlight: 4, Timeout: 10 * time.Second,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// A readiness answer: 503 while OVSDB is out of reach. The agent
		// reconnects by itself, so restarting it would not help.
		if !state.Health().Connected {
			http.Error(w, "OVSDB not connected", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("listen", "addr", o.listen, "error", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving", "addr", ln.Addr().String(), "ovsdb", o.endpoint, "node", o.node, "api", o.api, "version", version.Version)

	mon := &ovsstate.Monitor{Endpoint: o.endpoint, State: state, Log: log}
	monErr := make(chan error, 1)
	go func() { monErr <- mon.Run(ctx) }()
	for _, loop := range loops {
		go loop(ctx)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	code := 0
	select {
	case <-ctx.Done():
	case err := <-monErr:
		log.Error("OVSDB monitor stopped", "error", err)
		code = 1
	case err := <-srvErr:
		log.Error("HTTP server stopped", "error", err)
		code = 1
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return code
}
