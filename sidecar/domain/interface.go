package domain

import (
	"net"

	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// interfaceOptions is everything one vhost-user <interface> is built from.
// newInterfaceOptions fills what the VMI interface says, already checked; the
// configurator adds model, MTU and, per domain, queues.
type interfaceOptions struct {
	name      string // VMI interface name
	alias     string // ua-<name>
	socket    string // compute-side socket path
	model     string
	queues    uint // 0 or 1: no queues attribute
	mtu       uint // 0: no <mtu>
	mac       string
	pci       *libvirtxml.DomainAddressPCI
	bootOrder uint // 0: not a boot device (KubeVirt rejects order 0)
	acpiIndex uint // 0: no <acpi>
}

// newInterfaceOptions checks the VMI's settings of one interface; podIface
// decides the socket path.
func newInterfaceOptions(vmiName string, iface vmiInterface, podIface string) (interfaceOptions, error) {
	o := interfaceOptions{name: iface.Name, alias: AliasPrefix + iface.Name}
	var err error
	if o.socket, err = socketpath.ComputeSocket(podIface); err != nil {
		return o, invalid(err, "VMI %s: interface %q: socket path", vmiName, iface.Name)
	}
	if iface.MacAddress != "" {
		mac, err := net.ParseMAC(iface.MacAddress)
		if err != nil || len(mac) != 6 {
			return o, invalid(nil, "VMI %s: interface %q: macAddress %q is not a 48-bit MAC address such as 02:00:00:00:00:01", vmiName, iface.Name, iface.MacAddress)
		}
		o.mac = mac.String()
	}
	if iface.PciAddress != "" {
		if o.pci, err = parsePCI(iface.PciAddress); err != nil {
			return o, invalid(err, "VMI %s: interface %q: pciAddress %q", vmiName, iface.Name, iface.PciAddress)
		}
	}
	if iface.BootOrder != nil {
		if *iface.BootOrder == 0 {
			return o, invalid(nil, "VMI %s: interface %q: bootOrder must be greater than 0", vmiName, iface.Name)
		}
		o.bootOrder = *iface.BootOrder
	}
	if iface.ACPIIndex < 0 {
		return o, invalid(nil, "VMI %s: interface %q: acpiIndex %d must not be negative", vmiName, iface.Name, iface.ACPIIndex)
	}
	o.acpiIndex = uint(iface.ACPIIndex)
	return o, nil
}

// buildInterface makes the <interface>; existing is the copy of an earlier
// define, whose libvirt-assigned MAC and PCI address are kept where the VMI
// leaves them open.
func buildInterface(o interfaceOptions, existing *libvirtxml.DomainInterface) libvirtxml.DomainInterface {
	di := libvirtxml.DomainInterface{
		Source: &libvirtxml.DomainInterfaceSource{
			VHostUser: &libvirtxml.DomainInterfaceSourceVHostUser{
				Chardev: &libvirtxml.DomainChardevSource{
					UNIX: &libvirtxml.DomainChardevSourceUNIX{Path: o.socket, Mode: "server"},
				},
			},
		},
		Model:  &libvirtxml.DomainInterfaceModel{Type: o.model},
		Driver: &libvirtxml.DomainInterfaceDriver{RXQueueSize: QueueSize, TXQueueSize: QueueSize},
		Alias:  &libvirtxml.DomainAlias{Name: o.alias},
	}
	if o.queues > 1 {
		di.Driver.Queues = o.queues
	}
	if o.mtu > 0 {
		di.MTU = &libvirtxml.DomainInterfaceMTU{Size: o.mtu}
	}

	switch {
	case o.mac != "":
		di.MAC = &libvirtxml.DomainInterfaceMAC{Address: o.mac}
	case existing != nil && existing.MAC != nil:
		// Keep the MAC libvirt generated at the first define, so the guest sees a stable one.
		di.MAC = &libvirtxml.DomainInterfaceMAC{Address: existing.MAC.Address}
	}

	switch {
	case o.pci != nil:
		a := *o.pci
		di.Address = &libvirtxml.DomainAddress{PCI: &a}
	case existing != nil && existing.Address != nil && existing.Address.PCI != nil:
		a := *existing.Address.PCI
		di.Address = &libvirtxml.DomainAddress{PCI: &a}
	}

	if o.bootOrder > 0 {
		di.Boot = &libvirtxml.DomainDeviceBoot{Order: o.bootOrder}
	} else {
		// Like KubeVirt for its own interfaces: no option ROM (iPXE) unless the
		// interface is a boot device; it only slows the boot down.
		di.ROM = &libvirtxml.DomainROM{Enabled: "no"}
	}
	if o.acpiIndex > 0 {
		di.ACPI = &libvirtxml.DomainDeviceACPI{Index: o.acpiIndex}
	}
	return di
}
