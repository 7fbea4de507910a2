package pods

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kvv1 "kubevirt.io/api/core/v1"
)

// hashed is KubeVirt's hashed pod interface name scheme, written out here
// rather than taken from the code under test (functests/compat checks
// socketpath against KubeVirt's own function).
func hashed(network string) string {
	s := sha256.Sum256([]byte(network))
	return "pod" + hex.EncodeToString(s[:])[:11]
}

// vmiObject marshals a VMI with KubeVirt's own types, as the API server
// serves it to the dynamic informer.
func vmiObject(t *testing.T, networks []kvv1.Network, statuses []kvv1.VirtualMachineInstanceNetworkInterface) *unstructured.Unstructured {
	t.Helper()
	vmi := &kvv1.VirtualMachineInstance{
		TypeMeta:   metav1.TypeMeta{Kind: VMIKind, APIVersion: VMIAPIVersion},
		ObjectMeta: metav1.ObjectMeta{Name: "vm1", Namespace: "tenant", UID: "vmi-uid", ResourceVersion: "7", Labels: map[string]string{"big": "label"}},
		Spec:       kvv1.VirtualMachineInstanceSpec{Networks: networks, Hostname: "h"},
		Status:     kvv1.VirtualMachineInstanceStatus{Interfaces: statuses, NodeName: "n1", Phase: kvv1.Running},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vmi)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

func multus(name, nad string, def bool) kvv1.Network {
	return kvv1.Network{Name: name, NetworkSource: kvv1.NetworkSource{Multus: &kvv1.MultusNetwork{NetworkName: nad, Default: def}}}
}

func TestVMIFromUnstructured(t *testing.T) {
	pod := kvv1.Network{Name: "default", NetworkSource: kvv1.NetworkSource{Pod: &kvv1.PodNetwork{}}}
	for _, tc := range []struct {
		name     string
		networks []kvv1.Network
		statuses []kvv1.VirtualMachineInstanceNetworkInterface
		want     map[string]string
	}{
		{"hashed, nothing reported", []kvv1.Network{pod, multus("fast", "vhu", false), multus("slow", "ns2/vhu", false)}, nil,
			map[string]string{hashed("fast"): "fast", hashed("slow"): "slow"}},
		{"reported names win", []kvv1.Network{multus("fast", "vhu", false)},
			[]kvv1.VirtualMachineInstanceNetworkInterface{{Name: "fast", PodInterfaceName: "podcustom"}},
			map[string]string{"podcustom": "fast"}},
		// One ordinal report makes the pod ordinal: net<i> in spec order.
		{"ordinal pod", []kvv1.Network{pod, multus("a", "vhu", false), multus("b", "vhu", false)},
			[]kvv1.VirtualMachineInstanceNetworkInterface{{Name: "b", PodInterfaceName: "net2"}},
			map[string]string{"net1": "a", "net2": "b"}},
		{"a default Multus network has no secondary interface", []kvv1.Network{multus("def", "flannel", true), multus("x", "vhu", false)}, nil,
			map[string]string{hashed("x"): "x"}},
		{"no secondary network", []kvv1.Network{pod}, nil, nil},
		{"an invalid reported name gives no labels, no error", []kvv1.Network{multus("x", "vhu", false)},
			[]kvv1.VirtualMachineInstanceNetworkInterface{{Name: "x", PodInterfaceName: "../../etc"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := vmiObject(t, tc.networks, tc.statuses)
			for _, in := range []*unstructured.Unstructured{u, trimVMI(u)} {
				got := vmiFromUnstructured(in)
				if got.Name != "vm1" || got.Namespace != "tenant" || got.UID != "vmi-uid" || got.Phase != VMIRunning || got.Deleting {
					t.Errorf("identity %+v", got)
				}
				if !reflect.DeepEqual(got.Interfaces, tc.want) {
					t.Errorf("interfaces %v, want %v", got.Interfaces, tc.want)
				}
			}
		})
	}
}

// VMIRunning is KubeVirt's own phase name.
func TestVMIRunningIsKubeVirts(t *testing.T) {
	if VMIRunning != string(kvv1.Running) {
		t.Errorf("VMIRunning %q, KubeVirt's %q", VMIRunning, kvv1.Running)
	}
}

func TestTrimVMI(t *testing.T) {
	u := vmiObject(t, []kvv1.Network{multus("fast", "vhu", false)}, nil)
	tr := trimVMI(u)
	if tr.GetLabels() != nil || tr.GetResourceVersion() != "7" {
		t.Errorf("trimmed metadata: labels %v rv %q", tr.GetLabels(), tr.GetResourceVersion())
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(tr.Object, "spec", "hostname"); ok {
		t.Error("trimVMI kept spec.hostname")
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(tr.Object, "status", "nodeName"); ok {
		t.Error("trimVMI kept status.nodeName")
	}
	now := metav1.Now()
	u.SetDeletionTimestamp(&now)
	if v := vmiFromUnstructured(trimVMI(u)); !v.Deleting || v.Phase != VMIRunning {
		t.Errorf("a deleting Running VMI reads %+v after trimming", v)
	}
}

// Malformed objects (a hostile or broken VMI) never panic.
func TestVMIFromUnstructuredMalformed(t *testing.T) {
	for _, obj := range []map[string]any{
		{},
		{"spec": "x"},
		{"spec": map[string]any{"networks": "x"}},
		{"spec": map[string]any{"networks": []any{"x", 1, map[string]any{"multus": "y"}, map[string]any{"name": 3, "multus": map[string]any{"default": "no"}}}}},
		{"status": map[string]any{"interfaces": []any{1, map[string]any{"name": 1}}}},
	} {
		u := &unstructured.Unstructured{Object: obj}
		_ = vmiFromUnstructured(u)
		_ = vmiFromUnstructured(trimVMI(u))
	}
}

// FuzzVMIFromJSON feeds arbitrary JSON objects, as the API server could
// serve a VMI, through trimming and reading: neither may panic, and the
// trimmed object must read the same as the whole one.
func FuzzVMIFromJSON(f *testing.F) {
	f.Add(`{"metadata":{"name":"a","uid":"u"},"spec":{"networks":[{"name":"x","multus":{"networkName":"vhu"}}]},"status":{"interfaces":[{"name":"x","podInterfaceName":"net1"}]}}`)
	f.Add(`{"spec":{"networks":[{"name":"x","multus":{"default":true}},{"name":"y","multus":{}}]}}`)
	f.Add(`{"spec":{"networks":[1,"a",null]},"status":{"interfaces":{}}}`)
	f.Add(`{"metadata":{"deletionTimestamp":"2026-12-07T10:00:00Z"},"status":{"phase":"Running"}}`)
	f.Add(`{"metadata":{"deletionTimestamp":7},"status":{"phase":1}}`)
	f.Fuzz(func(t *testing.T, s string) {
		var obj map[string]any
		if json.Unmarshal([]byte(s), &obj) != nil || obj == nil {
			return
		}
		u := &unstructured.Unstructured{Object: obj}
		whole := vmiFromUnstructured(u)
		trimmed := vmiFromUnstructured(trimVMI(u))
		if !reflect.DeepEqual(whole.Interfaces, trimmed.Interfaces) || whole.Phase != trimmed.Phase || whole.Deleting != trimmed.Deleting {
			t.Errorf("trimmed reads %+v, whole %+v", trimmed, whole)
		}
	})
}
