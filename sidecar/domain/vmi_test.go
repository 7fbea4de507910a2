package domain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kvv1 "kubevirt.io/api/core/v1"
)

func ptr[T any](v T) *T { return &v }

// vmiBuilder builds the VMIs of the tests: a masquerade pod network interface
// "default" plus whatever the case adds.
type vmiBuilder struct{ vmi kvv1.VirtualMachineInstance }

func newVMI() *vmiBuilder {
	b := &vmiBuilder{}
	b.vmi.TypeMeta = metav1.TypeMeta{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachineInstance"}
	b.vmi.ObjectMeta = metav1.ObjectMeta{Name: "vmi-vhostuser", Namespace: "default", UID: types.UID("0f7a3b5e-2c1d-4e8f-9a6b-7c5d3e1f2a4b")}
	b.vmi.Spec.Domain.Devices.Interfaces = []kvv1.Interface{{
		Name:                   "default",
		InterfaceBindingMethod: kvv1.InterfaceBindingMethod{Masquerade: &kvv1.InterfaceMasquerade{}},
	}}
	b.vmi.Spec.Networks = []kvv1.Network{{Name: "default", NetworkSource: kvv1.NetworkSource{Pod: &kvv1.PodNetwork{}}}}
	return b
}

// vhost adds a vhostuser interface on a Multus network of the same name.
func (b *vmiBuilder) vhost(name string, mod ...func(*kvv1.Interface)) *vmiBuilder {
	iface := kvv1.Interface{Name: name, Binding: &kvv1.PluginBinding{Name: "vhostuser"}}
	for _, m := range mod {
		m(&iface)
	}
	b.vmi.Spec.Domain.Devices.Interfaces = append(b.vmi.Spec.Domain.Devices.Interfaces, iface)
	b.vmi.Spec.Networks = append(b.vmi.Spec.Networks, kvv1.Network{Name: name, NetworkSource: kvv1.NetworkSource{
		Multus: &kvv1.MultusNetwork{NetworkName: "ovs-dpdk-" + name}}})
	return b
}

// bridge adds a bridge-binding interface on a Multus network: not ours.
func (b *vmiBuilder) bridge(name string) *vmiBuilder {
	b.vmi.Spec.Domain.Devices.Interfaces = append(b.vmi.Spec.Domain.Devices.Interfaces, kvv1.Interface{
		Name: name, InterfaceBindingMethod: kvv1.InterfaceBindingMethod{Bridge: &kvv1.InterfaceBridge{}}})
	b.vmi.Spec.Networks = append(b.vmi.Spec.Networks, kvv1.Network{Name: name, NetworkSource: kvv1.NetworkSource{
		Multus: &kvv1.MultusNetwork{NetworkName: "linux-bridge"}}})
	return b
}

func (b *vmiBuilder) with(f func(*kvv1.VirtualMachineInstance)) *vmiBuilder { f(&b.vmi); return b }

// podIfaces sets status.interfaces[].podInterfaceName per network, as
// KubeVirt's controller reports them.
func podIfaces(names map[string]string) func(*kvv1.VirtualMachineInstance) {
	return func(v *kvv1.VirtualMachineInstance) {
		for _, n := range v.Spec.Networks {
			if name, ok := names[n.Name]; ok {
				v.Status.Interfaces = append(v.Status.Interfaces, kvv1.VirtualMachineInstanceNetworkInterface{Name: n.Name, PodInterfaceName: name})
			}
		}
	}
}

func (b *vmiBuilder) json(t testing.TB) []byte {
	t.Helper()
	j, err := json.Marshal(&b.vmi)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
