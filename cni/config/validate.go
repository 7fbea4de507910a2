package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/internal/namecheck"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// The character sets of the network's names: each is its own rule (a bridge
// becomes a netdev, a network name a libcni cache file, an option key an
// OVSDB map key), so they differ on purpose.
var (
	bridgeChars      = namecheck.Charset{Punct: "-_."}
	networkNameChars = namecheck.Charset{Punct: "-_.", PunctNotFirst: true}
	optionKeyChars   = namecheck.Charset{Punct: "-_:"}
)

// complete validates a decoded network configuration and fills its defaults
// and derived values.
func (c *NetConf) complete() error {
	if c.Name == "" {
		return fmt.Errorf(`"name" is required: give the network a name`)
	}
	if err := checkNetworkName(c.Name); err != nil {
		return err
	}
	if err := ValidateBridge(c.Bridge); err != nil {
		return err
	}
	if c.Volume == "" {
		c.Volume = socketpath.DefaultVolume
	}
	c.Layout = socketpath.Layout{KubeletRoot: c.Node.KubeletRoot, Volume: c.Volume, ShortDir: c.Node.ShortSocketDir}
	if err := c.Layout.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		return fmt.Errorf(`"mtu" %d is out of range: use 68..65535 or leave it out`, c.MTU)
	}
	if c.VLAN != 0 && (c.VLAN < 1 || c.VLAN > 4094) {
		return fmt.Errorf(`"vlan" %d is out of range: use 1..4094 or leave it out`, c.VLAN)
	}
	if c.VLAN != 0 && len(c.Trunk) > 0 {
		return fmt.Errorf(`"vlan" and "trunk" are exclusive: an access port has a vlan, a trunk port a trunk list`)
	}
	if len(c.Trunk) > 4096 {
		return fmt.Errorf(`"trunk" has %d entries, at most 4096 VLANs exist`, len(c.Trunk))
	}
	for _, t := range c.Trunk {
		if t < 0 || t > 4095 {
			return fmt.Errorf(`"trunk" entry %d is out of range: use 0..4095`, t)
		}
	}
	if len(c.Options) > MaxOptions {
		return fmt.Errorf(`"options" has %d keys, the limit is %d`, len(c.Options), MaxOptions)
	}
	for k, v := range c.Options {
		if err := checkOption(k, v); err != nil {
			return err
		}
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if err := c.Level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf(`"logLevel" %q is unknown: use debug, info, warn or error`, c.LogLevel)
	}
	if f := c.RuntimeConfig.CNIDeviceInfoFile; f != "" {
		if namecheck.Path("CNIDeviceInfoFile", f) != nil || len(f) > 4096 {
			return fmt.Errorf(`runtimeConfig "CNIDeviceInfoFile" %q must be a clean absolute path`, f)
		}
		if !strings.HasPrefix(f, c.Node.DeviceInfoDir+"/") {
			return fmt.Errorf(`runtimeConfig "CNIDeviceInfoFile" %q is outside the node's device-info directory %s, where Multus puts it: refused (the plugin runs as root)`, f, c.Node.DeviceInfoDir)
		}
	}
	if m := c.RuntimeConfig.Mac; m != "" {
		hw, err := net.ParseMAC(m)
		if err != nil || len(hw) != 6 {
			return fmt.Errorf(`runtimeConfig "mac" %q is not an Ethernet MAC address such as 02:00:00:00:00:01`, m)
		}
		c.RuntimeConfig.Mac = hw.String()
	}
	return nil
}

// ValidateBridge checks an OVS bridge name.
func ValidateBridge(b string) error {
	if b == "" {
		return fmt.Errorf(`"bridge" is required: name the OVS bridge, e.g. "br-dpdk"`)
	}
	if len(b) > maxBridgeLen {
		return fmt.Errorf(`"bridge" %q is %d bytes, the limit is %d`, b, len(b), maxBridgeLen)
	}
	if b == "." || b == ".." {
		return fmt.Errorf(`"bridge" %q is not a valid name`, b)
	}
	return bridgeChars.Check(`"bridge"`, b)
}

// checkNetworkName applies libcni's rule for network names, bounded like a
// Kubernetes object name.
func checkNetworkName(n string) error {
	if len(n) > MaxNameLen {
		return fmt.Errorf(`"name" is %d bytes, the limit is %d`, len(n), MaxNameLen)
	}
	return networkNameChars.Check(`"name"`, n)
}

func checkOption(k, v string) error {
	if k == "" || len(k) > MaxOptionKeyLen {
		return fmt.Errorf(`"options" key %.80q must be 1..%d bytes`, k, MaxOptionKeyLen)
	}
	if err := optionKeyChars.Check(`"options" key`, k); err != nil {
		return err
	}
	if k == "vhost-server-path" {
		return fmt.Errorf(`"options" key "vhost-server-path" is reserved: the plugin sets it`)
	}
	if len(v) > MaxOptionValLen || strings.ContainsAny(v, "\x00\n") {
		return fmt.Errorf(`"options" value of %q must be at most %d bytes without NUL or newline`, k, MaxOptionValLen)
	}
	return nil
}

// endpoint turns an ovsdbSocket setting into libovsdb's "unix:<path>" form.
func endpoint(s string) (string, error) {
	p := strings.TrimPrefix(s, "unix:")
	if namecheck.Path("ovsdbSocket", p) != nil {
		return "", fmt.Errorf(`"ovsdbSocket" %q must be "unix:" followed by a clean absolute path, e.g. %q`, s, DefaultOVSDBSocket)
	}
	if len(p) > socketpath.MaxSocketPath {
		return "", fmt.Errorf(`"ovsdbSocket" %q is longer than %d bytes, a unix socket path cannot be`, s, socketpath.MaxSocketPath)
	}
	return "unix:" + p, nil
}

// checkID bounds a uid or gid setting to 0..2147483646.
func checkID(field string, v int) error {
	if v < 0 || v > 1<<31-2 {
		return fmt.Errorf(`%q %d is not a valid id: use 0..2147483646`, field, v)
	}
	return nil
}

// parseMode parses socketDirMode, refusing modes that would let the pod
// redirect OVS.
func parseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 || len(s) > 5 {
		return 0, fmt.Errorf(`"socketDirMode" %q is not an octal mode such as "1777"`, s)
	}
	// The directory is root's; QEMU (uid 107) binds its socket in it, and
	// fs.protected_symlinks guards only sticky, world-writable directories.
	if m&0o1003 != 0o1003 {
		return 0, fmt.Errorf(`"socketDirMode" %q must be sticky and writable and searchable by others (for example "1777", or "3777" with setgid): the kernel refuses root to follow the pod's symlinks only in such a directory`, s)
	}
	if m&0o4000 != 0 {
		return 0, fmt.Errorf(`"socketDirMode" %q must not have the setuid bit`, s)
	}
	return uint32(m), nil
}

// checkDir checks a node directory setting.
func checkDir(field, dir string) error {
	if namecheck.Dir(field, dir) != nil {
		return fmt.Errorf("%q %q must be a clean absolute path other than /", field, dir)
	}
	return nil
}
