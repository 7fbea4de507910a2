package domain

import (
	"libvirt.org/go/libvirtxml"
)

// vcpus is the guest's vCPU count: the domain topology, or <vcpu>, lowered to
// <vcpu current> when CPU hotplug leaves sockets unplugged; the VMI as a fallback.
// Multiqueue gives an interface one queue pair per vCPU.
func vcpus(dom *libvirtxml.Domain, vmi *vmiFields) uint {
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
