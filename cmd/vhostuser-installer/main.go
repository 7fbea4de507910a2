// Command vhostuser-installer is the DaemonSet container that installs the
// vhostuser CNI binary on every node, then stays up so the pod reports Ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/internal/cniinstall"
	"github.com/kubevirt-vhostuser/vhostuser/internal/version"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func main() {
	src := flag.String("src", "/opt/vhostuser/bin/vhostuser", "CNI plugin binary shipped in the image")
	dstDir := flag.String("dst-dir", "/host/opt/cni/bin", "host CNI bin directory, as mounted in this container")
	name := flag.String("name", "vhostuser", "file name of the installed plugin (the NetConf \"type\")")
	marker := flag.String("marker", "/run/vhostuser-installer/ready", "readiness marker written after a verified install")
	shortDir := flag.String("short-socket-dir", "", "if set, create this short socket directory (its mount in this container)")
	nodeConfig := flag.String("node-config", "", "if set, write the plugin's node configuration here (the mount of the host's "+config.DefaultNodeConfigFile+")")
	var node nodeFlags
	flag.StringVar(&node.KubeletRoot, "kubelet-root", envOr("VHOSTUSER_KUBELET_ROOT", socketpath.DefaultKubeletRoot), "node configuration: kubelet --root-dir on the host (env VHOSTUSER_KUBELET_ROOT)")
	flag.StringVar(&node.ShortSocketDir, "node-short-socket-dir", envOr("VHOSTUSER_SHORT_SOCKET_DIR", socketpath.DefaultShortDir), "node configuration: host path of the short socket directory (env VHOSTUSER_SHORT_SOCKET_DIR)")
	flag.StringVar(&node.OVSDBSocket, "ovsdb-socket", envOr("VHOSTUSER_OVSDB_SOCKET", config.DefaultOVSDBSocket), "node configuration: OVSDB socket on the host (env VHOSTUSER_OVSDB_SOCKET)")
	flag.IntVar(&node.group, "socket-dir-group", config.DefaultSocketDirGroup, "node configuration: group of the per-interface socket directory")
	flag.StringVar(&node.SocketDirMode, "socket-dir-mode", config.DefaultSocketDirMode, "node configuration: octal mode of that directory (sticky and writable by others)")
	flag.StringVar(&node.LogFile, "log-file", envOr("VHOSTUSER_LOG_FILE", ""), "node configuration: the plugin's log file on the host, empty for none (env VHOSTUSER_LOG_FILE)")
	flag.StringVar(&node.DeviceInfoDir, "device-info-dir", config.DefaultDeviceInfoDir, "node configuration: the only directory runtimeConfig.CNIDeviceInfoFile may name")
	probe := flag.Bool("probe", false, "readiness/liveness probe: exit 0 if the marker exists and the installed binary is intact")
	oneShot := flag.Bool("one-shot", false, "install and exit instead of waiting for SIGTERM (init container use)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *probe {
		if err := cniinstall.Probe(*marker); err != nil {
			fmt.Fprintln(os.Stderr, "not ready:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *nodeConfig != "" {
		node.SocketDirGroup = &node.group
		if err := writeNodeConfig(*nodeConfig, node.NodeConf); err != nil {
			log.Error("node configuration", "err", err)
			os.Exit(1)
		}
		log.Info("wrote node configuration", "path", *nodeConfig)
	}
	if err := run(ctx, log, *src, *dstDir, *name, *marker, *shortDir, *oneShot); err != nil {
		log.Error("install failed", "err", err)
		stop()
		os.Exit(1)
	}
}

type nodeFlags struct {
	config.NodeConf
	group int
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// writeNodeConfig validates the node configuration as the plugin will and
// writes it atomically, readable by all (it holds no secret).
func writeNodeConfig(path string, n config.NodeConf) error {
	b, err := n.Marshal()
	if err != nil {
		return err
	}
	if _, err := config.ParseNode(b); err != nil {
		return fmt.Errorf("invalid node configuration: %w", err)
	}
	return cniinstall.WriteFile(path, b, 0o644)
}

// run installs, marks the container ready and waits for ctx to end.
func run(ctx context.Context, log *slog.Logger, src, dstDir, name, marker, shortDir string, oneShot bool) error {
	// A stale marker from a previous container must not report Ready before this install is verified.
	if err := cniinstall.RemoveMarker(marker); err != nil {
		return err
	}
	if shortDir != "" {
		if err := cniinstall.EnsureDir(shortDir, 0o755); err != nil {
			return fmt.Errorf("short socket directory: %w", err)
		}
	}
	res, err := cniinstall.Install(src, dstDir, name)
	if err != nil {
		return err
	}
	log.Info("installed vhostuser CNI plugin", "version", version.Version, "path", res.Path, "sha256", res.SHA256, "changed", res.Changed)
	if oneShot {
		return nil
	}
	if err := cniinstall.WriteMarker(marker, res, version.Version); err != nil {
		return err
	}
	<-ctx.Done()
	// The binary stays on the node: pods already attached need it for DEL.
	log.Info("stopping; the installed plugin stays in place", "path", res.Path)
	return cniinstall.RemoveMarker(marker)
}
