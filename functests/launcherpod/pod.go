// Package launcherpod runs a virt-launcher pod without Kubernetes, the way
// kubelet and virt-handler run it, with KubeVirt's real binaries:
//
//   - container "compute": virt-launcher-monitor -> virt-launcher (KubeVirt's
//     commands, see package kubevirtbin) as uid/gid 107 (--run-as-nonroot,
//     --allow-emulation, --hook-sidecars 2), in its own mount and PID
//     namespace and the pod's network namespace. Its view: the pod's
//     hook-sidecar-sockets emptyDir at /var/run/kubevirt-hooks (the very
//     directory the CNI prepared), emptyDirs at /var/run/kubevirt,
//     /var/run/kubevirt/sockets, /var/run/kubevirt-private,
//     /var/run/kubevirt-ephemeral-disks and /var/run/libvirt, KubeVirt's own
//     qemu.conf and virtqemud.conf in /etc/libvirt, a user qemu (107), the
//     XDG variables of KubeVirt's pod template, and a /dev without kvm
//     (these machines have a /dev/kvm that does not work: libvirt would
//     re-probe QEMU on every define while it sees it);
//   - container "hook-sidecar-0": our vhostuser-sidecar as uid 107, the same
//     volume mounted with subPath hook-sidecar-0 at /var/run/kubevirt-hooks;
//   - container "hook-sidecar-1": TEST-ONLY, KubeVirt's sidecar-shim with
//     the onDefineDomain program of package testonlyhook (the QEMU 7.2 TCG
//     MSI-X workaround), subPath hook-sidecar-1. It is started after ours
//     is listening, so virt-launcher's hooks manager collects and calls it
//     after ours.
//
// virt-handler's side: KubeVirt's notify server and pipe (Handler) and
// KubeVirt's cmd-client on the pod's launcher socket (Client).
//
// Debian has no virtqemud: /usr/sbin/virtqemud in the compute container is a
// shim that execs Debian's libvirtd (the monolithic daemon serves the same
// API) and links the session socket to the name virt-launcher dials. The
// kernel and initrd of a kernelBoot VMI are bind-mounted where virt-handler
// mounts a kernel-boot container's artifacts.
package launcherpod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	v1 "kubevirt.io/api/core/v1"
	cmdv1 "kubevirt.io/kubevirt/pkg/handler-launcher-com/cmd/v1"
	"kubevirt.io/kubevirt/pkg/network/domainspec"
	cmdclient "kubevirt.io/kubevirt/pkg/virt-handler/cmd-client"

	"github.com/kubevirt-vhostuser/vhostuser/functests/kubevirtbin"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcher"
	"github.com/kubevirt-vhostuser/vhostuser/functests/podcontainer"
)

// QEMU's uid and gid in KubeVirt (the non-root virt-launcher user).
const (
	QEMUUser  = 107
	QEMUGroup = 107
)

// Names of the sidecar containers, as KubeVirt numbers them.
const (
	OurSidecar      = "hook-sidecar-0"
	TestOnlySidecar = "hook-sidecar-1"
)

// Config describes one pod.
type Config struct {
	Dir   string // the pod's directories on the host (keep it short: sockets live here)
	Netns string // path of the pod's network namespace
	// HookVolume is the hook-sidecar-sockets emptyDir on the host.
	HookVolume string
	Bins       kubevirtbin.Paths
	SidecarBin string   // our vhostuser-sidecar
	SidecarEnv []string // extra environment of our sidecar
	// Kernel and Initrd are the artifacts of the VMI's kernelBoot container.
	Kernel, Initrd string
	VMI            *v1.VirtualMachineInstance
	Handler        *Handler
	Out            func(container string) (io.Writer, error)
	// ReadyTimeout bounds the wait for the launcher socket (default 2 min).
	ReadyTimeout time.Duration
}

// Pod is a running virt-launcher pod.
type Pod struct {
	Config
	Public, Sockets, Private, LibvirtRun, Ephemeral string // emptyDirs on the host
	Containers                                      map[string]*podcontainer.Container
	Client                                          cmdclient.LauncherClient
	cancel                                          context.CancelFunc
}

// Start creates the pod's directories, the notify pipe and the three
// containers, and connects KubeVirt's cmd-client once virt-launcher marked
// itself ready. On error everything started is stopped again.
func Start(ctx context.Context, cfg Config) (p *Pod, err error) {
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 2 * time.Minute
	}
	p = &Pod{Config: cfg, Containers: map[string]*podcontainer.Container{}}
	defer func() {
		if err != nil {
			p.Kill()
		}
	}()
	p.Public = filepath.Join(cfg.Dir, "public")
	p.Sockets = filepath.Join(cfg.Dir, "sockets")
	p.Private = filepath.Join(cfg.Dir, "private")
	p.LibvirtRun = filepath.Join(cfg.Dir, "libvirt")
	p.Ephemeral = filepath.Join(cfg.Dir, "ephemeral")
	etc := filepath.Join(cfg.Dir, "etc")
	sbin := filepath.Join(cfg.Dir, "sbin")
	// emptyDirs are world-writable, as kubelet makes them.
	for _, d := range []string{p.Public, p.Sockets, p.Private, p.LibvirtRun, p.Ephemeral,
		filepath.Join(cfg.HookVolume, OurSidecar), filepath.Join(cfg.HookVolume, TestOnlySidecar)} {
		if err := mkdirMode(d, 0o777); err != nil {
			return p, err
		}
	}
	if err := writeImageFiles(etc, sbin, cfg.Bins); err != nil {
		return p, err
	}

	pctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	cfg.Handler.Register(cfg.VMI)
	if err := cfg.Handler.injectNotifyPipe(pctx, p.Public, QEMUUser, QEMUGroup); err != nil {
		return p, err
	}

	// Our sidecar first, then the test-only one: each is listening before
	// the next container starts, so the hooks manager, which calls sidecars
	// in the order it collected them, calls ours first.
	sidecarBase := []podcontainer.Mount{
		{Type: "tmpfs", Target: "/run", Data: "mode=755"},
		{Type: "proc", Target: "/proc"},
		{Type: "tmpfs", Target: "/usr/local/bin", Data: "mode=755"},
	}
	ours := podcontainer.Spec{
		Name: OurSidecar, UID: QEMUUser, GID: QEMUGroup, Groups: []uint32{QEMUGroup}, Netns: cfg.Netns,
		Args: []string{"/usr/local/bin/vhostuser-sidecar"},
		Env:  append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "CONTAINER_NAME=" + OurSidecar}, cfg.SidecarEnv...),
		Mounts: append(append([]podcontainer.Mount{}, sidecarBase...),
			podcontainer.Mount{Source: cfg.SidecarBin, Target: "/usr/local/bin/vhostuser-sidecar", ReadOnly: true},
			podcontainer.Mount{Source: filepath.Join(cfg.HookVolume, OurSidecar), Target: "/var/run/kubevirt-hooks"}),
	}
	shim := podcontainer.Spec{
		Name: TestOnlySidecar, UID: QEMUUser, GID: QEMUGroup, Groups: []uint32{QEMUGroup}, Netns: cfg.Netns,
		Args: []string{"/usr/local/bin/sidecar-shim", "--version", "v1alpha3"},
		Env:  []string{"PATH=/usr/local/bin:/usr/bin:/bin", "CONTAINER_NAME=" + TestOnlySidecar},
		Mounts: append(append([]podcontainer.Mount{}, sidecarBase...),
			podcontainer.Mount{Source: filepath.Join(cfg.Bins.Dir, "sidecar-shim"), Target: "/usr/local/bin/sidecar-shim", ReadOnly: true},
			podcontainer.Mount{Source: filepath.Join(cfg.Bins.HookDir, "onDefineDomain"), Target: "/usr/local/bin/onDefineDomain", ReadOnly: true},
			podcontainer.Mount{Source: filepath.Join(cfg.HookVolume, TestOnlySidecar), Target: "/var/run/kubevirt-hooks"}),
	}
	for _, s := range []podcontainer.Spec{ours, shim} {
		if err := p.start(s); err != nil {
			return p, err
		}
		if err := p.waitFile(ctx, s.Name, 30*time.Second, func() bool {
			entries, _ := os.ReadDir(filepath.Join(cfg.HookVolume, s.Name))
			for _, e := range entries {
				if e.Type()&os.ModeSocket != 0 {
					return true
				}
			}
			return false
		}); err != nil {
			return p, fmt.Errorf("%s socket: %w", s.Name, err)
		}
	}

	if err := p.start(p.computeSpec(etc, sbin)); err != nil {
		return p, err
	}
	launcherSock := filepath.Join(p.Sockets, "launcher-sock")
	if err := p.waitFile(ctx, "compute", cfg.ReadyTimeout, func() bool {
		_, err := os.Stat(launcherSock)
		return err == nil
	}); err != nil {
		return p, fmt.Errorf("virt-launcher not ready: %w", err)
	}
	p.Client, err = cmdclient.NewClient(launcherSock)
	if err != nil {
		return p, fmt.Errorf("cmd-client: %w", err)
	}
	if err := p.Client.Ping(); err != nil {
		return p, fmt.Errorf("cmd-client ping: %w", err)
	}
	return p, nil
}

func (p *Pod) computeSpec(etc, sbin string) podcontainer.Spec {
	kernelBoot := "/var/run/kubevirt/container-disks/kernel-boot"
	vmi := p.VMI
	mounts := []podcontainer.Mount{
		{Type: "tmpfs", Target: "/run", Data: "mode=755"},
		{Type: "proc", Target: "/proc"},
		// A /dev without kvm: the few nodes QEMU and libvirt use.
		{Type: "tmpfs", Target: "/dev", Data: "mode=755"},
	}
	mounts = append(mounts,
		podcontainer.Mount{Type: "devpts", Target: "/dev/pts", Data: "newinstance,ptmxmode=0666,mode=0620"},
		podcontainer.Mount{Type: "tmpfs", Target: "/dev/shm", Data: "mode=1777"},
		podcontainer.Mount{Source: p.HookVolume, Target: "/var/run/kubevirt-hooks"},
		podcontainer.Mount{Source: p.Public, Target: "/var/run/kubevirt"},
		podcontainer.Mount{Source: p.Sockets, Target: "/var/run/kubevirt/sockets"},
		podcontainer.Mount{Source: p.Private, Target: "/var/run/kubevirt-private"},
		podcontainer.Mount{Source: p.Ephemeral, Target: "/var/run/kubevirt-ephemeral-disks"},
		podcontainer.Mount{Source: p.LibvirtRun, Target: "/var/run/libvirt"},
		podcontainer.Mount{Source: filepath.Join(etc, "libvirt"), Target: "/etc/libvirt"},
		podcontainer.Mount{Source: filepath.Join(etc, "passwd"), Target: "/etc/passwd", ReadOnly: true},
		podcontainer.Mount{Source: filepath.Join(etc, "group"), Target: "/etc/group", ReadOnly: true},
		podcontainer.Mount{Type: "overlay", Target: "/usr/bin", Data: "lowerdir=" + p.Bins.Dir + ":/usr/bin"},
		podcontainer.Mount{Type: "overlay", Target: "/usr/sbin", Data: "lowerdir=" + sbin + ":/usr/sbin"},
	)
	if kb := vmi.Spec.Domain.Firmware; kb != nil && kb.KernelBoot != nil && kb.KernelBoot.Container != nil {
		c := kb.KernelBoot.Container
		mounts = append(mounts,
			podcontainer.Mount{Source: p.Kernel, Target: filepath.Join(kernelBoot, filepath.Base(c.KernelPath)), ReadOnly: true},
			podcontainer.Mount{Source: p.Initrd, Target: filepath.Join(kernelBoot, filepath.Base(c.InitrdPath)), ReadOnly: true})
	}
	grace := int64(30)
	if vmi.Spec.TerminationGracePeriodSeconds != nil {
		grace = *vmi.Spec.TerminationGracePeriodSeconds
	}
	return podcontainer.Spec{
		Name: "compute", UID: QEMUUser, GID: QEMUGroup, Groups: []uint32{QEMUGroup}, Netns: p.Netns,
		// virt-launcher-monitor passes CAP_NET_BIND_SERVICE on as an
		// ambient capability: the pod template adds it to the container.
		Caps: []uintptr{unix.CAP_NET_BIND_SERVICE},
		Args: []string{"/usr/bin/virt-launcher-monitor",
			"--qemu-timeout", "240s",
			"--name", vmi.Name,
			"--uid", string(vmi.UID),
			"--namespace", vmi.Namespace,
			"--kubevirt-share-dir", "/var/run/kubevirt",
			"--ephemeral-disk-dir", "/var/run/kubevirt-ephemeral-disks",
			"--container-disk-dir", "/var/run/kubevirt/container-disks",
			"--grace-period-seconds", strconv.FormatInt(grace+15, 10),
			"--hook-sidecars", "2",
			"--ovmf-path", "/usr/share/OVMF",
			"--run-as-nonroot",
			"--allow-emulation",
		},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=/",
			// KubeVirt's pod template for non-root VMIs.
			"XDG_CACHE_HOME=/var/run/kubevirt-private",
			"XDG_CONFIG_HOME=/var/run/kubevirt-private",
			"XDG_RUNTIME_DIR=/var/run",
		},
		Mounts:  mounts,
		Devices: []string{"null", "zero", "full", "random", "urandom", "tty"},
		Symlinks: []podcontainer.Symlink{
			{Target: "pts/ptmx", Path: "/dev/ptmx"},
			{Target: "/proc/self/fd", Path: "/dev/fd"},
		},
	}
}

// Options is what virt-handler passes with SyncVirtualMachine: the
// interface attachments of the cluster's network bindings (ours has none,
// so KubeVirt's converter emits no <interface> and our sidecar adds it).
func Options(vmi *v1.VirtualMachineInstance) *cmdv1.VirtualMachineOptions {
	return &cmdv1.VirtualMachineOptions{
		Topology:                  &cmdv1.Topology{},
		DisksInfo:                 map[string]*cmdv1.DiskInfo{},
		InterfaceDomainAttachment: domainspec.DomainAttachmentByInterfaceName(vmi.Spec.Domain.Devices.Interfaces, launcher.Bindings()),
		ClusterConfig:             &cmdv1.ClusterConfig{BochsDisplayForEFIGuests: true},
	}
}

// Sync is virt-handler's SyncVirtualMachine.
func (p *Pod) Sync() error {
	if err := p.Client.SyncVirtualMachine(p.VMI, Options(p.VMI)); err != nil {
		return fmt.Errorf("SyncVirtualMachine %s: %w", p.VMI.Name, err)
	}
	return nil
}

// QEMUPid finds the pod's QEMU on the host: the qemu-system process in the
// compute container's PID namespace that runs a domain. libvirt names a
// domain's QEMU with -name guest=<domain>; it also starts short-lived
// qemu-system processes of its own in the same namespace (capability probes,
// -machine none, no -name), which must not be taken for the VM.
func (p *Pod) QEMUPid() (int, error) {
	c := p.Containers["compute"]
	if c == nil {
		return 0, errors.New("no compute container")
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c.Pid()))
	if err != nil {
		return 0, err
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if !strings.HasPrefix(string(comm), "qemu-system") {
			continue
		}
		if n, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); n != ns {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), "\x00-name\x00guest=") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no qemu-system process running a domain (-name guest=...) in the PID namespace of %s", p.VMI.Name)
}

// WaitExit waits for every container to exit by itself (virt-launcher after
// its domain is gone, the sidecars after the hooks Shutdown call) and
// returns their exit errors.
func (p *Pod) WaitExit(ctx context.Context) error {
	var errs []error
	for name, c := range p.Containers {
		select {
		case <-c.Done():
			if c.Err() != nil {
				errs = append(errs, fmt.Errorf("container %s: %w", name, c.Err()))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("container %s still running: %w", name, ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// Kill stops whatever still runs of the pod and the notify pipe.
func (p *Pod) Kill() {
	if p.Client != nil {
		p.Client.Close()
		p.Client = nil
	}
	for _, c := range p.Containers {
		_, _ = c.Stop(5 * time.Second)
	}
	if p.cancel != nil {
		p.cancel()
	}
}

func (p *Pod) start(s podcontainer.Spec) error {
	out, err := p.Out(s.Name)
	if err != nil {
		return err
	}
	c, err := podcontainer.Start(s, out)
	if err != nil {
		return err
	}
	p.Containers[s.Name] = c
	return nil
}

func (p *Pod) waitFile(ctx context.Context, container string, timeout time.Duration, ok func() bool) error {
	c := p.Containers[container]
	deadline := time.After(timeout)
	for !ok() {
		select {
		case <-c.Done():
			return fmt.Errorf("container %s exited: %v", container, c.Err())
		case <-deadline:
			return fmt.Errorf("container %s: not ready after %s", container, timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func mkdirMode(d string, mode os.FileMode) error {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	return os.Chmod(d, mode)
}

// writeImageFiles writes what the virt-launcher image would hold and the
// host does not: KubeVirt's qemu.conf and virtqemud.conf (read from the
// KubeVirt module), a virtlogd.conf with the defaults, passwd and group with
// the qemu user, and the virtqemud shim.
func writeImageFiles(etc, sbin string, bins kubevirtbin.Paths) error {
	lib := filepath.Join(etc, "libvirt")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"qemu.conf", "virtqemud.conf"} {
		b, err := os.ReadFile(filepath.Join(bins.LauncherConfDir, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(lib, f), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(lib, "virtlogd.conf"), []byte("# defaults\n"), 0o644); err != nil {
		return err
	}
	for _, f := range []struct{ name, line string }{
		{"passwd", "qemu:x:107:107:qemu user:/:/sbin/nologin\n"},
		{"group", "qemu:x:107:\n"},
	} {
		host, err := os.ReadFile("/etc/" + f.name)
		if err != nil {
			return err
		}
		var keep []string
		for _, l := range strings.SplitAfter(string(host), "\n") {
			// The image's qemu account replaces any host entry with its id or name.
			fields := strings.Split(l, ":")
			if len(fields) > 2 && (fields[0] == "qemu" || fields[2] == "107") {
				continue
			}
			if l != "" {
				keep = append(keep, l)
			}
		}
		s := strings.Join(keep, "")
		if !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		if err := os.WriteFile(filepath.Join(etc, f.name), []byte(s+f.line), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(sbin, 0o755); err != nil {
		return err
	}
	shim := `#!/bin/sh
# virtqemud stand-in: Debian ships only the monolithic libvirtd, which serves
# the same API. Non-root, virt-launcher dials $XDG_RUNTIME_DIR/libvirt/virtqemud-sock;
# libvirtd's session socket is libvirt-sock in the same directory.
ln -sf libvirt-sock "${XDG_RUNTIME_DIR:-/var/run}/libvirt/virtqemud-sock"
exec /usr/sbin/libvirtd "$@"
`
	return os.WriteFile(filepath.Join(sbin, "virtqemud"), []byte(shim), 0o755)
}
