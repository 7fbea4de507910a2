//go:build integration

package plugin_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// One private OVS and one plugin directory (vhostuser, host-local, static)
// for the whole package run; every test gets fresh bridges and directories.
var (
	ovs       *ovsenv.OVS
	pluginDir string
	bridgeSeq atomic.Int64
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envListenAsQEMU); path != "" {
		os.Exit(listenAsQEMU(path)) // the child of qemuListener, running as uid 107
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the integration tests need root (network namespaces, chown to uid 107)")
		return 1
	}
	// The plugin refuses to work without fs.protected_symlinks=1 (0 on these
	// machines, the kernel default): set it for the run, restore it after.
	old, err := setProtectedSymlinks("1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: set fs.protected_symlinks:", err)
		return 1
	}
	defer func() { _, _ = setProtectedSymlinks(old) }()
	dir, err := os.MkdirTemp("", "vhu-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginDir = dir
	// uid 107 runs a copy of this test binary (qemuListener): the build
	// directory is root's alone.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if b, err := os.ReadFile(os.Args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	} else if err := os.WriteFile(filepath.Join(dir, "qemu-helper.test"), b, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := buildPlugins(dir); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	ovs, err = ovsenv.Start(ctx, ovsenv.Options{Name: "vhucni"})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start OVS:", err)
		return 1
	}
	defer ovs.Stop()
	return m.Run()
}

// buildPlugins puts the plugin (from $VHOSTUSER_BIN when set, else built
// now) and the reference IPAM plugins from containernetworking/plugins in dir.
func buildPlugins(dir string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	pkgs := []string{"github.com/containernetworking/plugins/plugins/ipam/host-local",
		"github.com/containernetworking/plugins/plugins/ipam/static"}
	if bin := os.Getenv("VHOSTUSER_BIN"); bin != "" {
		b, err := os.ReadFile(filepath.Join(bin, "vhostuser"))
		if err != nil {
			return fmt.Errorf("VHOSTUSER_BIN is set but: %w (run make build)", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "vhostuser"), b, 0o755); err != nil {
			return err
		}
	} else {
		pkgs = append(pkgs, "./cmd/vhostuser")
	}
	// The IPAM plugins are pinned by the tools module (hack/tools), the
	// plugin by the main module.
	for modDir, pkgs := range map[string][]string{filepath.Join(root, "hack", "tools"): pkgs[:2], root: pkgs[2:]} {
		if len(pkgs) == 0 {
			continue
		}
		cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
		cmd.Dir = modDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %v: %w\n%s", pkgs, err, out)
		}
	}
	return nil
}

// setProtectedSymlinks sets fs.protected_symlinks and returns the old value.
func setProtectedSymlinks(v string) (string, error) {
	const file = "/proc/sys/fs/protected_symlinks"
	old, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(old)), os.WriteFile(file, []byte(v), 0o644)
}
