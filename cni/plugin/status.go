package plugin

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
)

// Status is the CNI STATUS command: error 50 when OVSDB is unreachable or the
// bridge is missing and will not be created.
func Status(args *skel.CmdArgs) error {
	c, done, err := setup(args)
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
	if !c.conf.CreateBridge {
		br, err := cl.Bridge(c.ctx, c.conf.Bridge)
		if err != nil {
			return types.NewError(types.ErrPluginNotAvailable, "OVSDB does not answer", err.Error())
		}
		if br == nil {
			return types.NewError(types.ErrPluginNotAvailable,
				fmt.Sprintf("bridge %q does not exist and createBridge is false", c.conf.Bridge), "")
		}
	}
	if c.conf.HasIPAM() {
		if err := ipamStatus(c); err != nil {
			return err
		}
	}
	return nil
}
