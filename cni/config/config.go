// Package config parses and validates the vhostuser CNI network configuration
// (the NetConf JSON a runtime or Multus passes on stdin) and the CNI_ARGS the
// plugin needs.
//
// Fields of a network (JSON name, type, default):
//
//	cniVersion        string   required by libcni; 0.3.1, 0.4.0, 1.0.0 and 1.1.0 are supported
//	name              string   network name (required; letters, digits, '-', '_', '.', at most 253 bytes)
//	type              string   "vhostuser"
//	bridge            string   OVS bridge the port is added to (required; a bridge name: letters,
//	                           digits, '-', '_', '.', at most 15 bytes)
//	createBridge      bool     false: the bridge must exist. true: create it (datapath_type=netdev)
//	                           when missing and mark it with external_ids vhostuser.kubevirt.io/created-bridge
//	volume            string   "hook-sidecar-sockets" (the virt-launcher pod's emptyDir)
//	mtu               int      0 (unset): Interface mtu_request, 68..65535
//	vlan              int      0 (untagged): Port tag, 1..4094
//	trunk             []int    empty: Port trunks, each 0..4095; not together with vlan
//	options           map      extra Interface options, e.g. {"tx-retries-max":"8"}; at most 32 keys of
//	                           letters, digits, '-', '_', ':'; "vhost-server-path" is reserved
//	ipam              object   optional IPAM plugin delegated to (ExecAdd/ExecDel), e.g. host-local
//	logLevel          string   "info": debug, info, warn or error
//	runtimeConfig     object   set by the runtime: {"CNIDeviceInfoFile": path} makes ADD write NPWG
//	                           device-info (type vhost-user) when the path is inside the node's
//	                           deviceInfoDir, {"mac": "..."} sets the reported MAC
//
// Settings that reach host paths or decide who may use the socket directory
// are the node's (NodeConf, written by the installer DaemonSet): kubeletRoot,
// shortSocketDir, ovsdbSocket, socketDirGroup, socketDirMode, logFile and
// deviceInfoDir. A network configuration that sets one of them, or the removed
// socketDirOwner, is refused with an error naming the field.
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
	DefaultSocketDirGroup = 107
	// DefaultSocketDirMode: sticky and world-writable, the one kind of
	// directory in which fs.protected_symlinks keeps root from following
	// the pod's symlinks (see cni/sockdir).
	DefaultSocketDirMode = "1777"
	DefaultLogLevel      = "info"
	// DefaultDeviceInfoDir is where Multus asks plugins to write device-info.
	DefaultDeviceInfoDir = "/var/run/k8s.cni.cncf.io/devinfo"
	// maxBridgeLen is IFNAMSIZ-1: OVS creates a netdev for the bridge.
	maxBridgeLen = 15

	// Bounds of a network configuration.
	MaxConfigSize   = 64 << 10 // bytes of the whole JSON, prevResult and IPAM included
	MaxNameLen      = 253      // a NetworkAttachmentDefinition name is at most this long
	MaxOptions      = 32
	MaxOptionKeyLen = 64
	MaxOptionValLen = 256
)

// NetConf is the plugin configuration.
type NetConf struct {
	types.PluginConf

	Bridge        string            `json:"bridge"`
	CreateBridge  bool              `json:"createBridge,omitempty"`
	Volume        string            `json:"volume,omitempty"`
	MTU           int               `json:"mtu,omitempty"`
	VLAN          int               `json:"vlan,omitempty"`
	Trunk         []int             `json:"trunk,omitempty"`
	Options       map[string]string `json:"options,omitempty"`
	LogLevel      string            `json:"logLevel,omitempty"`
	RuntimeConfig RuntimeConfig     `json:"runtimeConfig,omitempty"`

	// The node's settings (NodeConf) this configuration runs with.
	Node NodeConf `json:"-"`
	// Repeated lists node settings the network configuration repeats with
	// the node's value (accepted; worth a warning).
	Repeated []string `json:"-"`

	// Derived by Parse.
	KubeletRoot    string            `json:"-"` // Node.KubeletRoot
	ShortSocketDir string            `json:"-"` // Node.ShortSocketDir
	LogFile        string            `json:"-"` // Node.LogFile
	Mode           uint32            `json:"-"` // parsed Node.SocketDirMode
	Level          slog.Level        `json:"-"` // parsed LogLevel
	Layout         socketpath.Layout `json:"-"`
	Endpoint       string            `json:"-"` // OVSDB endpoint in libovsdb form (unix:/path)
}

// RuntimeConfig holds the runtime-supplied capabilities we use.
type RuntimeConfig struct {
	CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
	Mac               string `json:"mac,omitempty"`
}

// Group returns the socket directory group gid.
func (c *NetConf) Group() int { return *c.Node.SocketDirGroup }

// HasIPAM reports whether an IPAM plugin is configured.
func (c *NetConf) HasIPAM() bool { return c.IPAM.Type != "" }

// nodeFields are the configuration keys that belong to the node, not to a
// network; socketDirOwner no longer exists (the directory is root's).
var nodeFields = []string{"kubeletRoot", "shortSocketDir", "ovsdbSocket", "socketDirOwner", "socketDirGroup", "socketDirMode", "logFile", "deviceInfoDir"}

// Parse decodes and validates a network configuration against the node's
// built-in defaults (no node configuration file).
func Parse(data []byte) (*NetConf, error) {
	n, err := ParseNode(nil)
	if err != nil {
		return nil, err
	}
	return ParseWithNode(data, n)
}

// ParseWithNode decodes and validates a network configuration that runs on a
// node configured with n (from LoadNode or ParseNode), filling defaults.
//
// A node setting in the network configuration is refused naming the field,
// with one narrow exception: the same value as the node's is accepted (and
// reported in NetConf.Repeated), so NADs written before these settings moved
// to the node, with the defaults spelled out, keep working.
func ParseWithNode(data []byte, n NodeConf) (*NetConf, error) {
	return parse(data, n, false)
}

// ParseForCleanup is ParseWithNode for DEL and GC: node settings in the
// network configuration are ignored, whatever their value, since the node's
// apply anyway and refusing would leave a port of an older NAD behind.
func ParseForCleanup(data []byte, n NodeConf) (*NetConf, error) {
	return parse(data, n, true)
}

func parse(data []byte, n NodeConf, ignoreNodeFields bool) (*NetConf, error) {
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("network configuration is %d bytes, the limit is %d", len(data), MaxConfigSize)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	var repeated []string
	for key, raw := range keys {
		for _, k := range nodeFields {
			// encoding/json matches names case-insensitively: so do we.
			if !strings.EqualFold(key, k) || ignoreNodeFields {
				continue
			}
			if k == "socketDirOwner" {
				return nil, fmt.Errorf(`"socketDirOwner" is no longer a setting: the socket directory is always root's, so the pod cannot redirect OVS (docs/security.md); remove it`)
			}
			if !n.sameValue(k, raw) {
				return nil, fmt.Errorf(`%q is a node setting, not a network's: remove it from the NetworkAttachmentDefinition and set it on the installer DaemonSet, which writes the node configuration %s (docs/configuration.md)`, k, DefaultNodeConfigFile)
			}
			repeated = append(repeated, k)
		}
	}
	c := &NetConf{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	c.Node = n
	c.Repeated = repeated
	if err := c.complete(); err != nil {
		return nil, err
	}
	return c, nil
}

// sameValue tells whether a node setting repeated in a network configuration
// has the node's value.
func (n NodeConf) sameValue(field string, raw json.RawMessage) bool {
	var s string
	var i int
	switch field {
	case "socketDirGroup":
		return json.Unmarshal(raw, &i) == nil && n.SocketDirGroup != nil && i == *n.SocketDirGroup
	case "socketDirOwner":
		return false
	}
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	switch field {
	case "kubeletRoot":
		return s == n.KubeletRoot
	case "shortSocketDir":
		return s == n.ShortSocketDir
	case "ovsdbSocket":
		ep, err := endpoint(s)
		return err == nil && ep == n.endpoint
	case "socketDirMode":
		m, err := strconv.ParseUint(s, 8, 32)
		return err == nil && uint32(m) == n.mode
	case "logFile":
		return s == n.LogFile
	case "deviceInfoDir":
		return s == n.DeviceInfoDir
	}
	return false
}

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
	c.Endpoint = c.Node.endpoint
	c.KubeletRoot, c.ShortSocketDir, c.LogFile = c.Node.KubeletRoot, c.Node.ShortSocketDir, c.Node.LogFile
	if c.Volume == "" {
		c.Volume = socketpath.DefaultVolume
	}
	c.Layout = socketpath.Layout{KubeletRoot: c.KubeletRoot, Volume: c.Volume, ShortDir: c.ShortSocketDir}
	if err := c.Layout.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	c.Mode = c.Node.mode
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
		if !filepath.IsAbs(f) || filepath.Clean(f) != f || strings.ContainsAny(f, "\x00\n") || len(f) > 4096 {
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

// checkNetworkName applies libcni's rule for network names, bounded like a
// Kubernetes object name.
func checkNetworkName(n string) error {
	if len(n) > MaxNameLen {
		return fmt.Errorf(`"name" is %d bytes, the limit is %d`, len(n), MaxNameLen)
	}
	for i, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Errorf(`"name" %q contains %q: use letters, digits, and '-', '_', '.' after the first character`, n, r)
		}
	}
	return nil
}

func checkID(field string, v int) error {
	if v < 0 || v > 1<<31-2 {
		return fmt.Errorf(`%q %d is not a valid id: use 0..2147483646`, field, v)
	}
	return nil
}

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

func checkOption(k, v string) error {
	if k == "" || len(k) > MaxOptionKeyLen {
		return fmt.Errorf(`"options" key %.80q must be 1..%d bytes`, k, MaxOptionKeyLen)
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == ':') {
			return fmt.Errorf(`"options" key %q contains %q: use letters, digits, '-', '_' or ':'`, k, r)
		}
	}
	if k == "vhost-server-path" {
		return fmt.Errorf(`"options" key "vhost-server-path" is reserved: the plugin sets it`)
	}
	if len(v) > MaxOptionValLen || strings.ContainsAny(v, "\x00\n") {
		return fmt.Errorf(`"options" value of %q must be at most %d bytes without NUL or newline`, k, MaxOptionValLen)
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
