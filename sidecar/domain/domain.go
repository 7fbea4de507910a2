package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	kvv1 "kubevirt.io/api/core/v1"
	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

const (
	// DefaultBindingName is the network binding name of the plugin in the KubeVirt CR.
	DefaultBindingName = "vhostuser"
	// DefaultMaxQueues caps the queue pairs of a multiqueue interface.
	DefaultMaxQueues = 8
	// QueueSize is the rx and tx virtqueue size: the largest QEMU allows for
	// vhost-user, which absorbs bursts from the vswitch without drops.
	QueueSize = 1024
	// AliasPrefix is KubeVirt's prefix for user aliases: ua-<interface name>.
	AliasPrefix = "ua-"

	modelVirtio             = "virtio"
	modelVirtioTransitional = "virtio-transitional"
)

// Options configure Rewrite.
type Options struct {
	// BindingName selects the VMI interfaces to serve (binding.name); empty means DefaultBindingName.
	BindingName string
	// MaxQueues caps multiqueue; 0 means DefaultMaxQueues.
	MaxQueues uint
	// MTU per VMI network name, from network-info; absent or 0 means no <mtu>.
	MTU map[string]uint
}

// Kind classifies a rewrite error for the caller (the gRPC status code).
type Kind int

const (
	// Invalid means the domain XML or the VMI is malformed or asks for something vhost-user cannot do.
	Invalid Kind = iota + 1
	// Conflict means the domain carries settings, made by someone else, that vhost-user cannot work with.
	Conflict
)

// Error is a rewrite error; Msg names the VMI and, where one is at fault, the interface.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or 0 when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func invalid(err error, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Msg: fmt.Sprintf(format, args...), Err: err}
}

func conflict(format string, args ...any) *Error {
	return &Error{Kind: Conflict, Msg: fmt.Sprintf(format, args...)}
}

// Rewrite returns domainXML with a vhost-user interface for every VMI interface
// of the binding and guest memory made shareable. When the VMI has no such
// interface the input is returned unchanged (after checking that both parse).
func Rewrite(domainXML, vmiJSON []byte, opts Options) ([]byte, error) {
	if opts.BindingName == "" {
		opts.BindingName = DefaultBindingName
	}
	if opts.MaxQueues == 0 {
		opts.MaxQueues = DefaultMaxQueues
	}

	vmi := &kvv1.VirtualMachineInstance{}
	if err := json.Unmarshal(vmiJSON, vmi); err != nil {
		return nil, invalid(err, "parse VMI JSON (OnDefineDomainParams.vmi)")
	}
	vmiName := vmi.Namespace + "/" + vmi.Name

	dom := &libvirtxml.Domain{}
	if err := dom.Unmarshal(string(domainXML)); err != nil {
		return nil, invalid(err, "VMI %s: parse domain XML (OnDefineDomainParams.domainXML)", vmiName)
	}

	ifaces, err := selectInterfaces(vmi, opts.BindingName)
	if err != nil {
		return nil, err
	}
	if len(ifaces) == 0 {
		return domainXML, nil
	}

	podIfaces, err := podInterfaceNames(vmi)
	if err != nil {
		return nil, invalid(err, "VMI %s", vmiName)
	}

	if dom.Devices == nil {
		dom.Devices = &libvirtxml.DomainDeviceList{}
	}
	queues := uint(0)
	if b := vmi.Spec.Domain.Devices.NetworkInterfaceMultiQueue; b != nil && *b {
		queues = min(vcpus(dom, vmi), opts.MaxQueues)
	}
	model := modelVirtio
	if b := vmi.Spec.Domain.Devices.UseVirtioTransitional; b != nil && *b {
		model = modelVirtioTransitional
	}

	vmiOrder := map[string]int{}
	for i, iface := range vmi.Spec.Domain.Devices.Interfaces {
		vmiOrder[iface.Name] = i
	}
	for _, iface := range ifaces {
		alias := AliasPrefix + iface.Name
		idx := -1
		for i := range dom.Devices.Interfaces {
			if a := dom.Devices.Interfaces[i].Alias; a != nil && a.Name == alias {
				idx = i
				break
			}
		}
		var existing *libvirtxml.DomainInterface
		if idx >= 0 {
			existing = &dom.Devices.Interfaces[idx]
		}
		di, err := buildInterface(vmiName, iface, podIfaces[iface.Name], model, queues, opts.MTU[iface.Name], existing)
		if err != nil {
			return nil, err
		}
		if idx >= 0 {
			dom.Devices.Interfaces[idx] = di
		} else {
			at := insertPosition(dom.Devices.Interfaces, vmiOrder, vmiOrder[iface.Name])
			dom.Devices.Interfaces = slices.Insert(dom.Devices.Interfaces, at, di)
		}
	}

	if err := shareMemory(dom, vmiName); err != nil {
		return nil, err
	}

	out, err := dom.Marshal()
	if err != nil {
		return nil, invalid(err, "VMI %s: print domain XML", vmiName)
	}
	return []byte(out), nil
}

// insertPosition keeps the domain's interfaces in the VMI's order, so the guest
// enumerates NICs as listed: a new interface goes before the first interface
// that comes later in the VMI, or before a hotplug placeholder (which KubeVirt
// keeps last), else at the end.
func insertPosition(ifaces []libvirtxml.DomainInterface, vmiOrder map[string]int, pos int) int {
	for i, di := range ifaces {
		if di.Alias == nil {
			continue
		}
		name, ours := strings.CutPrefix(di.Alias.Name, AliasPrefix)
		if !ours {
			if strings.HasPrefix(di.Alias.Name, "placeholder") {
				return i
			}
			continue
		}
		if p, ok := vmiOrder[name]; ok && p > pos {
			return i
		}
	}
	return len(ifaces)
}

// selectInterfaces returns the VMI interfaces of the binding after checking
// each sits on a secondary Multus network and asks for a virtio model.
func selectInterfaces(vmi *kvv1.VirtualMachineInstance, binding string) ([]kvv1.Interface, error) {
	vmiName := vmi.Namespace + "/" + vmi.Name
	networks := make(map[string]*kvv1.Network, len(vmi.Spec.Networks))
	for i := range vmi.Spec.Networks {
		networks[vmi.Spec.Networks[i].Name] = &vmi.Spec.Networks[i]
	}
	var out []kvv1.Interface
	seen := map[string]bool{}
	for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
		if iface.Binding == nil || iface.Binding.Name != binding {
			continue
		}
		if iface.Name == "" {
			return nil, invalid(nil, "VMI %s: an interface with binding %q has no name: set spec.domain.devices.interfaces[].name", vmiName, binding)
		}
		if seen[iface.Name] {
			return nil, invalid(nil, "VMI %s: interface %q is listed twice in spec.domain.devices.interfaces", vmiName, iface.Name)
		}
		seen[iface.Name] = true
		nw := networks[iface.Name]
		switch {
		case nw == nil:
			return nil, invalid(nil, "VMI %s: interface %q (binding %q) has no network of the same name in spec.networks", vmiName, iface.Name, binding)
		case nw.Pod != nil:
			return nil, invalid(nil, "VMI %s: interface %q uses binding %q on the pod network; vhost-user needs a secondary Multus network: use spec.networks[].multus.networkName with a vhostuser NetworkAttachmentDefinition", vmiName, iface.Name, binding)
		case nw.Multus == nil || nw.Multus.NetworkName == "":
			return nil, invalid(nil, "VMI %s: interface %q uses binding %q on network %q which is not a Multus network: set spec.networks[].multus.networkName to a vhostuser NetworkAttachmentDefinition", vmiName, iface.Name, binding, nw.Name)
		case nw.Multus.Default:
			return nil, invalid(nil, "VMI %s: interface %q uses binding %q on a default Multus network; vhost-user needs a secondary one: remove spec.networks[].multus.default", vmiName, iface.Name, binding)
		}
		if iface.Model != "" && iface.Model != modelVirtio {
			return nil, invalid(nil, "VMI %s: interface %q has model %q, binding %q supports only virtio: remove spec.domain.devices.interfaces[].model or set it to virtio", vmiName, iface.Name, iface.Model, binding)
		}
		out = append(out, iface)
	}
	return out, nil
}

// podInterfaceNames is the pod interface name of each secondary Multus
// network: the socket path follows it (socketpath.PodInterfaceNames).
func podInterfaceNames(vmi *kvv1.VirtualMachineInstance) (map[string]string, error) {
	reported := map[string]string{}
	for _, st := range vmi.Status.Interfaces {
		if st.Name != "" && st.PodInterfaceName != "" {
			reported[st.Name] = st.PodInterfaceName
		}
	}
	var nets []socketpath.SecondaryNetwork
	for _, nw := range vmi.Spec.Networks {
		if nw.Multus != nil && !nw.Multus.Default {
			nets = append(nets, socketpath.SecondaryNetwork{Name: nw.Name, Reported: reported[nw.Name]})
		}
	}
	return socketpath.PodInterfaceNames(nets)
}

func buildInterface(vmiName string, iface kvv1.Interface, podIface, model string, queues, mtu uint, existing *libvirtxml.DomainInterface) (libvirtxml.DomainInterface, error) {
	path, err := socketpath.ComputeSocket(podIface)
	if err != nil {
		return libvirtxml.DomainInterface{}, invalid(err, "VMI %s: interface %q: socket path", vmiName, iface.Name)
	}
	di := libvirtxml.DomainInterface{
		Source: &libvirtxml.DomainInterfaceSource{
			VHostUser: &libvirtxml.DomainInterfaceSourceVHostUser{
				Chardev: &libvirtxml.DomainChardevSource{
					UNIX: &libvirtxml.DomainChardevSourceUNIX{Path: path, Mode: "server"},
				},
			},
		},
		Model:  &libvirtxml.DomainInterfaceModel{Type: model},
		Driver: &libvirtxml.DomainInterfaceDriver{RXQueueSize: QueueSize, TXQueueSize: QueueSize},
		Alias:  &libvirtxml.DomainAlias{Name: AliasPrefix + iface.Name},
	}
	if queues > 1 {
		di.Driver.Queues = queues
	}
	if mtu > 0 {
		di.MTU = &libvirtxml.DomainInterfaceMTU{Size: mtu}
	}

	switch {
	case iface.MacAddress != "":
		mac, err := net.ParseMAC(iface.MacAddress)
		if err != nil || len(mac) != 6 {
			return di, invalid(nil, "VMI %s: interface %q: macAddress %q is not a 48-bit MAC address such as 02:00:00:00:00:01", vmiName, iface.Name, iface.MacAddress)
		}
		di.MAC = &libvirtxml.DomainInterfaceMAC{Address: mac.String()}
	case existing != nil && existing.MAC != nil:
		// Keep the MAC libvirt generated at the first define, so the guest sees a stable one.
		di.MAC = &libvirtxml.DomainInterfaceMAC{Address: existing.MAC.Address}
	}

	switch {
	case iface.PciAddress != "":
		pci, err := parsePCI(iface.PciAddress)
		if err != nil {
			return di, invalid(err, "VMI %s: interface %q: pciAddress %q", vmiName, iface.Name, iface.PciAddress)
		}
		di.Address = &libvirtxml.DomainAddress{PCI: pci}
	case existing != nil && existing.Address != nil && existing.Address.PCI != nil:
		a := *existing.Address.PCI
		di.Address = &libvirtxml.DomainAddress{PCI: &a}
	}

	if iface.BootOrder != nil {
		if *iface.BootOrder == 0 {
			return di, invalid(nil, "VMI %s: interface %q: bootOrder must be greater than 0", vmiName, iface.Name)
		}
		di.Boot = &libvirtxml.DomainDeviceBoot{Order: *iface.BootOrder}
	} else {
		// Like KubeVirt for its own interfaces: no option ROM (iPXE) unless the
		// interface is a boot device; it only slows the boot down.
		di.ROM = &libvirtxml.DomainROM{Enabled: "no"}
	}
	if iface.ACPIIndex < 0 {
		return di, invalid(nil, "VMI %s: interface %q: acpiIndex %d must not be negative", vmiName, iface.Name, iface.ACPIIndex)
	}
	if iface.ACPIIndex > 0 {
		di.ACPI = &libvirtxml.DomainDeviceACPI{Index: uint(iface.ACPIIndex)}
	}
	return di, nil
}

var pciRE = regexp.MustCompile(`^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$`)

// parsePCI reads KubeVirt's pciAddress form dddd:bb:ss.f.
func parsePCI(s string) (*libvirtxml.DomainAddressPCI, error) {
	m := pciRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("want domain:bus:slot.function such as 0000:81:01.0 (slot at most 1f)")
	}
	var v [4]uint
	for i := range v {
		n, _ := strconv.ParseUint(m[i+1], 16, 32) // the pattern guarantees hex
		v[i] = uint(n)
	}
	return &libvirtxml.DomainAddressPCI{Domain: &v[0], Bus: &v[1], Slot: &v[2], Function: &v[3]}, nil
}

// vcpus is the guest's vCPU count: the domain topology, or <vcpu>, lowered to
// <vcpu current> when CPU hotplug leaves sockets unplugged; the VMI as a fallback.
func vcpus(dom *libvirtxml.Domain, vmi *kvv1.VirtualMachineInstance) uint {
	n := uint(0)
	if dom.CPU != nil && dom.CPU.Topology != nil {
		t := dom.CPU.Topology
		n = uint(max(t.Sockets, 1) * max(t.Dies, 1) * max(t.Clusters, 1) * max(t.Cores, 1) * max(t.Threads, 1))
	}
	if dom.VCPU != nil {
		if n == 0 {
			n = dom.VCPU.Value
		}
		if c := dom.VCPU.Current; c > 0 && c < n {
			n = c
		}
	}
	if n == 0 && vmi.Spec.Domain.CPU != nil {
		c := vmi.Spec.Domain.CPU
		n = uint(max(c.Sockets, 1) * max(c.Cores, 1) * max(c.Threads, 1))
	}
	return max(n, 1)
}

// shareMemory makes guest RAM mappable by the vswitch.
func shareMemory(dom *libvirtxml.Domain, vmiName string) error {
	mb := dom.MemoryBacking
	if mb == nil {
		mb = &libvirtxml.DomainMemoryBacking{}
		dom.MemoryBacking = mb
	}
	if mb.MemoryAccess != nil && mb.MemoryAccess.Mode != "" && mb.MemoryAccess.Mode != "shared" {
		return conflict("VMI %s: the domain's memoryBacking access mode is %q, set by another component; vhost-user interfaces need shared guest memory: remove whatever sets private memory access", vmiName, mb.MemoryAccess.Mode)
	}
	if mb.MemorySource != nil && mb.MemorySource.Type == "anonymous" {
		return conflict("VMI %s: the domain's memoryBacking source is anonymous, set by another component; vhost-user interfaces need file-backed (memfd or hugepage) guest memory", vmiName)
	}
	if mb.MemoryHugePages == nil && (mb.MemorySource == nil || mb.MemorySource.Type == "") {
		mb.MemorySource = &libvirtxml.DomainMemorySource{Type: "memfd"}
	}
	mb.MemoryAccess = &libvirtxml.DomainMemoryAccess{Mode: "shared"}

	if dom.CPU != nil && dom.CPU.Numa != nil {
		for i := range dom.CPU.Numa.Cell {
			c := &dom.CPU.Numa.Cell[i]
			if c.MemAccess != "" && c.MemAccess != "shared" {
				return conflict("VMI %s: NUMA cell %d has memAccess %q, set by another component; vhost-user interfaces need shared guest memory", vmiName, i, c.MemAccess)
			}
			c.MemAccess = "shared"
		}
	}
	return nil
}
