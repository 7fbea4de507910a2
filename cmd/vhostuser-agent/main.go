// Command vhostuser-agent is the vhostuser binding's node agent: it watches
// the node's OVSDB for the plugin's ports (a monitor, not polling) and this
// node's pods and VMIs in the Kubernetes API (informers), and serves the
// ports' per-VM metrics in Prometheus text format on /metrics and its own
// health on /healthz.
//
// Files: main.go flags and lifetime, node.go the node configuration,
// api.go the Kubernetes client, serve.go the HTTP side and the loops,
// memory.go the garbage collector's setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/events"
	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/internal/version"
)

func main() { os.Exit(run()) }

type options struct {
	endpoint, listen, node, api, nodeConfig string
	debug                                   bool
	grace                                   time.Duration
	reconcile                               bool
	events                                  bool
	eventCfg                                events.Config
}

func run() int {
	tuneGC()
	var o options
	fs := flag.NewFlagSet("vhostuser-agent", flag.ContinueOnError)
	fs.StringVar(&o.nodeConfig, "node-config", config.DefaultNodeConfigFile, "the node configuration the installer writes (kubelet root, short socket directory, OVSDB socket); waited for when missing; \"\" for the built-in defaults")
	fs.StringVar(&o.endpoint, "ovsdb", "", "OVSDB endpoint (unix:/path or tcp:host:port); default: the node configuration's")
	fs.StringVar(&o.listen, "listen", ":9731", "address to serve /metrics and /healthz on")
	fs.StringVar(&o.node, "node-name", os.Getenv("NODE_NAME"), "this node's name, the node label of every series (default: env NODE_NAME)")
	fs.StringVar(&o.api, "api", apiInCluster, "Kubernetes API access: "+apiInCluster+" (the pod's service account) or "+apiNone+" (metrics only: no VMI labels, events or reconciliation)")
	fs.BoolVar(&o.reconcile, "reconcile", true, "remove the leaked ports, short links and socket directories of pods gone from this node (needs -api)")
	fs.DurationVar(&o.grace, "reconcile-grace", 30*time.Second, "how long an attachment must look orphaned before its second look and removal")
	fs.BoolVar(&o.events, "events", true, "record Kubernetes events on the pods (and VMIs) of ports that break or recover (needs -api)")
	fs.DurationVar(&o.eventCfg.NotConnectedAfter, "not-connected-after", 60*time.Second, "warn when a new port is still not connected this long after it appeared")
	fs.DurationVar(&o.eventCfg.DisconnectedAfter, "disconnected-after", 10*time.Second, "warn when a port's lost connection stays down this long")
	fs.BoolVar(&o.debug, "debug", false, "log at debug level")
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
	if o.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if o.node == "" {
		log.Error("no node name: set -node-name or NODE_NAME (the downward API's spec.nodeName)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	node, err := loadNode(ctx, o.nodeConfig, log)
	if err != nil {
		log.Error("node configuration", "error", err)
		return 2
	}
	if o.endpoint == "" {
		o.endpoint = node.Endpoint()
	}
	var k *apiSide
	if o.api != apiNone {
		if k, err = newAPI(ctx, o.api, o.node, o.events, log); err != nil {
			log.Error("Kubernetes API", "error", err)
			return 2
		}
	}
	return serve(ctx, stop, o, log, node, ovsstate.NewState(), k)
}
