package dataplane

import (
	"fmt"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// TestBoot is what MakeRunnableOnThisHost needs to know about the local run.
type TestBoot struct {
	Kernel, Initrd, Cmdline string            // the test guest
	ConsoleLog              string            // file the serial console is written to
	Layout                  socketpath.Layout // the CNI's layout on this host
	PodUID                  string            // the virt-launcher pod this domain belongs to
}

// MakeRunnableOnThisHost is the ONLY place where the domain our sidecar
// returned is changed before libvirt starts it. Every change is forced by
// running outside a virt-launcher pod, under TCG, with a test guest:
//
//   - type 'qemu' (TCG): there is no /dev/kvm here;
//   - direct kernel boot of the test guest (kernel, initrd, cmdline): the VMI
//     has no disk;
//   - every vhost-user socket path, which the sidecar wrote in the compute
//     container's view (/var/run/kubevirt-hooks/vhostuser/<ifname>/vhost.sock),
//     becomes the host's view of the same socket through pkg/socketpath: the
//     short link path (Paths.OVSSocket), because the full kubelet path of the
//     emptyDir is longer than a unix socket path may be. QEMU thus creates the
//     socket in the very directory the CNI made, where OVS connects to it;
//   - the TCG MSI-X workaround: <qemu:override> sets vectors=0 on every
//     vhost-user NIC (QEMU 7.2 under TCG segfaults in vhost_net_start with
//     MSI-X); production KVM hosts never need it and the sidecar never emits it;
//   - what only exists inside a virt-launcher pod is removed: the pod network
//     interface (its tap device is made by virt-launcher), the VNC socket in
//     /var/run/kubevirt-private, and the serial console socket there, which
//     becomes a file the test reads.
//
// Nothing else is touched: memory backing, NUMA, CPU, the vhost-user
// interfaces' other attributes are exactly what the sidecar produced.
func MakeRunnableOnThisHost(sidecarXML string, b TestBoot) (string, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(sidecarXML); err != nil {
		return "", fmt.Errorf("parse sidecar domain XML: %w", err)
	}
	d.Type = "qemu"
	if d.OS == nil {
		d.OS = &libvirtxml.DomainOS{}
	}
	d.OS.Kernel, d.OS.Initrd, d.OS.Cmdline = b.Kernel, b.Initrd, b.Cmdline
	if d.Devices == nil {
		return "", fmt.Errorf("domain has no <devices>")
	}

	var override libvirtxml.DomainQEMUOverride
	var ifaces []libvirtxml.DomainInterface
	for _, iface := range d.Devices.Interfaces {
		vu := iface.Source
		if vu == nil || vu.VHostUser == nil {
			continue // the pod network: its tap exists only in a virt-launcher pod
		}
		if vu.VHostUser.Chardev == nil || vu.VHostUser.Chardev.UNIX == nil {
			return "", fmt.Errorf("vhost-user interface has no unix source")
		}
		hostPath, err := hostSocket(vu.VHostUser.Chardev.UNIX.Path, b)
		if err != nil {
			return "", err
		}
		vu.VHostUser.Chardev.UNIX.Path = hostPath
		if iface.Alias == nil || iface.Alias.Name == "" {
			return "", fmt.Errorf("vhost-user interface on %s has no alias for the MSI-X override", hostPath)
		}
		override.Devices = append(override.Devices, libvirtxml.DomainQEMUOverrideDevice{
			Alias: iface.Alias.Name,
			Frontend: libvirtxml.DomainQEMUOverrideFrontend{Properties: []libvirtxml.DomainQEMUOverrideProperty{
				{Name: "vectors", Type: "unsigned", Value: "0"},
			}},
		})
		ifaces = append(ifaces, iface)
	}
	if len(ifaces) == 0 {
		return "", fmt.Errorf("domain has no vhost-user interface")
	}
	d.Devices.Interfaces = ifaces
	d.QEMUOverride = &override

	d.Devices.Graphics = nil
	d.Devices.Serials = []libvirtxml.DomainSerial{{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: b.ConsoleLog}},
		Target: &libvirtxml.DomainSerialTarget{Port: new(uint)},
	}}
	d.Devices.Consoles = []libvirtxml.DomainConsole{{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: b.ConsoleLog}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: new(uint)},
	}}

	out, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("print runnable domain XML: %w", err)
	}
	return out, nil
}

// hostSocket maps a compute-view socket path to the host path QEMU can bind.
func hostSocket(computePath string, b TestBoot) (string, error) {
	ifName := filepath.Base(filepath.Dir(computePath))
	want, err := socketpath.ComputeSocket(ifName)
	if err != nil || want != computePath || !strings.HasPrefix(computePath, socketpath.ComputeHooksDir+"/") {
		return "", fmt.Errorf("vhost-user socket %q is not a compute-view path of the socket path contract", computePath)
	}
	p, err := b.Layout.For(socketpath.Attachment{PodUID: b.PodUID, IfName: ifName})
	if err != nil {
		return "", fmt.Errorf("host path of %s: %w", computePath, err)
	}
	return p.OVSSocket, nil
}
