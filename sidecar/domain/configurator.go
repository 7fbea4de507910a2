package domain

import (
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// configurator adds the binding's interfaces to a domain and makes its guest
// memory shareable. Everything it takes from the VMI is checked once, in
// newConfigurator, so mutate fails only on what the domain itself carries.
type configurator struct {
	vmiName    string
	vmi        *vmiFields // its CPU spec is the vCPU fallback
	multiqueue bool
	maxQueues  uint
	ifaces     []interfaceOptions // the binding's interfaces, in VMI order
	vmiOrder   map[string]int     // position of every VMI interface, by name
}

// newConfigurator returns nil, and no error, when the VMI has no interface of
// the binding.
func newConfigurator(vmi *vmiFields, opts Options) (*configurator, error) {
	opts = opts.withDefaults()
	ifaces, err := selectInterfaces(vmi, opts.BindingName)
	if err != nil {
		return nil, err
	}
	if len(ifaces) == 0 {
		return nil, nil
	}
	c := &configurator{
		vmiName:    vmiNameOf(vmi),
		vmi:        vmi,
		multiqueue: isTrue(vmi.Spec.Domain.Devices.NetworkInterfaceMultiQueue),
		maxQueues:  opts.MaxQueues,
		vmiOrder:   map[string]int{},
	}
	podIfaces, err := podInterfaceNames(vmi)
	if err != nil {
		return nil, invalid(err, "VMI %s", c.vmiName)
	}
	model := modelVirtio
	if isTrue(vmi.Spec.Domain.Devices.UseVirtioTransitional) {
		model = modelVirtioTransitional
	}
	for i, iface := range vmi.Spec.Domain.Devices.Interfaces {
		c.vmiOrder[iface.Name] = i
	}
	for _, iface := range ifaces {
		o, err := newInterfaceOptions(c.vmiName, iface, podIfaces[iface.Name])
		if err != nil {
			return nil, err
		}
		o.model = model
		o.mtu = opts.MTU[iface.Name]
		c.ifaces = append(c.ifaces, o)
	}
	return c, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// mutate puts our interfaces into dom, replacing earlier copies of them (same
// alias), and shares the guest memory.
func (c *configurator) mutate(dom *libvirtxml.Domain) error {
	if dom.Devices == nil {
		dom.Devices = &libvirtxml.DomainDeviceList{}
	}
	queues := uint(0)
	if c.multiqueue {
		queues = min(vcpus(dom, c.vmi), c.maxQueues)
	}
	for _, o := range c.ifaces {
		o.queues = queues
		idx := slices.IndexFunc(dom.Devices.Interfaces, func(di libvirtxml.DomainInterface) bool {
			return di.Alias != nil && di.Alias.Name == o.alias
		})
		if idx >= 0 {
			dom.Devices.Interfaces[idx] = buildInterface(o, &dom.Devices.Interfaces[idx])
			continue
		}
		at := insertPosition(dom.Devices.Interfaces, c.vmiOrder, c.vmiOrder[o.name])
		dom.Devices.Interfaces = slices.Insert(dom.Devices.Interfaces, at, buildInterface(o, nil))
	}
	return shareMemory(dom, c.vmiName)
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
