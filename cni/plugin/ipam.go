package plugin

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kubevirt-vhostuser/vhostuser/cni/delegate"
)

// IPAM is delegated to the configured plugin with our own stdin, as CNI
// prescribes; the environment (CNI_COMMAND, CNI_PATH, ...) is inherited.
// cni/delegate runs the plugin; these wrappers only name the command and
// say in the error that IPAM failed.

func ipamAdd(c *call) (*current.Result, error) {
	r, err := delegate.Add(c.ctx, c.conf.IPAM.Type, c.args.StdinData)
	if err != nil {
		return nil, ipamError("ADD", c.conf.IPAM.Type, err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s result: %w", c.conf.IPAM.Type, err)
	}
	return res, nil
}

func ipamDel(c *call) error   { return ipamRun(c, "DEL") }
func ipamCheck(c *call) error { return ipamRun(c, "CHECK") }
func ipamGC(c *call) error    { return ipamRun(c, "GC") }

// ipamStatus fails with code 50, whatever the delegate said: STATUS reports
// whether the plugin can work, and without its IPAM it cannot.
func ipamStatus(c *call) error {
	if err := delegate.Run(c.ctx, "STATUS", c.conf.IPAM.Type, c.args.StdinData); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("IPAM plugin %s is not available", c.conf.IPAM.Type), err.Error())
	}
	return nil
}

func ipamRun(c *call, cmd string) error {
	if err := delegate.Run(c.ctx, cmd, c.conf.IPAM.Type, c.args.StdinData); err != nil {
		return ipamError(cmd, c.conf.IPAM.Type, err)
	}
	return nil
}

// ipamError keeps the delegate's CNI error code but says that IPAM failed:
// skel would otherwise report the delegate's bare message.
func ipamError(cmd, plugin string, err error) error {
	var e *types.Error
	if errors.As(err, &e) {
		return types.NewError(e.Code, fmt.Sprintf("IPAM plugin %s %s: %s", plugin, cmd, e.Msg), e.Details)
	}
	return fmt.Errorf("IPAM plugin %s %s: %w", plugin, cmd, err)
}
