// Command vhostuser is the CNI plugin that gives KubeVirt VMs OVS-DPDK
// vhost-user ports (dpdkvhostuserclient) on sockets in the pod's emptyDir.
package main

import (
	// First: one P before the other packages initialise (see the package).
	_ "github.com/kubevirt-vhostuser/vhostuser/cmd/vhostuser/internal/oneproc"

	"runtime/debug"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevirt-vhostuser/vhostuser/cni/plugin"
	vhuversion "github.com/kubevirt-vhostuser/vhostuser/internal/version"
)

func main() {
	// One short-lived run per command allocates a few MiB: garbage collection
	// would only cost CPU on a node that starts hundreds of pods at once. The
	// memory limit still bounds the heap should input ever be huge.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(256 << 20)
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    plugin.Add,
		Del:    plugin.Del,
		Check:  plugin.Check,
		GC:     plugin.GC,
		Status: plugin.Status,
	}, version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"), "vhostuser CNI plugin "+vhuversion.Version)
}
