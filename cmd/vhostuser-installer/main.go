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

	"github.com/kubevirt-vhostuser/vhostuser/cniinstall"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/version"
)

func main() {
	src := flag.String("src", "/opt/vhostuser/bin/vhostuser", "CNI plugin binary shipped in the image")
	dstDir := flag.String("dst-dir", "/host/opt/cni/bin", "host CNI bin directory, as mounted in this container")
	name := flag.String("name", "vhostuser", "file name of the installed plugin (the NetConf \"type\")")
	marker := flag.String("marker", "/run/vhostuser-installer/ready", "readiness marker written after a verified install")
	shortDir := flag.String("short-socket-dir", "", "if set, create this short socket directory (mounted at the same path as on the host)")
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
	if err := run(ctx, log, *src, *dstDir, *name, *marker, *shortDir, *oneShot); err != nil {
		log.Error("install failed", "err", err)
		stop()
		os.Exit(1)
	}
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
