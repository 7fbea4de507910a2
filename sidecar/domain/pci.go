package domain

import (
	"fmt"
	"regexp"
	"strconv"

	"libvirt.org/go/libvirtxml"
)

var pciRE = regexp.MustCompile(`^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$`)

// parsePCI reads KubeVirt's pciAddress form dddd:bb:ss.f.
func parsePCI(s string) (*libvirtxml.DomainAddressPCI, error) {
	m := pciRE.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("want domain:bus:slot.function such as 0000:81:01.0 (slot at most 1f)")
	}
	var v [4]uint
	for i := range v {
		n, _ := strconv.ParseUint(m[i+1], 16, 32) // the pattern guarantees hex
		v[i] = uint(n)
	}
	return &libvirtxml.DomainAddressPCI{Domain: &v[0], Bus: &v[1], Slot: &v[2], Function: &v[3]}, nil
}
