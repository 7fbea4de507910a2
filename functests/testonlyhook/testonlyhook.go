// Package testonlyhook is a TEST-ONLY KubeVirt hook: never deploy it. It is
// the onDefineDomain program of KubeVirt's own sidecar-shim (cmd/sidecars),
// which the tests run as a second hook sidecar after ours, the way a KubeVirt
// user adds a hook with the hooks.kubevirt.io/hookSidecars annotation.
//
// It works around a QEMU 7.2 bug that only TCG hits: QEMU segfaults in
// vhost_net_start (msix_set_vector_notifiers) when a guest's virtio-net
// driver starts a vhost-user device with MSI-X. The workaround sets the
// device property vectors=0 on every vhost-user interface through libvirt's
// <qemu:override>. Production KVM hosts never need it, and our sidecar never
// emits it.
package testonlyhook

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// Interface is a vhost-user interface the hook saw in its input.
type Interface struct {
	Alias, Path, Mode string
}

// AddVectorsZero returns domainXML with a vectors=0 override for every
// vhost-user interface, and the vhost-user interfaces of the input.
func AddVectorsZero(domainXML string) (string, []Interface, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domainXML); err != nil {
		return "", nil, fmt.Errorf("parse domain XML: %w", err)
	}
	var seen []Interface
	if d.Devices == nil {
		return domainXML, nil, nil
	}
	override := d.QEMUOverride
	if override == nil {
		override = &libvirtxml.DomainQEMUOverride{}
	}
	for _, iface := range d.Devices.Interfaces {
		if iface.Source == nil || iface.Source.VHostUser == nil {
			continue
		}
		var in Interface
		if iface.Alias != nil {
			in.Alias = iface.Alias.Name
		}
		if c := iface.Source.VHostUser.Chardev; c != nil && c.UNIX != nil {
			in.Path, in.Mode = c.UNIX.Path, c.UNIX.Mode
		}
		seen = append(seen, in)
		if in.Alias == "" || hasOverride(override, in.Alias) {
			continue
		}
		override.Devices = append(override.Devices, libvirtxml.DomainQEMUOverrideDevice{
			Alias: in.Alias,
			Frontend: libvirtxml.DomainQEMUOverrideFrontend{Properties: []libvirtxml.DomainQEMUOverrideProperty{
				{Name: "vectors", Type: "unsigned", Value: "0"},
			}},
		})
	}
	if len(override.Devices) > 0 {
		d.QEMUOverride = override
	}
	out, err := d.Marshal()
	if err != nil {
		return "", nil, fmt.Errorf("print domain XML: %w", err)
	}
	return out, seen, nil
}

func hasOverride(o *libvirtxml.DomainQEMUOverride, alias string) bool {
	for _, d := range o.Devices {
		if d.Alias == alias {
			return true
		}
	}
	return false
}
