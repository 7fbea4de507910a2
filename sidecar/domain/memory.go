package domain

import "libvirt.org/go/libvirtxml"

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
