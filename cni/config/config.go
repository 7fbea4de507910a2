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

	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Defaults and bounds of a network configuration (the node's defaults are in node.go).
const (
	DefaultLogLevel = "info"
	// maxBridgeLen is IFNAMSIZ-1: OVS creates a netdev for the bridge.
	maxBridgeLen = 15

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

	// The node's settings (NodeConf) this configuration runs with: the one
	// place the plugin reads them from, so no copy can disagree.
	Node NodeConf `json:"-"`
	// Repeated lists node settings the network configuration repeats with
	// the node's value (accepted; worth a warning).
	Repeated []string `json:"-"`

	// Derived by Parse.
	Level  slog.Level        `json:"-"` // parsed LogLevel
	Layout socketpath.Layout `json:"-"` // the node's directories with this network's Volume
}

// RuntimeConfig holds the runtime-supplied capabilities we use.
type RuntimeConfig struct {
	CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
	Mac               string `json:"mac,omitempty"`
}

// HasIPAM reports whether an IPAM plugin is configured.
func (c *NetConf) HasIPAM() bool { return c.IPAM.Type != "" }

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
	if !ignoreNodeFields {
		var err error
		if repeated, err = checkNodeFields(keys, n); err != nil {
			return nil, err
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
