// Package vmi builds the VirtualMachineInstances the functional tests feed to
// KubeVirt's converter: a masquerade pod network plus vhostuser interfaces on
// Multus networks, with the options that change the domain (vCPUs,
// multiqueue, hugepages, a NUMA guest).
//
// The objects look like what virt-api stores after defaulting (machine type,
// interface model), because that is what virt-launcher converts.
package vmi

import (
	"github.com/google/uuid"
	k8sv1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	v1 "kubevirt.io/api/core/v1"
)

// BindingName is the network binding plugin name the VMIs use and the
// sidecar is started with.
const BindingName = "vhostuser"

// Option changes a VMI under construction.
type Option func(*v1.VirtualMachineInstance)

// New returns a VMI with a masquerade pod network, 1 vCPU and 256 MiB,
// changed by opts in order.
func New(name, uid string, opts ...Option) *v1.VirtualMachineInstance {
	vmi := &v1.VirtualMachineInstance{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "VirtualMachineInstance"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)},
		Spec: v1.VirtualMachineInstanceSpec{
			Domain: v1.DomainSpec{
				Machine: &v1.Machine{Type: "q35"},
				CPU:     &v1.CPU{Cores: 1, Sockets: 1, Threads: 1},
				Resources: v1.ResourceRequirements{
					Requests: k8sv1.ResourceList{k8sv1.ResourceMemory: resource.MustParse("256Mi")},
				},
				Devices: v1.Devices{
					Interfaces: []v1.Interface{{
						Name:                   "default",
						Model:                  v1.VirtIO,
						InterfaceBindingMethod: v1.InterfaceBindingMethod{Masquerade: &v1.InterfaceMasquerade{}},
					}},
				},
			},
			Networks: []v1.Network{{Name: "default", NetworkSource: v1.NetworkSource{Pod: &v1.PodNetwork{}}}},
		},
	}
	for _, o := range opts {
		o(vmi)
	}
	return vmi
}

// WithVhostUser adds an interface bound to the vhostuser plugin on the Multus
// network nad (a NetworkAttachmentDefinition name), with a fixed MAC when mac
// is not empty.
func WithVhostUser(network, nad, mac string) Option {
	return func(vmi *v1.VirtualMachineInstance) {
		vmi.Spec.Domain.Devices.Interfaces = append(vmi.Spec.Domain.Devices.Interfaces, v1.Interface{
			Name:       network,
			Model:      v1.VirtIO,
			MacAddress: mac,
			Binding:    &v1.PluginBinding{Name: BindingName},
		})
		vmi.Spec.Networks = append(vmi.Spec.Networks, v1.Network{
			Name:          network,
			NetworkSource: v1.NetworkSource{Multus: &v1.MultusNetwork{NetworkName: nad}},
		})
	}
}

// WithoutPodNetwork removes the masquerade pod network (a guest with only
// vhostuser interfaces).
func WithoutPodNetwork() Option {
	return func(vmi *v1.VirtualMachineInstance) {
		ifaces := vmi.Spec.Domain.Devices.Interfaces[:0]
		for _, i := range vmi.Spec.Domain.Devices.Interfaces {
			if i.Name != "default" {
				ifaces = append(ifaces, i)
			}
		}
		vmi.Spec.Domain.Devices.Interfaces = ifaces
		nets := vmi.Spec.Networks[:0]
		for _, n := range vmi.Spec.Networks {
			if n.Name != "default" {
				nets = append(nets, n)
			}
		}
		vmi.Spec.Networks = nets
	}
}

// WithCPUs sets the number of vCPUs (as cores of one socket).
func WithCPUs(n uint32) Option {
	return func(vmi *v1.VirtualMachineInstance) { vmi.Spec.Domain.CPU.Cores = n }
}

// WithMultiqueue enables one queue pair per vCPU on every virtio interface.
func WithMultiqueue() Option {
	return func(vmi *v1.VirtualMachineInstance) {
		on := true
		vmi.Spec.Domain.Devices.NetworkInterfaceMultiQueue = &on
	}
}

// WithHugepages backs guest memory with hugepages of the given size ("2Mi").
func WithHugepages(size string) Option {
	return func(vmi *v1.VirtualMachineInstance) {
		if vmi.Spec.Domain.Memory == nil {
			vmi.Spec.Domain.Memory = &v1.Memory{}
		}
		vmi.Spec.Domain.Memory.Hugepages = &v1.Hugepages{PageSize: size}
	}
}

// WithMemory sets the requested guest memory ("512Mi").
func WithMemory(q string) Option {
	return func(vmi *v1.VirtualMachineInstance) {
		vmi.Spec.Domain.Resources.Requests[k8sv1.ResourceMemory] = resource.MustParse(q)
	}
}

// WithNUMAPassthrough asks for dedicated CPUs and a guest NUMA topology that
// mirrors the host cells the CPUs are pinned to (requires hugepages).
func WithNUMAPassthrough() Option {
	return func(vmi *v1.VirtualMachineInstance) {
		vmi.Spec.Domain.CPU.DedicatedCPUPlacement = true
		vmi.Spec.Domain.CPU.NUMA = &v1.NUMA{GuestMappingPassthrough: &v1.NUMAGuestMappingPassthrough{}}
	}
}

// KernelBootImage is the (never pulled) image the test guest's kernel and
// initrd come from; KernelPath and InitrdPath are their paths in it.
const (
	KernelBootImage = "vhostuser-test-guest:local"
	KernelPath      = "/boot/vmlinuz"
	InitrdPath      = "/boot/initrd.img"
)

// WithKernelBoot boots the guest directly from a kernel and initrd of a
// kernelBoot container, with the kernel command line args - how a KubeVirt
// user boots a guest without a disk.
func WithKernelBoot(args string) Option {
	return func(vmi *v1.VirtualMachineInstance) {
		if vmi.Spec.Domain.Firmware == nil {
			vmi.Spec.Domain.Firmware = &v1.Firmware{}
		}
		vmi.Spec.Domain.Firmware.KernelBoot = &v1.KernelBoot{
			KernelArgs: args,
			Container: &v1.KernelBootContainer{
				Image:      KernelBootImage,
				KernelPath: KernelPath,
				InitrdPath: InitrdPath,
			},
		}
	}
}

// WithTerminationGracePeriod sets spec.terminationGracePeriodSeconds.
func WithTerminationGracePeriod(seconds int64) Option {
	return func(vmi *v1.VirtualMachineInstance) { vmi.Spec.TerminationGracePeriodSeconds = &seconds }
}

// WithFirmwareUUID sets spec.domain.firmware.uuid as virt-api's defaulting
// does (a UUID derived from the VMI name): virt-launcher defines the domain
// more than once, and without it libvirt would give each define a new UUID
// and refuse the second.
func WithFirmwareUUID() Option {
	return func(vmi *v1.VirtualMachineInstance) {
		if vmi.Spec.Domain.Firmware == nil {
			vmi.Spec.Domain.Firmware = &v1.Firmware{}
		}
		vmi.Spec.Domain.Firmware.UUID = types.UID(uuid.NewSHA1(uuid.NameSpaceOID, []byte(vmi.Namespace+"/"+vmi.Name)).String())
	}
}
