package plugin

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/cni/delegate"
)

// IPAM is delegated to the configured plugin with our own stdin, as CNI
// prescribes; the environment (CNI_COMMAND, CNI_PATH, ...) is inherited.

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

func ipamDel(c *call) error {
	if err := delegate.Run(c.ctx, "DEL", c.conf.IPAM.Type, c.args.StdinData); err != nil {
		return ipamError("DEL", c.conf.IPAM.Type, err)
	}
	return nil
}

func ipamCheck(c *call) error {
	if err := delegate.Run(c.ctx, "CHECK", c.conf.IPAM.Type, c.args.StdinData); err != nil {
		return ipamError("CHECK", c.conf.IPAM.Type, err)
	}
	return nil
}

func ipamStatus(c *call) error {
	if err := delegate.Run(c.ctx, "STATUS", c.conf.IPAM.Type, c.args.StdinData); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("IPAM plugin %s is not available", c.conf.IPAM.Type), err.Error())
	}
	return nil
}

func ipamGC(c *call) error {
	if err := delegate.Run(c.ctx, "GC", c.conf.IPAM.Type, c.args.StdinData); err != nil {
		return ipamError("GC", c.conf.IPAM.Type, err)
	}
	return nil
}

func parsePrevResult(conf *config.NetConf) error {
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return fmt.Errorf("prevResult: %w", err)
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
