package domain

import (
	"testing"

	kvv1 "kubevirt.io/api/core/v1"
	"libvirt.org/go/libvirtxml"
)

func TestVCPUs(t *testing.T) {
	topo := func(s, c, th int) *libvirtxml.DomainCPU {
		return &libvirtxml.DomainCPU{Topology: &libvirtxml.DomainCPUTopology{Sockets: s, Cores: c, Threads: th}}
	}
	vmiCPU := &kvv1.VirtualMachineInstance{}
	vmiCPU.Spec.Domain.CPU = &kvv1.CPU{Sockets: 2, Cores: 3, Threads: 1}
	for _, tc := range []struct {
		name string
		dom  libvirtxml.Domain
		vmi  *kvv1.VirtualMachineInstance
		want uint
	}{
		{"topology", libvirtxml.Domain{CPU: topo(2, 4, 2)}, &kvv1.VirtualMachineInstance{}, 16},
		{"hotplug current", libvirtxml.Domain{CPU: topo(4, 2, 1), VCPU: &libvirtxml.DomainVCPU{Value: 8, Current: 2}}, &kvv1.VirtualMachineInstance{}, 2},
		{"vcpu only", libvirtxml.Domain{VCPU: &libvirtxml.DomainVCPU{Value: 3}}, &kvv1.VirtualMachineInstance{}, 3},
		{"VMI fallback", libvirtxml.Domain{}, vmiCPU, 6},
		{"nothing", libvirtxml.Domain{}, &kvv1.VirtualMachineInstance{}, 1},
	} {
		if got := vcpus(&tc.dom, tc.vmi); got != tc.want {
			t.Errorf("%s: vcpus = %d, want %d", tc.name, got, tc.want)
		}
	}
}
