package domain

import "encoding/json"

// The few VMI fields Rewrite reads, with the JSON names and Go types of
// kubevirt.io/api/core/v1 (v1.9.0). Decoding into these instead of
// KubeVirt's VirtualMachineInstance keeps kubevirt.io/api, and with it
// k8s.io/api and apimachinery's type registration, out of the sidecar binary:
// 84 of its 412 packages, half its size and 5 MiB of its RSS, paid per VM.
// vmi_decode_test.go checks that these read what KubeVirt's types read, from
// VMIs KubeVirt's own code marshals.

// vmiFields is kvv1.VirtualMachineInstance, reduced to what Rewrite reads.
type vmiFields struct {
	Metadata struct {
		Name      string `json:"name,omitempty"`
		Namespace string `json:"namespace,omitempty"`
	} `json:"metadata,omitempty"`
	Spec   vmiSpec `json:"spec"`
	Status struct {
		Interfaces []vmiInterfaceStatus `json:"interfaces,omitempty"`
	} `json:"status,omitempty"`
}

// vmiSpec is kvv1.VirtualMachineInstanceSpec. Like KubeVirt's, it decodes
// whole: a later "spec" key replaces an earlier one instead of merging into it.
type vmiSpec struct {
	Domain struct {
		CPU     *vmiCPU `json:"cpu,omitempty"`
		Devices struct {
			UseVirtioTransitional      *bool          `json:"useVirtioTransitional,omitempty"`
			Interfaces                 []vmiInterface `json:"interfaces,omitempty"`
			NetworkInterfaceMultiQueue *bool          `json:"networkInterfaceMultiqueue,omitempty"`
		} `json:"devices"`
	} `json:"domain"`
	Networks []vmiNetwork `json:"networks,omitempty"`
}

func (s *vmiSpec) UnmarshalJSON(b []byte) error {
	type plain vmiSpec // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = vmiSpec(p)
	return nil
}

// vmiCPU is kvv1.CPU: the vCPU fallback when the domain has no topology.
type vmiCPU struct {
	Cores   uint32 `json:"cores,omitempty"`
	Sockets uint32 `json:"sockets,omitempty"`
	Threads uint32 `json:"threads,omitempty"`
}

// vmiInterface is kvv1.Interface.
type vmiInterface struct {
	Name       string         `json:"name"`
	Model      string         `json:"model,omitempty"`
	Binding    *pluginBinding `json:"binding,omitempty"`
	MacAddress string         `json:"macAddress,omitempty"`
	BootOrder  *uint          `json:"bootOrder,omitempty"`
	PciAddress string         `json:"pciAddress,omitempty"`
	ACPIIndex  int            `json:"acpiIndex,omitempty"`
}

// pluginBinding is kvv1.PluginBinding.
type pluginBinding struct {
	Name string `json:"name"`
}

// vmiNetwork is kvv1.Network with its inline NetworkSource.
type vmiNetwork struct {
	Name   string         `json:"name"`
	Pod    *podNetwork    `json:"pod,omitempty"`
	Multus *multusNetwork `json:"multus,omitempty"`
}

// podNetwork is kvv1.PodNetwork; only its presence matters here, its fields
// are kept so a malformed value fails as it does for KubeVirt's type.
type podNetwork struct {
	VMNetworkCIDR     string `json:"vmNetworkCIDR,omitempty"`
	VMIPv6NetworkCIDR string `json:"vmIPv6NetworkCIDR,omitempty"`
}

// multusNetwork is kvv1.MultusNetwork.
type multusNetwork struct {
	NetworkName string `json:"networkName"`
	Default     bool   `json:"default,omitempty"`
}

// vmiInterfaceStatus is kvv1.VirtualMachineInstanceNetworkInterface.
type vmiInterfaceStatus struct {
	Name             string `json:"name,omitempty"`
	PodInterfaceName string `json:"podInterfaceName,omitempty"`
}
