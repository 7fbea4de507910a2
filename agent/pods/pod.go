package pods

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VMIKind and VMIAPIVersion identify KubeVirt's VirtualMachineInstance, the
// controller owner of every virt-launcher pod.
const (
	VMIKind       = "VirtualMachineInstance"
	VMIAPIVersion = "kubevirt.io/v1"
)

// Pod is what the agent keeps of a pod on its node.
type Pod struct {
	UID, Namespace, Name string
	// VMIName and VMIUID are the pod's controller VirtualMachineInstance
	// (the owner reference KubeVirt sets on virt-launcher pods); empty for
	// any other pod.
	VMIName, VMIUID string
	// Terminating is true once the pod's deletion has begun.
	Terminating bool
}

// podFromMeta reduces a pod's metadata to a Pod.
func podFromMeta(m *metav1.ObjectMeta) Pod {
	p := Pod{UID: string(m.UID), Namespace: m.Namespace, Name: m.Name, Terminating: m.DeletionTimestamp != nil}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil && ref.Kind == VMIKind && ref.APIVersion == VMIAPIVersion {
		p.VMIName, p.VMIUID = ref.Name, string(ref.UID)
	}
	return p
}
