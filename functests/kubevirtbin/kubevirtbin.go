// Package kubevirtbin builds the KubeVirt commands a virt-launcher pod runs
// - virt-launcher and virt-launcher-monitor of kubevirt.io/kubevirt,
// KubeVirt's hook sidecar-shim - and our test-only hook, and finds KubeVirt's
// own configuration files of the virt-launcher image in the module cache.
//
// KubeVirt's commands come from hack/cluster/kubevirt, the tools module that
// make cluster-up builds KubeVirt from, not from this module: one module
// graph and the same flags make both builds one set of compiled packages in
// the Go build cache, so the cluster's virt-launcher costs only its link
// (the cold compile is about 4.5 minutes on 2 cores). Build checks that both
// modules name the same KubeVirt version.
//
// virt-launcher links libvirt through cgo with the libvirt_dlopen tag: it
// loads Debian's libvirt.so.0 at run time, so no libvirt-dev is needed. Its
// libguestfs.org/libnbd import (backup only) resolves to ../libnbdstub.
package kubevirtbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Module is the KubeVirt module the commands come from.
const Module = "kubevirt.io/kubevirt"

// NoDWARF is the compile flag of every KubeVirt build here (this package,
// hack/demo-prepare.sh, hack/cluster/kubevirt.sh): no debug information,
// about 9% less cold compile time; one flag set, one set of cached packages.
const NoDWARF = "-gcflags=all=-dwarf=false"

// Paths are the built commands.
type Paths struct {
	Dir string // virt-launcher, virt-launcher-monitor, sidecar-shim
	// HookDir holds only onDefineDomain, the test-only hook (apart from
	// Dir, which becomes part of the compute container's /usr/bin).
	HookDir string
	// LauncherConfDir is cmd/virt-launcher of the KubeVirt module: qemu.conf
	// and virtqemud.conf of the virt-launcher image.
	LauncherConfDir string
}

// Build builds the commands into dir (go build skips what is up to date)
// and returns where they are. It runs the go command in this module's
// directory, which it finds from the working directory (a package
// directory of the module, or the module root).
func Build(ctx context.Context, dir string) (Paths, time.Duration, error) {
	start := time.Now()
	p := Paths{Dir: dir, HookDir: dir + "-test-only-hook"}
	goBin, err := exec.LookPath("go")
	if err != nil {
		// Not on PATH: the toolchain this binary was built with.
		root := os.Getenv("GOROOT")
		if root == "" {
			root = runtime.GOROOT() //nolint:staticcheck // the build's toolchain is what we want
		}
		goBin = filepath.Join(root, "bin", "go")
	}
	modDir, err := goOut(ctx, goBin, "", "env", "GOMOD")
	if err != nil || !strings.HasSuffix(modDir, "/functests/go.mod") {
		return p, 0, fmt.Errorf("find the functests module (run from functests/): GOMOD=%q %v", modDir, err)
	}
	modDir = filepath.Dir(modDir)
	kvDir := filepath.Join(modDir, "..", "hack", "cluster", "kubevirt")
	if err := sameKubeVirt(ctx, goBin, modDir, kvDir); err != nil {
		return p, 0, err
	}
	builds := []struct {
		dir  string
		args []string
	}{
		// The flags of hack/cluster/kubevirt.sh's virt-launcher build (ldflags
		// touch only the link), so that its compile is this one's.
		{kvDir, []string{"-tags", "libvirt_dlopen", NoDWARF, "-o", dir + "/", Module + "/cmd/virt-launcher", Module + "/cmd/virt-launcher-monitor"}},
		{kvDir, []string{NoDWARF, "-o", filepath.Join(dir, "sidecar-shim"), Module + "/cmd/sidecars"}},
		{modDir, []string{"-o", filepath.Join(p.HookDir, "onDefineDomain"), "./cmd/test-only-msix-vectors0"}},
	}
	for _, b := range builds {
		args := append([]string{"build", "-trimpath"}, b.args...)
		if _, err := goOut(ctx, goBin, b.dir, args...); err != nil {
			return p, time.Since(start), err
		}
	}
	p.LauncherConfDir, err = goOut(ctx, goBin, kvDir, "list", "-f", "{{.Dir}}", Module+"/cmd/virt-launcher")
	if err != nil {
		return p, time.Since(start), err
	}
	for _, f := range []string{"qemu.conf", "virtqemud.conf"} {
		if _, err := os.Stat(filepath.Join(p.LauncherConfDir, f)); err != nil {
			return p, time.Since(start), fmt.Errorf("KubeVirt's virt-launcher %s: %w", f, err)
		}
	}
	return p, time.Since(start), nil
}

// sameKubeVirt checks that the tools module builds the KubeVirt version
// this module's tests speak to (cmd-client, domain types).
func sameKubeVirt(ctx context.Context, goBin, modDir, kvDir string) error {
	want, err := goOut(ctx, goBin, modDir, "list", "-m", "-f", "{{.Version}}", Module)
	if err != nil {
		return err
	}
	got, err := goOut(ctx, goBin, kvDir, "list", "-m", "-f", "{{.Version}}", Module)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s is %s in hack/cluster/kubevirt/go.mod but %s in functests/go.mod: bump both to one version", Module, got, want)
	}
	return nil
}

func goOut(ctx context.Context, goBin, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	// cgo for virt-launcher's libvirt binding; the Makefile exports 0.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out)), nil
}
