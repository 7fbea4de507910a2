// Package launcher does what virt-launcher does with a VMI and a hook sidecar,
// with KubeVirt's own code: convert the VMI to a libvirt domain, collect the
// sidecar from the hooks directory, call OnDefineDomain, and Shutdown.
//
// KubeVirt's hooks manager is hard-wired to /var/run/kubevirt-hooks, a
// machine-wide directory, so a Session holds an exclusive lock on it for its
// whole life: sessions of different test binaries (go test runs packages in
// parallel) and of the demo never overlap there.
//
// This package must never import our own hooks/ packages: KubeVirt's generated
// hooks code registers the same protobuf names, and one binary holding both
// panics at init. Our sidecar always runs as its own process.
package launcher

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/functests/filelock"
	vmispec "github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
	v1 "kubevirt.io/api/core/v1"
	kvlog "kubevirt.io/client-go/log"
	cmdv1 "kubevirt.io/kubevirt/pkg/handler-launcher-com/cmd/v1"
	"kubevirt.io/kubevirt/pkg/hooks"
	"kubevirt.io/kubevirt/pkg/network/domainspec"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter/arch"
	convertertypes "kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter/types"
)

// HooksDir is where virt-launcher looks for hook sidecars.
const HooksDir = hooks.HookSocketsSharedDirectory

// SidecarContainer is the name KubeVirt gives the first sidecar container
// and the sub-directory of HooksDir its socket lives in.
const SidecarContainer = "hook-sidecar-0"

// hostCellCPUs is the number of CPUs in each of the two NUMA cells of the
// node reported for dedicated-CPU guests.
const hostCellCPUs = 8

// hostTopology is the node KubeVirt would report: two cells of hostCellCPUs
// CPUs, 8 GiB each.
func hostTopology() *cmdv1.Topology {
	t := &cmdv1.Topology{}
	for cell := uint32(0); cell < 2; cell++ {
		c := &cmdv1.Cell{Id: cell, Memory: &cmdv1.Memory{Amount: 8 << 20, Unit: "KiB"}}
		for i := uint32(0); i < hostCellCPUs; i++ {
			c.Cpus = append(c.Cpus, &cmdv1.CPU{Id: cell*hostCellCPUs + i})
		}
		t.NumaCells = append(t.NumaCells, c)
	}
	return t
}

// podCPUSet is the pod's exclusive CPU set for n vCPUs: straddling the cell
// boundary, so that a NUMA passthrough guest gets two cells.
func podCPUSet(n int) []int {
	first := hostCellCPUs - n/2
	set := make([]int, n)
	for i := range set {
		set[i] = first + i
	}
	return set
}

// LogKubeVirtTo sends the log lines of KubeVirt's own code (converter, hooks
// manager) to w instead of stderr.
func LogKubeVirtTo(w io.Writer) { kvlog.Log.SetIOWriter(w) }

// Bindings is the network binding configuration of the KubeVirt CR as the
// tests register our plugin: a sidecar and no domainAttachmentType, so the
// converter emits no <interface> for it and the sidecar adds the device.
func Bindings() map[string]v1.InterfaceBindingPlugin {
	return map[string]v1.InterfaceBindingPlugin{
		vmispec.BindingName: {SidecarImage: "vhostuser-sidecar:test"},
	}
}

// Convert builds the domain virt-launcher would define for vmi, before any
// hook: KubeVirt's converter with the interface attachments virt-handler
// computes (for dedicated CPUs the converter pins them and maps NUMA cells
// against a two-cell host), then virt-launcher's defaults.
func Convert(vmi *v1.VirtualMachineInstance) (*api.Domain, error) {
	domain := &api.Domain{}
	c := &convertertypes.ConverterContext{
		Architecture:                    arch.NewConverter(runtime.GOARCH),
		VirtualMachine:                  vmi,
		AllowEmulation:                  true,
		SMBios:                          &cmdv1.SMBios{},
		DomainAttachmentByInterfaceName: domainspec.DomainAttachmentByInterfaceName(vmi.Spec.Domain.Devices.Interfaces, Bindings()),
	}
	if vmi.Spec.Domain.CPU != nil && vmi.Spec.Domain.CPU.DedicatedCPUPlacement {
		n := int(vmi.Spec.Domain.CPU.Cores * vmi.Spec.Domain.CPU.Sockets * vmi.Spec.Domain.CPU.Threads)
		c.CPUSet = podCPUSet(n)
		c.Topology = hostTopology()
	}
	if err := converter.Convert_v1_VirtualMachineInstance_To_api_Domain(vmi, domain, c); err != nil {
		return nil, fmt.Errorf("convert VMI %s: %w", vmi.Name, err)
	}
	// Defaults virt-launcher sets after converting (os type hvm, qemu namespace).
	api.NewDefaulter(c.Architecture.GetArchitecture()).SetObjectDefaults_Domain(domain)
	return domain, nil
}

// Session is one sidecar process registered with KubeVirt's hooks manager.
type Session struct {
	SocketDir string // HooksDir/hook-sidecar-0, the sidecar's socket directory
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	unlock    func()
	createdHD bool
	closed    bool
}

// StartSidecar locks HooksDir, prepares HooksDir/hook-sidecar-0 like the
// virt-launcher pod's volume mount, starts the sidecar binary with args (the
// caller passes the socket directory flag, see SocketDir), and collects it
// with KubeVirt's hooks manager. stdout and stderr of the sidecar go to out.
// argsFor receives the socket directory and returns the sidecar's arguments.
func StartSidecar(ctx context.Context, bin string, argsFor func(socketDir string) []string, env []string, out *os.File) (*Session, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("sidecar binary %s: %w (run make build or set VHOSTUSER_BIN)", bin, err)
	}
	unlock, err := filelock.Lock(HooksDir + ".lock")
	if err != nil {
		return nil, err
	}
	s := &Session{SocketDir: filepath.Join(HooksDir, SidecarContainer), unlock: unlock}
	if _, err := os.Stat(HooksDir); errors.Is(err, os.ErrNotExist) {
		s.createdHD = true
	}
	// Under the lock nothing else uses the directory: whatever is left in it
	// comes from an aborted run and would be dialed by the manager.
	if err := os.RemoveAll(s.SocketDir); err != nil {
		s.release()
		return nil, fmt.Errorf("remove stale %s: %w", s.SocketDir, err)
	}
	if err := os.MkdirAll(s.SocketDir, 0o755); err != nil {
		s.release()
		return nil, fmt.Errorf("create %s: %w", s.SocketDir, err)
	}
	s.cmd = exec.Command(bin, argsFor(s.SocketDir)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		s.release()
		return nil, fmt.Errorf("start sidecar %s: %w", bin, err)
	}
	s.exited = make(chan struct{})
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()

	collected := make(chan error, 1)
	go func() { collected <- hooks.GetManager().Collect(1, 30*time.Second) }()
	select {
	case err = <-collected:
	case <-s.exited:
		err = fmt.Errorf("sidecar exited before it was collected: %v", s.exitErr)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("collect sidecar from %s: %w", s.SocketDir, err)
	}
	return s, nil
}

// OnDefineDomain runs the hooks on spec through KubeVirt's manager and
// returns the raw XML virt-launcher would give libvirt.
func (s *Session) OnDefineDomain(spec *api.DomainSpec, vmi *v1.VirtualMachineInstance) (string, error) {
	return hooks.GetManager().OnDefineDomain(spec, vmi)
}

// Redefine is virt-launcher's view of a domain between two defines: the XML
// parsed back into KubeVirt's own schema (which drops what it does not know).
func Redefine(domainXML string) (*api.DomainSpec, error) {
	spec := &api.DomainSpec{}
	if err := xml.Unmarshal([]byte(domainXML), spec); err != nil {
		return nil, fmt.Errorf("parse domain XML into KubeVirt's schema: %w", err)
	}
	return spec, nil
}

// Close calls Shutdown, waits for the sidecar to exit (killing it after 10 s),
// removes the socket directory and releases the lock. It returns the
// sidecar's exit error: nil means exit status 0.
func (s *Session) Close() error {
	if s.closed {
		return s.exitErr
	}
	s.closed = true
	var errs []error
	select {
	case <-s.exited:
	default:
		if err := hooks.GetManager().Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("hooks Shutdown: %w", err))
		}
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.exited
			errs = append(errs, errors.New("sidecar did not exit within 10 s of Shutdown; killed"))
		}
	}
	if s.exitErr != nil {
		errs = append(errs, fmt.Errorf("sidecar exit: %w", s.exitErr))
	}
	s.release()
	return errors.Join(errs...)
}

func (s *Session) release() {
	os.RemoveAll(s.SocketDir)
	if s.createdHD {
		os.Remove(HooksDir)
	}
	s.unlock()
}
