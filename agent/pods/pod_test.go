package pods

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodFromMeta(t *testing.T) {
	yes := true
	vmiRef := metav1.OwnerReference{APIVersion: VMIAPIVersion, Kind: VMIKind, Name: "vm1", UID: "vmi-uid", Controller: &yes}
	for _, tc := range []struct {
		name      string
		owners    []metav1.OwnerReference
		vmi, vuid string
	}{
		{"virt-launcher", []metav1.OwnerReference{vmiRef}, "vm1", "vmi-uid"},
		{"plain pod", nil, "", ""},
		{"not the controller", []metav1.OwnerReference{{APIVersion: VMIAPIVersion, Kind: VMIKind, Name: "vm1", UID: "u"}}, "", ""},
		{"another kind", []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u", Controller: &yes}}, "", ""},
		{"another group's VirtualMachineInstance", []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: VMIKind, Name: "vm1", UID: "u", Controller: &yes}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metav1.ObjectMeta{Name: "virt-launcher-vm1-abcde", Namespace: "tenant", UID: "pod-uid", OwnerReferences: tc.owners}
			p := podFromMeta(&m)
			if p.Name != m.Name || p.Namespace != "tenant" || p.UID != "pod-uid" || p.VMIName != tc.vmi || p.VMIUID != tc.vuid || p.Terminating {
				t.Errorf("got %+v", p)
			}
			now := metav1.Now()
			m.DeletionTimestamp = &now
			if !podFromMeta(&m).Terminating {
				t.Error("a pod with a deletionTimestamp is not Terminating")
			}
		})
	}
}

func TestTrimPod(t *testing.T) {
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Namespace: "n", UID: "u", ResourceVersion: "3",
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"k8s.v1.cni.cncf.io/network-status": "[...]"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
	}}
	out, err := trimPod(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(*metav1.PartialObjectMetadata)
	if m.Labels != nil || m.Annotations != nil || m.ManagedFields != nil || m.UID != "u" || m.ResourceVersion != "3" {
		t.Errorf("trimmed %+v", m.ObjectMeta)
	}
}
