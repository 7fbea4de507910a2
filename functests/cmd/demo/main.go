// Command demo runs the local vhost-user dataplane chain once, with progress
// output and a summary: two TCG guests, each started by KubeVirt's real
// virt-launcher in a pod-like set of namespaces with our sidecar, ping each
// other over a private OVS-DPDK through our CNI plugin. `make demo` installs the
// Debian packages and builds the binaries first. It needs root and exits 0
// only when the guests pinged (and everything was cleaned up).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/functests/dataplane"
	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/podcontainer"
)

func main() {
	// This binary is also the init of the virt-launcher pods' containers.
	podcontainer.Main()
	os.Exit(run())
}

func run() int {
	defBin := os.Getenv("VHOSTUSER_BIN")
	if defBin == "" {
		defBin = "../bin"
	}
	bin := flag.String("bin", defBin, "directory with the vhostuser and vhostuser-sidecar binaries (env VHOSTUSER_BIN)")
	cache := flag.String("cache", guest.CacheDir(), "guest kernel and initramfs cache (env "+guest.CacheDirEnv+")")
	keep := flag.Bool("keep", false, "keep the work directory (container logs, consoles)")
	bootTimeout := flag.Duration("boot-timeout", 4*time.Minute, "how long the guests may take from start to first ping")
	flag.Parse()

	absBin, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String("time", a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	}))

	start := time.Now()
	res, err := dataplane.Run(ctx, dataplane.Config{BinDir: absBin, CacheDir: *cache, Log: log, KeepWorkDir: *keep, BootTimeout: *bootTimeout})
	total := time.Since(start)

	fmt.Println()
	fmt.Println("Summary")
	if res != nil {
		for _, s := range res.Steps {
			fmt.Printf("  %-55s %8.1fs\n", s.Name, s.Took.Seconds())
		}
		for _, g := range res.Guests {
			fmt.Printf("  %s %s  OVS port %s  ping RTT median %v (first ping, with ARP: %v)\n    socket (host)    %s\n    socket (compute, bound by QEMU) %s\n    virt-launcher defines through the hooks %d, domain events %d\n",
				g.Name, g.IP, g.Port, g.RTT, g.FirstRTT, g.HostSocket, g.ComputeSocket, g.Defines, len(g.Events))
		}
		for _, p := range res.StaleStatus {
			fmt.Printf("  note: port %s kept a stale OVSDB status after the restart; ovs-vswitchd logged its device as added again\n", p)
		}
		if res.ResumedAfter > 0 {
			fmt.Printf("  ping resumed %.1fs after the ovs-vswitchd restart\n", res.ResumedAfter.Seconds())
		}
		if *keep {
			fmt.Printf("  work directory kept: %s\n", res.WorkDir)
		}
	}
	fmt.Printf("  total %.1fs\n", total.Seconds())
	if err != nil {
		fmt.Println("FAILED:", err)
		return 1
	}
	fmt.Println("OK: virt-launcher ran both VMIs; the guests pinged each other over OVS-DPDK vhost-user; everything was cleaned up")
	return 0
}
