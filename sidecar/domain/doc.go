// Package domain rewrites the libvirt domain XML of a KubeVirt VMI so that QEMU
// serves a vhost-user socket for every interface of the vhostuser network binding.
//
// For a network binding plugin KubeVirt's converter emits no <interface>, so
// Rewrite adds, for every VMI interface whose binding.name is the binding name:
//
//	<interface type='vhostuser'>
//	  <source type='unix' path='<socketpath.ComputeSocket(pod interface name)>' mode='server'/>
//	  <model type='virtio'/>            (virtio-transitional with useVirtioTransitional)
//	  <driver queues='N' rx_queue_size='1024' tx_queue_size='1024'/>
//	  <mac/>, <mtu/>, <boot/>, <acpi/>, <address type='pci'/> from the VMI and network-info
//	  <rom enabled='no'/>               (unless the interface has a boot order, as KubeVirt does)
//	  <alias name='ua-<name>'/>
//	</interface>
//
// The socket path depends on the pod interface name only: the one KubeVirt
// reports in the VMI status (status.interfaces[].podInterfaceName), else the
// hashed name of the VMI network, or the ordinal one when another reported
// name shows the pod uses ordinal names (socketpath.PodInterfaceNames).
// KubeVirt gives a migration target the source pod's names, so the XML is
// identical in the source and target pods of a live migration.
//
// The rewrite is idempotent: an interface already carrying the alias ua-<name> is
// replaced, not duplicated. This matters because virt-launcher parses the domain
// back between defines into a schema without <source type/path> and without
// rx/tx_queue_size, so a later OnDefineDomain hands back a damaged copy of our
// interface that must be repaired. Other interfaces (the pod network, hotplug
// placeholders) are never touched. New interfaces are inserted in the VMI's
// interface order (before any hotplug placeholder), so the guest enumerates
// NICs as the VMI lists them. When the VMI's interface has no MAC or PCI
// address, the ones libvirt assigned to the existing copy are kept.
//
// Queues: with networkInterfaceMultiqueue, queues = the number of vCPUs
// (sockets*cores*threads of the domain, or <vcpu current>), capped at
// Options.MaxQueues (DefaultMaxQueues = 8): every queue pair is another ring
// the OVS-DPDK PMD threads poll, and more than 8 rarely pays off.
//
// Memory: vhost-user needs guest memory the vswitch can map. With hugepages
// (KubeVirt emits <hugepages/> and <source type='memfd'/>) they are kept and
// <access mode='shared'/> is added; without, <source type='memfd'/> and shared
// access are set. Every NUMA cell gets memAccess='shared'. A private access
// mode, or an anonymous memory source, set by someone else is an error rather
// than silently overridden.
//
// Errors are *Error values whose Kind tells the caller whether the input was
// invalid (a bad VMI or XML) or conflicts with the domain (a precondition).
//
// Parsing and printing use libvirt.org/go/libvirtxml. Everything KubeVirt emits
// survives with its meaning (tests compare the element trees of realistic
// KubeVirt domains, and the real libvirt QEMU driver defines the results).
// Cosmetic differences only: children of different kinds may be reordered,
// the qemu namespace elements are written with a default xmlns instead of the
// qemu: prefix, and the empty <source/> of an ethernet interface is dropped.
// An element libvirtxml does not model would be lost; libvirtxml tracks
// libvirt's schema, so keep it current.
//
// Layout: rewrite.go holds the XML round trip (parse, mutate, print) and
// nothing else; configurator.go the mutation, built once per call from the
// VMI after select.go (which interfaces are ours) and interface.go (one
// interface's settings) have checked it; pci.go, vcpus.go and memory.go the
// details, errors.go the error kinds, vmi.go the VMI fields read (not
// kubevirt.io/api's types, which would cost every VM's sidecar memory).
package domain
