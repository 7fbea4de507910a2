package domain

import (
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// vmiNameOf names the VMI in errors: namespace/name.
func vmiNameOf(vmi *vmiFields) string { return vmi.Metadata.Namespace + "/" + vmi.Metadata.Name }

// selectInterfaces returns the VMI interfaces of the binding after checking
// each sits on a secondary Multus network and asks for a virtio model.
func selectInterfaces(vmi *vmiFields, binding string) ([]vmiInterface, error) {
	vmiName := vmiNameOf(vmi)
	networks := make(map[string]*vmiNetwork, len(vmi.Spec.Networks))
	for i := range vmi.Spec.Networks {
		networks[vmi.Spec.Networks[i].Name] = &vmi.Spec.Networks[i]
	}
	var out []vmiInterface
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
func podInterfaceNames(vmi *vmiFields) (map[string]string, error) {
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
