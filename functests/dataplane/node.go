package dataplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

const protectedSymlinks = "/proc/sys/fs/protected_symlinks"

// prepareNode does what a node needs before the plugin may run
// (docs/install.md): the node configuration the installer DaemonSet would
// write (here pointing at the private OVS, kubelet root and short directory;
// the NAD carries none of it), and fs.protected_symlinks=1, without which
// the plugin refuses ADD. restore puts back what it changed.
func prepareNode(work string, ovs *ovsenv.OVS, layout socketpath.Layout) (restore func(), err error) {
	node := config.NodeConf{
		KubeletRoot:    layout.KubeletRoot,
		ShortSocketDir: layout.ShortDir,
		OVSDBSocket:    ovs.Endpoint(),
		LogFile:        filepath.Join(work, "cni.log"),
	}
	b, err := node.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := config.ParseNode(b); err != nil {
		return nil, fmt.Errorf("node configuration: %w", err)
	}
	file := filepath.Join(work, "node.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return nil, err
	}
	old, err := os.ReadFile(protectedSymlinks)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", protectedSymlinks, err)
	}
	if err := os.WriteFile(protectedSymlinks, []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("set fs.protected_symlinks=1 (a node prerequisite): %w", err)
	}
	// libcni runs the plugin with this process's environment.
	os.Setenv(config.EnvNodeConfig, file)
	return func() {
		os.Unsetenv(config.EnvNodeConfig)
		_ = os.WriteFile(protectedSymlinks, []byte(strings.TrimSpace(string(old))), 0o644)
	}, nil
}
