package socketpath

import (
	"fmt"
	"strconv"
	"strings"
)

// KubeVirt names the pod interface of each secondary Multus network of a VMI
// in one of two schemes, fixed per pod:
//
//   - hashed: "pod" + 11 hex characters of sha256(network name)
//     (PodInterfaceName), what every pod KubeVirt creates today gets;
//   - ordinal: "net1", "net2", ... in spec.networks order, what pods of VMs
//     started by old KubeVirt versions have, and the migration targets KubeVirt
//     creates for them so the names stay the same.
//
// The CNI sees the chosen name as CNI_IFNAME; the sidecar must derive the
// same one, and KubeVirt reports it in the VMI status
// (status.interfaces[].podInterfaceName, from Multus' network-status).

// SecondaryNetwork is one VMI network that gets a Multus interface in the pod
// (spec.networks[] with multus set and default false).
type SecondaryNetwork struct {
	// Name is spec.networks[].name.
	Name string
	// Reported is status.interfaces[].podInterfaceName of that network, or
	// empty when KubeVirt has not reported it.
	Reported string
}

// PodInterfaceNames returns the pod interface name of every secondary network,
// by network name. nets must be all the VMI's secondary networks in
// spec.networks order (the ordinal scheme counts them). Per network:
//
//  1. the name KubeVirt reported;
//  2. else, when another network's reported name is ordinal ("net<N>"), the
//     pod uses the ordinal scheme (as KubeVirt itself concludes from one
//     interface), so "net<i>" for the i-th secondary network;
//  3. else the hashed name. (KubeVirt's own guess without any report is
//     ordinal, for hotplug into pods of unknown age; the sidecar runs in pods
//     KubeVirt creates now, which are hashed.)
//
// A reported name that is not a valid interface name is an error naming the field.
func PodInterfaceNames(nets []SecondaryNetwork) (map[string]string, error) {
	ordinal := false
	for _, n := range nets {
		if n.Reported == "" {
			continue
		}
		if err := ValidateIfName(n.Reported); err != nil {
			return nil, fmt.Errorf("VMI status.interfaces[].podInterfaceName of network %q: %w", n.Name, err)
		}
		if IsOrdinalPodInterfaceName(n.Reported) {
			ordinal = true
		}
	}
	names := make(map[string]string, len(nets))
	for i, n := range nets {
		switch {
		case n.Reported != "":
			names[n.Name] = n.Reported
		case ordinal:
			names[n.Name] = OrdinalPodInterfaceName(i + 1)
		default:
			names[n.Name] = PodInterfaceName(n.Name)
		}
	}
	return names, nil
}

// OrdinalPodInterfaceName is the ordinal scheme's name of the i-th (from 1)
// secondary network.
func OrdinalPodInterfaceName(i int) string {
	return "net" + strconv.Itoa(i)
}

// IsOrdinalPodInterfaceName reports whether name is in the ordinal scheme:
// "net" followed by decimal digits.
func IsOrdinalPodInterfaceName(name string) bool {
	digits, ok := strings.CutPrefix(name, "net")
	if !ok || digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
