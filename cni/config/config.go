// Package config parses and validates the vhostuser CNI network configuration
// (the NetConf JSON a runtime or Multus passes on stdin) and the CNI_ARGS the
// plugin needs.
//
// Fields (JSON name, type, default):
//
//	cniVersion        string   required by libcni; 0.3.1, 0.4.0, 1.0.0 and 1.1.0 are supported
//	name              string   network name (required)
//	type              string   "vhostuser"
//	bridge            string   OVS bridge the port is added to (required; a bridge name: letters,
//	                           digits, '-', '_', '.', at most 15 bytes)
//	createBridge      bool     false: the bridge must exist. true: create it (datapath_type=netdev)
//	                           when missing and mark it with external_ids vhostuser.kubevirt.io/created-bridge
//	ovsdbSocket       string   "unix:/var/run/openvswitch/db.sock"; "unix:<absolute path>" or a plain
//	                           absolute path
//	kubeletRoot       string   "/var/lib/kubelet" (kubelet --root-dir)
//	volume            string   "hook-sidecar-sockets" (the virt-launcher pod's emptyDir)
//	shortSocketDir    string   "/var/run/vhostuser": directory of the short symlinks OVS connects through;
//	                           must leave the OVS socket path within 107 bytes
//	socketDirOwner    int      107 (uid of QEMU in virt-launcher): owner of the per-interface socket directory
//	socketDirGroup    int      107 (gid of QEMU); set it to the group of a non-root OVS (for example the
//	                           gid of hugetlbfs) so that OVS can reach the socket, together with a setgid mode
//	socketDirMode     string   "0770": octal permission bits of the per-interface socket directory; only
//	                           0 to 07777, no bits for "others" beyond r-x, owner needs rwx
//	mtu               int      0 (unset): Interface mtu_request, 68..65535
//	vlan              int      0 (untagged): Port tag, 1..4094
//	trunk             []int    empty: Port trunks, each 0..4095; not together with vlan
//	options           map      extra Interface options, e.g. {"tx-retries-max":"8"}; keys of letters,
//	                           digits, '-', '_', ':'; "vhost-server-path" is reserved
//	ipam              object   optional IPAM plugin delegated to (ExecAdd/ExecDel), e.g. host-local
//	logFile           string   "" (no log): absolute path of a log file, never stdout
//	logLevel          string   "info": debug, info, warn or error
//	runtimeConfig     object   set by the runtime: {"CNIDeviceInfoFile": path} makes ADD write NPWG
//	                           device-info (type vhost-user), {"mac": "..."} sets the reported MAC
//
// Every error names the field at fault and how to fix it. Parsing has no side effects.
package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Defaults of the optional fields.
const (
	DefaultOVSDBSocket    = "unix:/var/run/openvswitch/db.sock"
	DefaultSocketDirOwner = 107
	DefaultSocketDirGroup = 107
	DefaultSocketDirMode  = "0770"
	DefaultLogLevel       = "info"
	// maxBridgeLen is IFNAMSIZ-1: OVS creates a netdev for the bridge.
	maxBridgeLen = 15
)

// NetConf is the plugin configuration.
type NetConf struct {
	types.PluginConf

	Bridge         string            `json:"bridge"`
	CreateBridge   bool              `json:"createBridge,omitempty"`
	OVSDBSocket    string            `json:"ovsdbSocket,omitempty"`
	KubeletRoot    string            `json:"kubeletRoot,omitempty"`
	Volume         string            `json:"volume,omitempty"`
	ShortSocketDir string            `json:"shortSocketDir,omitempty"`
	SocketDirOwner *int              `json:"socketDirOwner,omitempty"`
	SocketDirGroup *int              `json:"socketDirGroup,omitempty"`
	SocketDirMode  string            `json:"socketDirMode,omitempty"`
	MTU            int               `json:"mtu,omitempty"`
	VLAN           int               `json:"vlan,omitempty"`
	Trunk          []int             `json:"trunk,omitempty"`
	Options        map[string]string `json:"options,omitempty"`
	LogFile        string            `json:"logFile,omitempty"`
	LogLevel       string            `json:"logLevel,omitempty"`
	RuntimeConfig  RuntimeConfig     `json:"runtimeConfig,omitempty"`

	// Derived by Parse.
	Mode     uint32            `json:"-"` // parsed SocketDirMode
	Level    slog.Level        `json:"-"` // parsed LogLevel
	Layout   socketpath.Layout `json:"-"`
	Endpoint string            `json:"-"` // OVSDB endpoint in libovsdb form (unix:/path)
}

// RuntimeConfig holds the runtime-supplied capabilities we use.
type RuntimeConfig struct {
	CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
	Mac               string `json:"mac,omitempty"`
}

// Owner returns the socket directory owner uid.
func (c *NetConf) Owner() int { return *c.SocketDirOwner }

// Group returns the socket directory group gid.
func (c *NetConf) Group() int { return *c.SocketDirGroup }

// HasIPAM reports whether an IPAM plugin is configured.
func (c *NetConf) HasIPAM() bool { return c.IPAM.Type != "" }

// Parse decodes and validates a configuration, filling defaults.
func Parse(data []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	if err := c.complete(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *NetConf) complete() error {
	if c.Name == "" {
		return fmt.Errorf(`"name" is required: give the network a name`)
	}
	if err := ValidateBridge(c.Bridge); err != nil {
		return err
	}
	if c.OVSDBSocket == "" {
		c.OVSDBSocket = DefaultOVSDBSocket
	}
	ep, err := endpoint(c.OVSDBSocket)
	if err != nil {
		return err
	}
	c.Endpoint = ep
	if c.KubeletRoot == "" {
		c.KubeletRoot = socketpath.DefaultKubeletRoot
	}
	if c.Volume == "" {
		c.Volume = socketpath.DefaultVolume
	}
	if c.ShortSocketDir == "" {
		c.ShortSocketDir = socketpath.DefaultShortDir
	}
	c.Layout = socketpath.Layout{KubeletRoot: c.KubeletRoot, Volume: c.Volume, ShortDir: c.ShortSocketDir}
	if err := c.Layout.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if c.SocketDirOwner == nil {
		v := DefaultSocketDirOwner
		c.SocketDirOwner = &v
	}
	if c.SocketDirGroup == nil {
		v := DefaultSocketDirGroup
		c.SocketDirGroup = &v
	}
	if err := checkID("socketDirOwner", *c.SocketDirOwner); err != nil {
		return err
	}
	if err := checkID("socketDirGroup", *c.SocketDirGroup); err != nil {
		return err
	}
	if c.SocketDirMode == "" {
		c.SocketDirMode = DefaultSocketDirMode
	}
	mode, err := parseMode(c.SocketDirMode)
	if err != nil {
		return err
	}
	c.Mode = mode
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
	for k, v := range c.Options {
		if err := checkOption(k, v); err != nil {
			return err
		}
	}
	if c.LogFile != "" {
		if !filepath.IsAbs(c.LogFile) || strings.ContainsRune(c.LogFile, 0) {
			return fmt.Errorf(`"logFile" %q must be an absolute path`, c.LogFile)
		}
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if err := c.Level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf(`"logLevel" %q is unknown: use debug, info, warn or error`, c.LogLevel)
	}
	if f := c.RuntimeConfig.CNIDeviceInfoFile; f != "" {
		if !filepath.IsAbs(f) || filepath.Clean(f) != f || strings.ContainsRune(f, 0) {
			return fmt.Errorf(`runtimeConfig "CNIDeviceInfoFile" %q must be a clean absolute path`, f)
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
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf(`"bridge" %q contains %q: use letters, digits, '-', '_' or '.'`, b, r)
		}
	}
	return nil
}

func endpoint(s string) (string, error) {
	p := strings.TrimPrefix(s, "unix:")
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, "\x00\n") {
		return "", fmt.Errorf(`"ovsdbSocket" %q must be "unix:" followed by a clean absolute path, e.g. %q`, s, DefaultOVSDBSocket)
	}
	if len(p) > socketpath.MaxSocketPath {
		return "", fmt.Errorf(`"ovsdbSocket" %q is longer than %d bytes, a unix socket path cannot be`, s, socketpath.MaxSocketPath)
	}
	return "unix:" + p, nil
}

func checkID(field string, v int) error {
	if v < 0 || v > 1<<31-2 {
		return fmt.Errorf(`%q %d is not a valid id: use 0..2147483646`, field, v)
	}
	return nil
}

func parseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf(`"socketDirMode" %q is not an octal mode such as "0770"`, s)
	}
	if m&0o700 != 0o700 {
		return 0, fmt.Errorf(`"socketDirMode" %q must give the owner rwx (QEMU creates the socket there)`, s)
	}
	if m&0o002 != 0 {
		return 0, fmt.Errorf(`"socketDirMode" %q must not be writable by others: use the group for a non-root OVS`, s)
	}
	return uint32(m), nil
}

func checkOption(k, v string) error {
	if k == "" || len(k) > 64 {
		return fmt.Errorf(`"options" key %q must be 1..64 bytes`, k)
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == ':') {
			return fmt.Errorf(`"options" key %q contains %q: use letters, digits, '-', '_' or ':'`, k, r)
		}
	}
	if k == "vhost-server-path" {
		return fmt.Errorf(`"options" key "vhost-server-path" is reserved: the plugin sets it`)
	}
	if len(v) > 256 || strings.ContainsAny(v, "\x00\n") {
		return fmt.Errorf(`"options" value of %q must be at most 256 bytes without NUL or newline`, k)
	}
	return nil
}

// Args are the CNI_ARGS the plugin reads (Multus passes them).
type Args struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_UID                types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

// ParseArgs decodes CNI_ARGS, ignoring keys it does not know.
func ParseArgs(s string) (*Args, error) {
	a := &Args{}
	a.IgnoreUnknown = true
	if err := types.LoadArgs(s, a); err != nil {
		return nil, fmt.Errorf("parse CNI_ARGS: %w", err)
	}
	return a, nil
}

// PortName is the OVS port (and interface) name of an attachment: "vhu" and
// its 128-bit ID, 35 bytes, deterministic and unique per pod UID and ifname.
// A dpdkvhostuserclient is no kernel netdev, so IFNAMSIZ does not apply: OVS
// 3.1 on a netdev bridge accepts such names (checked up to 64 bytes).
func PortName(id string) string { return "vhu" + id }
