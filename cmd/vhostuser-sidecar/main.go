// Command vhostuser-sidecar is the KubeVirt network binding sidecar of the
// vhostuser binding: it serves KubeVirt's hooks API on a unix socket and
// rewrites the libvirt domain so QEMU serves a vhost-user socket per interface.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kubevirt-vhostuser/vhostuser/internal/version"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/domain"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/networkinfo"
	"github.com/kubevirt-vhostuser/vhostuser/sidecar/server"
)

func main() {
	tuneGC()
	os.Exit(run())
}

func run() int {
	defBinding := os.Getenv("NETWORK_BINDING_PLUGIN_NAME")
	if defBinding == "" {
		defBinding = domain.DefaultBindingName
	}
	fs := flag.NewFlagSet("vhostuser-sidecar", flag.ContinueOnError)
	binding := fs.String("binding", defBinding,
		"network binding name served: VMI interfaces with this binding.name get a vhost-user device (default: env NETWORK_BINDING_PLUGIN_NAME, else vhostuser)")
	socketDir := fs.String("socket-dir", socketpath.ComputeHooksDir,
		"directory of the hooks socket; KubeVirt mounts this container's share of the hook-sidecar-sockets volume here")
	socketName := fs.String("socket-name", "vhostuser-binding.sock",
		"file name of the hooks socket; virt-launcher tracks sidecars by this name, so keep it distinctive")
	netInfo := fs.String("network-info", networkinfo.DefaultPath,
		"KubeVirt network-info downward API file (binding registered with downwardAPI: device-info); read for MTUs when present")
	netInfoWait := fs.Duration("network-info-wait", 0,
		"when > 0, the network-info file is required: wait up to this long for it on each OnDefineDomain, then fail (below 45s: virt-launcher allows a call one minute)")
	maxQueues := fs.Uint("max-queues", domain.DefaultMaxQueues,
		"cap on queue pairs per interface when the VMI sets networkInterfaceMultiqueue (queues = vCPUs, at most this)")
	debug := fs.Bool("debug", false, "log every call at debug level")
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

	if *maxQueues == 0 {
		log.Error("-max-queues must be at least 1")
		return 2
	}
	if *socketName != filepath.Base(*socketName) || *socketName == "." || *socketName == ".." {
		log.Error("-socket-name must be a plain file name", "socketName", *socketName)
		return 2
	}
	srv, err := server.New(server.Config{
		BindingName:     *binding,
		SocketPath:      filepath.Join(*socketDir, *socketName),
		NetworkInfoPath: *netInfo,
		NetworkInfoWait: *netInfoWait,
		MaxQueues:       *maxQueues,
		Logger:          log,
	})
	if err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}
	if err := srv.Listen(); err != nil {
		log.Error("cannot listen", "error", err)
		return 1
	}
	log.Info("vhostuser sidecar serving KubeVirt hooks", "version", version.Version, "binding", *binding, "socket", srv.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Serve(ctx); err != nil {
		log.Error("serve failed", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
