package plugin

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
)

// Status is the CNI STATUS command. It changes nothing, and fails with code
// 50 (plugin not available) when fs.protected_symlinks is not 1, OVSDB is
// unreachable, OVS cannot run vhost-user ports (DPDK not initialised, no
// dpdkvhostuserclient, a bridge that is not netdev), or the bridge is
// missing and will not be created; an IPAM STATUS failure is code 50 too.
func Status(args *skel.CmdArgs) error {
	c, done, err := setup(args, false)
	defer done()
	if err != nil {
		return err
	}
	if err := sockdir.ProtectedSymlinks(); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	cl, err := c.connect()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "OVSDB is unreachable", err.Error())
	}
	defer cl.Close()
	// DPDK initialised, dpdkvhostuserclient supported, the bridge netdev
	// (and present unless createBridge): else a VM would get no link.
	if err := cl.Readiness(c.ctx, c.conf.Bridge, !c.conf.CreateBridge); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	if c.conf.HasIPAM() {
		if err := ipamStatus(c); err != nil {
			return err
		}
	}
	return nil
}
