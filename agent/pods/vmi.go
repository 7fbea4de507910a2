package pods

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// VMI is what the agent keeps of a VirtualMachineInstance.
type VMI struct {
	UID, Namespace, Name string
	// Interfaces maps a pod interface name (CNI_IFNAME, what the plugin
	// marks its port with) to the VMI network name, the interface label of
	// KubeVirt's own kubevirt_vmi_network_* series.
	Interfaces map[string]string
	// Phase is status.phase (Running, Succeeded, Failed, ...); Deleting
	// is true once the VMI's deletion has begun. Events are about VMIs
	// that should be running here.
	Phase    string
	Deleting bool
}

// VMIRunning is the VMI phase of a running guest.
const VMIRunning = "Running"

// vmiFromUnstructured reads the VMI's secondary Multus networks and their
// pod interface names as KubeVirt derives them (socketpath.PodInterfaceNames,
// the contract the sidecar and the plugin share). A malformed VMI gives no
// interfaces rather than an error: the labels are a convenience, never a
// reason to drop a port's series.
func vmiFromUnstructured(u *unstructured.Unstructured) VMI {
	v := VMI{UID: string(u.GetUID()), Namespace: u.GetNamespace(), Name: u.GetName(), Deleting: u.GetDeletionTimestamp() != nil}
	if st, ok := u.Object["status"].(map[string]any); ok {
		v.Phase, _ = st["phase"].(string)
	}
	reported := map[string]string{}
	statuses := slice(u.Object, "status", "interfaces")
	for _, s := range statuses {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		pif, _ := m["podInterfaceName"].(string)
		if name != "" && pif != "" {
			reported[name] = pif
		}
	}
	networks := slice(u.Object, "spec", "networks")
	var nets []socketpath.SecondaryNetwork
	for _, n := range networks {
		m, ok := n.(map[string]any)
		if !ok {
			continue
		}
		multus, ok := m["multus"].(map[string]any)
		if !ok {
			continue
		}
		if def, _ := multus["default"].(bool); def {
			continue
		}
		name, _ := m["name"].(string)
		nets = append(nets, socketpath.SecondaryNetwork{Name: name, Reported: reported[name]})
	}
	byNetwork, err := socketpath.PodInterfaceNames(nets)
	if err != nil || len(byNetwork) == 0 {
		return v
	}
	v.Interfaces = make(map[string]string, len(byNetwork))
	for network, pif := range byNetwork {
		v.Interfaces[pif] = network
	}
	return v
}

// slice reads a list without copying it (NestedSlice deep-copies, and
// panics on values JSON decoding never makes).
func slice(obj map[string]any, fields ...string) []any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	s, _ := v.([]any)
	return s
}

// trimVMI keeps only the fields vmiFromUnstructured reads, so the informer's
// cache holds a few hundred bytes per VMI instead of its whole object.
func trimVMI(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	out.SetName(u.GetName())
	out.SetNamespace(u.GetNamespace())
	out.SetUID(u.GetUID())
	out.SetResourceVersion(u.GetResourceVersion())
	out.SetDeletionTimestamp(u.GetDeletionTimestamp())
	// Shared, not copied: the informer hands over the decoded object and
	// keeps only this one.
	if nets := slice(u.Object, "spec", "networks"); nets != nil {
		out.Object["spec"] = map[string]any{"networks": nets}
	}
	status := map[string]any{}
	if ifs := slice(u.Object, "status", "interfaces"); ifs != nil {
		status["interfaces"] = ifs
	}
	if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase != "" {
		status["phase"] = phase
	}
	if len(status) > 0 {
		out.Object["status"] = status
	}
	return out
}
