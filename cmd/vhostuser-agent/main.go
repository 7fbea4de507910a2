// Command vhostuser-agent is the vhostuser binding's node agent: it watches
// the node's OVSDB for the plugin's ports (a monitor, not polling) and
// serves their per-VM metrics in Prometheus text format on /metrics, and
// its own health on /healthz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubevirt-vhostuser/vhostuser/agent/metrics"
	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/internal/version"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("vhostuser-agent", flag.ContinueOnError)
	endpoint := fs.String("ovsdb", "unix:/var/run/openvswitch/db.sock", "OVSDB endpoint (unix:/path or tcp:host:port)")
	listen := fs.String("listen", ":9731", "address to serve /metrics and /healthz on")
	node := fs.String("node-name", os.Getenv("NODE_NAME"), "this node's name, the node label of every series (default: env NODE_NAME)")
	debug := fs.Bool("debug", false, "log at debug level")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Println(version.Version)
		return 0
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *node == "" {
		log.Error("no node name: set -node-name or NODE_NAME (the downward API's spec.nodeName)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	state := ovsstate.NewState()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(state, *node),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError), ErrorHandling: promhttp.ContinueOnError,
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
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "addr", *listen, "error", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving", "addr", ln.Addr().String(), "ovsdb", *endpoint, "node", *node, "version", version.Version)

	mon := &ovsstate.Monitor{Endpoint: *endpoint, State: state, Log: log}
	monErr := make(chan error, 1)
	go func() { monErr <- mon.Run(ctx) }()
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
