package domain

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	kvv1 "kubevirt.io/api/core/v1"
)

// fromKubeVirt is what Rewrite would read from KubeVirt's own decoding of
// a VMI: vmiFields filled from kvv1.VirtualMachineInstance.
func fromKubeVirt(v *kvv1.VirtualMachineInstance) *vmiFields {
	out := &vmiFields{}
	out.Metadata.Name, out.Metadata.Namespace = v.Name, v.Namespace
	d := &v.Spec.Domain
	if d.CPU != nil {
		out.Spec.Domain.CPU = &vmiCPU{Cores: d.CPU.Cores, Sockets: d.CPU.Sockets, Threads: d.CPU.Threads}
	}
	out.Spec.Domain.Devices.UseVirtioTransitional = d.Devices.UseVirtioTransitional
	out.Spec.Domain.Devices.NetworkInterfaceMultiQueue = d.Devices.NetworkInterfaceMultiQueue
	for _, i := range d.Devices.Interfaces {
		o := vmiInterface{Name: i.Name, Model: i.Model, MacAddress: i.MacAddress, BootOrder: i.BootOrder, PciAddress: i.PciAddress, ACPIIndex: i.ACPIIndex}
		if i.Binding != nil {
			o.Binding = &pluginBinding{Name: i.Binding.Name}
		}
		out.Spec.Domain.Devices.Interfaces = append(out.Spec.Domain.Devices.Interfaces, o)
	}
	for _, n := range v.Spec.Networks {
		o := vmiNetwork{Name: n.Name}
		if n.Pod != nil {
			o.Pod = &podNetwork{}
		}
		if n.Multus != nil {
			o.Multus = &multusNetwork{NetworkName: n.Multus.NetworkName, Default: n.Multus.Default}
		}
		out.Spec.Networks = append(out.Spec.Networks, o)
	}
	for _, s := range v.Status.Interfaces {
		out.Status.Interfaces = append(out.Status.Interfaces, vmiInterfaceStatus{Name: s.Name, PodInterfaceName: s.PodInterfaceName})
	}
	return out
}

// onlyRead drops what Rewrite never reads (the pod network's CIDRs, which
// KubeVirt's decoder also normalises) so equal means "Rewrite sees the same".
func onlyRead(v *vmiFields) *vmiFields {
	// An empty list reads as no list: Rewrite only ranges over them.
	if len(v.Spec.Networks) == 0 {
		v.Spec.Networks = nil
	}
	if len(v.Spec.Domain.Devices.Interfaces) == 0 {
		v.Spec.Domain.Devices.Interfaces = nil
	}
	if len(v.Status.Interfaces) == 0 {
		v.Status.Interfaces = nil
	}
	for i := range v.Spec.Networks {
		if v.Spec.Networks[i].Pod != nil {
			v.Spec.Networks[i].Pod = &podNetwork{}
		}
	}
	return v
}

// decodeBoth decodes vmiJSON as KubeVirt's types and as ours. kvErr is
// KubeVirt's error; when it is nil, ours must succeed with the same fields.
func decodeBoth(t *testing.T, vmiJSON []byte) (kvErr error) {
	t.Helper()
	kv := &kvv1.VirtualMachineInstance{}
	if kvErr = json.Unmarshal(vmiJSON, kv); kvErr != nil {
		return kvErr
	}
	ours := &vmiFields{}
	if err := json.Unmarshal(vmiJSON, ours); err != nil {
		t.Fatalf("KubeVirt's types decode the VMI, ours fail: %v\n%s", err, vmiJSON)
	}
	if want := fromKubeVirt(kv); !reflect.DeepEqual(onlyRead(ours), onlyRead(want)) {
		t.Fatalf("decoded differently\nours:     %+v\nKubeVirt: %+v\n%s", ours, want, vmiJSON)
	}
	return nil
}

// testVMIShapes are the VMIs the other tests build with KubeVirt's types,
// marshalled by KubeVirt's types as virt-launcher does, plus a running VMI
// with everything a real one carries (testdata/vmi-running.json).
func testVMIShapes(t testing.TB) map[string][]byte {
	running := readTestdata(t, "vmi-running.json")
	kv := &kvv1.VirtualMachineInstance{}
	if err := json.Unmarshal(running, kv); err != nil {
		t.Fatalf("vmi-running.json: %v", err)
	}
	remarshalled, err := json.Marshal(kv)
	if err != nil {
		t.Fatal(err)
	}
	multiqueue := func(v *kvv1.VirtualMachineInstance) { v.Spec.Domain.Devices.NetworkInterfaceMultiQueue = ptr(true) }
	return map[string][]byte{
		"running VMI as stored":          running,
		"running VMI as KubeVirt prints": remarshalled,
		"one":                            newVMI().vhost("dpdk0").json(t),
		"next to bridge":                 newVMI().bridge("blue").vhost("dpdk0").bridge("green").vhost("dpdk1").json(t),
		"other binding name": newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) {
			v.Spec.Domain.Devices.Interfaces[1].Binding.Name = "dpdk"
		}).json(t),
		"all interface settings": newVMI().vhost("a", func(i *kvv1.Interface) {
			i.MacAddress = "02:00:00:00:00:01"
			i.PciAddress = "0000:00:1a.0"
			i.ACPIIndex = 2
			i.BootOrder = ptr(uint(1))
			i.Model = "virtio"
		}).json(t),
		"multiqueue with CPU": newVMI().vhost("a").with(multiqueue).with(func(v *kvv1.VirtualMachineInstance) {
			v.Spec.Domain.CPU = &kvv1.CPU{Sockets: 2, Cores: 3, Threads: 2}
		}).json(t),
		"transitional": newVMI().vhost("dpdk0").with(func(v *kvv1.VirtualMachineInstance) {
			v.Spec.Domain.Devices.UseVirtioTransitional = ptr(true)
		}).json(t),
		"reported names": newVMI().vhost("a").bridge("b").vhost("c").with(podIfaces(map[string]string{"a": "net1", "c": "net3"})).json(t),
		"multus default": newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) { v.Spec.Networks[1].Multus.Default = true }).json(t),
		"migration state": newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) {
			v.Status.MigrationState = &kvv1.VirtualMachineInstanceMigrationState{TargetNode: "node-b"}
		}).json(t),
		"empty": []byte(`{}`),
	}
}

func TestDecodeVMILikeKubeVirt(t *testing.T) {
	for name, j := range testVMIShapes(t) {
		t.Run(name, func(t *testing.T) {
			if err := decodeBoth(t, j); err != nil {
				t.Fatalf("KubeVirt's types reject a test VMI: %v", err)
			}
		})
	}
}

// The running VMI must hold only fields KubeVirt knows: KubeVirt prints back
// everything it was given.
func TestRunningVMIIsKubeVirtShaped(t *testing.T) {
	running := readTestdata(t, "vmi-running.json")
	kv := &kvv1.VirtualMachineInstance{}
	if err := json.Unmarshal(running, kv); err != nil {
		t.Fatal(err)
	}
	printed, err := json.Marshal(kv)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(running, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(printed, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("KubeVirt's types do not round-trip testdata/vmi-running.json (an unknown or misspelt field?):\n%s", printed)
	}
}

// Decoding edge cases where a hand-written struct could part from KubeVirt's.
func TestDecodeVMIEdgeCases(t *testing.T) {
	for name, j := range map[string]string{
		"spec twice: the last replaces": `{"spec":{"networks":[{"name":"a","multus":{"networkName":"n"}}]},"spec":{"domain":{"devices":{"interfaces":[{"name":"a","binding":{"name":"vhostuser"}}]}}}}`,
		"spec null":                     `{"spec":{"networks":[{"name":"a","pod":{}}]},"spec":null}`,
		"pod null":                      `{"spec":{"networks":[{"name":"a","pod":null}]}}`,
		"keys in other case":            `{"Metadata":{"NAME":"x"},"Spec":{"Networks":[{"Name":"a","Multus":{"NetworkName":"n","Default":true}}]}}`,
		"bootOrder null":                `{"spec":{"domain":{"devices":{"interfaces":[{"name":"a","bootOrder":null}]}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := decodeBoth(t, []byte(j)); err != nil {
				t.Fatalf("KubeVirt's types reject it: %v", err)
			}
		})
	}
	// Errors in what Rewrite reads are errors for both.
	for name, j := range map[string]string{
		"interfaces not a list": `{"spec":{"domain":{"devices":{"interfaces":"x"}}}}`,
		"negative bootOrder":    `{"spec":{"domain":{"devices":{"interfaces":[{"name":"a","bootOrder":-1}]}}}}`,
		"cores too big":         `{"spec":{"domain":{"cpu":{"cores":4294967296}}}}`,
		"default not a bool":    `{"spec":{"networks":[{"name":"a","multus":{"default":"yes"}}]}}`,
		"name not a string":     `{"metadata":{"name":1}}`,
		"truncated":             `{"spec":`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := decodeBoth(t, []byte(j)); err == nil {
				t.Fatal("KubeVirt's types accept it")
			}
			if err := json.Unmarshal([]byte(j), &vmiFields{}); err == nil {
				t.Fatal("ours accept what KubeVirt's types reject")
			}
		})
	}
}

// FuzzDecodeVMI: whatever KubeVirt's types decode, ours decode to the same
// fields Rewrite reads.
func FuzzDecodeVMI(f *testing.F) {
	for _, j := range testVMIShapes(f) {
		f.Add(j)
	}
	f.Add([]byte(`{"spec":{"networks":[{"name":"a","pod":{}}]},"spec":null}`))
	f.Add([]byte(`{"speC":{"networks":[]}}`)) // an empty list is no list
	f.Fuzz(func(t *testing.T, vmiJSON []byte) {
		if bytes.Count(vmiJSON, []byte("{")) > 200 {
			return // deep nesting only slows the fuzzer down
		}
		_ = decodeBoth(t, vmiJSON)
	})
}
