package server

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// MaxNetworkInfoWait keeps the wait for network-info well inside
// virt-launcher's one-minute OnDefineDomain timeout.
const MaxNetworkInfoWait = 45 * time.Second

// Config is the sidecar's configuration.
type Config struct {
	BindingName     string        // network binding name (binding.name in the VMI)
	SocketPath      string        // unix socket to listen on
	NetworkInfoPath string        // KubeVirt's network-info downward API file
	NetworkInfoWait time.Duration // 0: read network-info if present; >0: wait this long for it
	MaxQueues       uint          // multiqueue cap; 0 means domain.DefaultMaxQueues
	Logger          *slog.Logger  // nil means slog.Default()
}

func (cfg Config) check() error {
	if cfg.BindingName == "" {
		return fmt.Errorf("binding name is empty: set -binding or NETWORK_BINDING_PLUGIN_NAME")
	}
	if cfg.SocketPath == "" || !filepath.IsAbs(cfg.SocketPath) {
		return fmt.Errorf("socket path %q must be absolute", cfg.SocketPath)
	}
	if len(cfg.SocketPath) > socketpath.MaxSocketPath {
		return fmt.Errorf("socket path %q is %d bytes, the limit is %d", cfg.SocketPath, len(cfg.SocketPath), socketpath.MaxSocketPath)
	}
	if cfg.NetworkInfoWait < 0 || cfg.NetworkInfoWait >= MaxNetworkInfoWait {
		return fmt.Errorf("network-info wait %s must be between 0 and %s: virt-launcher gives OnDefineDomain one minute", cfg.NetworkInfoWait, MaxNetworkInfoWait)
	}
	return nil
}
