package plugin

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
)

// IPAM is delegated to the configured plugin with our own stdin, as CNI
// prescribes; the environment (CNI_COMMAND, CNI_PATH, ...) is inherited.

func ipamAdd(c *call) (*current.Result, error) {
	r, err := invoke.DelegateAdd(c.ctx, c.conf.IPAM.Type, c.args.StdinData, nil)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s ADD: %w", c.conf.IPAM.Type, err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s result: %w", c.conf.IPAM.Type, err)
	}
	return res, nil
}

func ipamDel(c *call) error {
	if err := invoke.DelegateDel(c.ctx, c.conf.IPAM.Type, c.args.StdinData, nil); err != nil {
		return fmt.Errorf("IPAM plugin %s DEL: %w", c.conf.IPAM.Type, err)
	}
	return nil
}

func ipamCheck(c *call) error {
	if err := invoke.DelegateCheck(c.ctx, c.conf.IPAM.Type, c.args.StdinData, nil); err != nil {
		return fmt.Errorf("IPAM plugin %s CHECK: %w", c.conf.IPAM.Type, err)
	}
	return nil
}

func ipamStatus(c *call) error {
	if err := invoke.DelegateStatus(c.ctx, c.conf.IPAM.Type, c.args.StdinData, nil); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("IPAM plugin %s is not available", c.conf.IPAM.Type), err.Error())
	}
	return nil
}

func ipamGC(c *call) error {
	if err := invoke.DelegateGC(c.ctx, c.conf.IPAM.Type, c.args.StdinData, nil); err != nil {
		return fmt.Errorf("IPAM plugin %s GC: %w", c.conf.IPAM.Type, err)
	}
	return nil
}

func parsePrevResult(conf *config.NetConf) error {
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return fmt.Errorf("prevResult: %w", err)
	}
	return nil
}
