package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kubevirt-vhostuser/vhostuser/internal/namecheck"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// DefaultNodeConfigFile is where the installer DaemonSet writes the node
// configuration; EnvNodeConfig names another file (set in the environment
// kubelet or the runtime runs plugins with, never by a network).
const (
	DefaultNodeConfigFile = "/etc/vhostuser/node.json"
	EnvNodeConfig         = "VHOSTUSER_NODE_CONFIG"
	maxNodeConfigSize     = 16 << 10
)

// Defaults of the node's optional settings.
const (
	DefaultOVSDBSocket    = "unix:/var/run/openvswitch/db.sock"
	DefaultSocketDirGroup = 107
	// DefaultSocketDirMode: sticky and world-writable, the one kind of
	// directory in which fs.protected_symlinks keeps root from following
	// the pod's symlinks (see cni/sockdir).
	DefaultSocketDirMode = "1777"
	// DefaultDeviceInfoDir is where Multus asks plugins to write device-info.
	DefaultDeviceInfoDir = "/var/run/k8s.cni.cncf.io/devinfo"
)

// NodeConf is the node's part of the configuration: every setting that
// reaches a host path or decides who may use the socket directory. The
// installer DaemonSet writes it (values from its flags, set by kustomize);
// a missing file means the built-in defaults.
type NodeConf struct {
	KubeletRoot    string `json:"kubeletRoot,omitempty"`    // kubelet --root-dir
	ShortSocketDir string `json:"shortSocketDir,omitempty"` // directory of the short links OVS follows
	OVSDBSocket    string `json:"ovsdbSocket,omitempty"`    // "unix:<path>" or a path
	SocketDirGroup *int   `json:"socketDirGroup,omitempty"` // group of the per-interface directory
	SocketDirMode  string `json:"socketDirMode,omitempty"`  // octal mode of that directory
	LogFile        string `json:"logFile,omitempty"`        // "" means no log
	DeviceInfoDir  string `json:"deviceInfoDir,omitempty"`  // runtimeConfig.CNIDeviceInfoFile must be inside

	endpoint string
	mode     uint32
}

// Endpoint is the OVSDB endpoint in libovsdb form (unix:/path).
func (n NodeConf) Endpoint() string { return n.endpoint }

// Mode is the parsed SocketDirMode.
func (n NodeConf) Mode() uint32 { return n.mode }

// Group is the socket directory's gid, SocketDirGroup.
func (n NodeConf) Group() int { return *n.SocketDirGroup }

// NodeConfigFile is the node configuration file this process reads.
func NodeConfigFile() string {
	if f := os.Getenv(EnvNodeConfig); f != "" {
		return f
	}
	return DefaultNodeConfigFile
}

// LoadNode reads and validates the node configuration; a missing file gives
// the built-in defaults.
func LoadNode(path string) (NodeConf, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return ParseNode(nil)
	}
	if err != nil {
		return NodeConf{}, fmt.Errorf("node configuration %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNodeConfigSize+1))
	if err != nil {
		return NodeConf{}, fmt.Errorf("node configuration %s: %w", path, err)
	}
	n, err := ParseNode(b)
	if err != nil {
		return NodeConf{}, fmt.Errorf("node configuration %s: %w", path, err)
	}
	return n, nil
}

// ParseNode validates a node configuration (nil: none) and fills defaults.
// Unknown fields are errors: a typo must not silently fall back to a default.
func ParseNode(data []byte) (NodeConf, error) {
	var n NodeConf
	if len(data) > maxNodeConfigSize {
		return n, fmt.Errorf("%d bytes, the limit is %d", len(data), maxNodeConfigSize)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&n); err != nil {
			return n, fmt.Errorf("parse: %w", err)
		}
	}
	if n.KubeletRoot == "" {
		n.KubeletRoot = socketpath.DefaultKubeletRoot
	}
	if n.ShortSocketDir == "" {
		n.ShortSocketDir = socketpath.DefaultShortDir
	}
	l := socketpath.Layout{KubeletRoot: n.KubeletRoot, Volume: socketpath.DefaultVolume, ShortDir: n.ShortSocketDir}
	if err := l.Validate(); err != nil {
		return n, err
	}
	if n.OVSDBSocket == "" {
		n.OVSDBSocket = DefaultOVSDBSocket
	}
	ep, err := endpoint(n.OVSDBSocket)
	if err != nil {
		return n, err
	}
	n.endpoint = ep
	if n.SocketDirGroup == nil {
		v := DefaultSocketDirGroup
		n.SocketDirGroup = &v
	}
	if err := checkID("socketDirGroup", *n.SocketDirGroup); err != nil {
		return n, err
	}
	if n.SocketDirMode == "" {
		n.SocketDirMode = DefaultSocketDirMode
	}
	if n.mode, err = parseMode(n.SocketDirMode); err != nil {
		return n, err
	}
	if n.LogFile != "" {
		if namecheck.Path("logFile", n.LogFile) != nil {
			return n, fmt.Errorf(`"logFile" %q must be a clean absolute path`, n.LogFile)
		}
	}
	if n.DeviceInfoDir == "" {
		n.DeviceInfoDir = DefaultDeviceInfoDir
	}
	if err := checkDir("deviceInfoDir", n.DeviceInfoDir); err != nil {
		return n, err
	}
	return n, nil
}

// Marshal renders the node configuration as the installer writes it.
func (n NodeConf) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Layout is the node's directories with the default socket volume (a
// network may name another volume; see Conf.Layout).
func (n NodeConf) Layout() socketpath.Layout {
	return socketpath.Layout{KubeletRoot: n.KubeletRoot, Volume: socketpath.DefaultVolume, ShortDir: n.ShortSocketDir}
}
