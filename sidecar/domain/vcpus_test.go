package domain

import (
	"testing"

	"libvirt.org/go/libvirtxml"
)

func TestVCPUs(t *testing.T) {
	topo := func(s, c, th int) *libvirtxml.DomainCPU {
		return &libvirtxml.DomainCPU{Topology: &libvirtxml.DomainCPUTopology{Sockets: s, Cores: c, Threads: th}}
	}
	withCPU := &vmiFields{}
	withCPU.Spec.Domain.CPU = &vmiCPU{Sockets: 2, Cores: 3, Threads: 1}
	for _, tc := range []struct {
		name string
		dom  libvirtxml.Domain
		vmi  *vmiFields
		want uint
	}{
		{"topology", libvirtxml.Domain{CPU: topo(2, 4, 2)}, &vmiFields{}, 16},
		{"hotplug current", libvirtxml.Domain{CPU: topo(4, 2, 1), VCPU: &libvirtxml.DomainVCPU{Value: 8, Current: 2}}, &vmiFields{}, 2},
		{"vcpu only", libvirtxml.Domain{VCPU: &libvirtxml.DomainVCPU{Value: 3}}, &vmiFields{}, 3},
		{"VMI fallback", libvirtxml.Domain{}, withCPU, 6},
		{"nothing", libvirtxml.Domain{}, &vmiFields{}, 1},
	} {
		if got := vcpus(&tc.dom, tc.vmi); got != tc.want {
			t.Errorf("%s: vcpus = %d, want %d", tc.name, got, tc.want)
		}
	}
}
