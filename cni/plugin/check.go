package plugin

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Check is the CNI CHECK command. It needs K8S_POD_UID and the prevResult
// of ADD, whose interface of this ifname must exist and, if it has a
// socketPath, name this attachment's host socket. It verifies the port
// "vhu<id>": every owner mark of this attachment, the configured bridge,
// vlan tag and trunks; its interface: type dpdkvhostuserclient,
// vhost-server-path, the configured options and mtu, no error reported by
// OVS; the socket directories (sticky volume root, vhostuser root's and
// 0755, <ifname> with the configured owner, group and mode) and the short
// link to it; then IPAM CHECK. It changes nothing; the first mismatch is the
// error.
func Check(args *skel.CmdArgs) error {
	c, done, err := setup(args, false)
	defer done()
	if err != nil {
		return err
	}
	uid := string(c.cargs.K8S_POD_UID)
	if uid == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "K8S_POD_UID is missing from CNI_ARGS", "")
	}
	p, err := c.paths(uid)
	if err != nil {
		return err
	}
	if err := checkPrevResult(c, p); err != nil {
		return err
	}
	cl, err := c.connect()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkPort(c, cl, p); err != nil {
		return err
	}
	if err := sockdir.Check(p, c.perms()); err != nil {
		return err
	}
	if c.conf.HasIPAM() {
		if err := ipamCheck(c); err != nil {
			return err
		}
	}
	return nil
}

func checkPrevResult(c *call, p socketpath.Paths) error {
	if c.conf.RawPrevResult == nil {
		return fmt.Errorf("CHECK needs prevResult in the configuration (the result of ADD)")
	}
	if err := parsePrevResult(c.conf); err != nil {
		return err
	}
	prev, err := current.NewResultFromResult(c.conf.PrevResult)
	if err != nil {
		return fmt.Errorf("prevResult: %w", err)
	}
	for _, i := range prev.Interfaces {
		if i.Name == c.args.IfName {
			if i.SocketPath != "" && i.SocketPath != p.HostSocket {
				return fmt.Errorf("prevResult interface %s has socketPath %s, expected %s", i.Name, i.SocketPath, p.HostSocket)
			}
			return nil
		}
	}
	return fmt.Errorf("prevResult has no interface %s", c.args.IfName)
}

// parsePrevResult decodes the configuration's prevResult (CHECK's input).
func parsePrevResult(conf *config.NetConf) error {
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return fmt.Errorf("prevResult: %w", err)
	}
	return nil
}

func checkPort(c *call, cl *ovsdb.Client, p socketpath.Paths) error {
	name := ovsdb.PortName(p.ID)
	pt, err := cl.PortByName(c.ctx, name)
	if err != nil {
		return err
	}
	if pt == nil {
		return fmt.Errorf("OVS port %s is missing", name)
	}
	for k, v := range c.marks(string(c.cargs.K8S_POD_UID)) {
		if pt.ExternalIDs[k] != v {
			return fmt.Errorf("OVS port %s: external_ids %s is %q, want %q (not this attachment's port)", name, k, pt.ExternalIDs[k], v)
		}
	}
	br, err := cl.BridgeOfPort(c.ctx, pt.UUID)
	if err != nil {
		return err
	}
	if br != c.conf.Bridge {
		return fmt.Errorf("OVS port %s is on bridge %q, want %q", name, br, c.conf.Bridge)
	}
	if got := derefInt(pt.Tag); got != c.conf.VLAN {
		return fmt.Errorf("OVS port %s has tag %d, want %d", name, got, c.conf.VLAN)
	}
	if !sameInts(pt.Trunks, c.conf.Trunk) {
		return fmt.Errorf("OVS port %s has trunks %v, want %v", name, pt.Trunks, c.conf.Trunk)
	}
	ifc, err := cl.InterfaceByName(c.ctx, name)
	if err != nil {
		return err
	}
	if ifc == nil {
		return fmt.Errorf("OVS interface %s is missing", name)
	}
	if ifc.Type != ovsdb.InterfaceType {
		return fmt.Errorf("OVS interface %s has type %q, want %q", name, ifc.Type, ovsdb.InterfaceType)
	}
	if got := ifc.Options[ovsdb.OptionServerPth]; got != p.OVSSocket {
		return fmt.Errorf("OVS interface %s has vhost-server-path %q, want %q", name, got, p.OVSSocket)
	}
	for k, v := range c.conf.Options {
		if ifc.Options[k] != v {
			return fmt.Errorf("OVS interface %s has option %s=%q, want %q", name, k, ifc.Options[k], v)
		}
	}
	if got := derefInt(ifc.MTURequest); got != c.conf.MTU {
		return fmt.Errorf("OVS interface %s has mtu_request %d, want %d", name, got, c.conf.MTU)
	}
	if ifc.Error != nil && *ifc.Error != "" {
		return fmt.Errorf("OVS interface %s reports an error: %s", name, *ifc.Error)
	}
	return nil
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[int]int{}
	for _, v := range a {
		m[v]++
	}
	for _, v := range b {
		m[v]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
