package domain

import (
	"encoding/json"

	"libvirt.org/go/libvirtxml"
)

// Rewrite returns domainXML with a vhost-user interface for every VMI interface
// of the binding and guest memory made shareable. When the VMI has no such
// interface the input is returned unchanged (after checking that both parse).
func Rewrite(domainXML, vmiJSON []byte, opts Options) ([]byte, error) {
	vmi := &vmiFields{}
	if err := json.Unmarshal(vmiJSON, vmi); err != nil {
		return nil, invalid(err, "parse VMI JSON (OnDefineDomainParams.vmi)")
	}
	return roundTrip(domainXML, vmiNameOf(vmi), func() (*configurator, error) {
		return newConfigurator(vmi, opts)
	})
}

// roundTrip is the only place the domain XML is parsed and printed. The
// configurator is made once the domain parses, so a malformed domain is
// reported ahead of whatever is wrong with the VMI; a nil configurator (no
// interface of the binding) hands the domain back as it came.
func roundTrip(domainXML []byte, vmiName string, configure func() (*configurator, error)) ([]byte, error) {
	dom := &libvirtxml.Domain{}
	if err := dom.Unmarshal(string(domainXML)); err != nil {
		return nil, invalid(err, "VMI %s: parse domain XML (OnDefineDomainParams.domainXML)", vmiName)
	}
	c, err := configure()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return domainXML, nil
	}
	if err := c.mutate(dom); err != nil {
		return nil, err
	}
	out, err := dom.Marshal()
	if err != nil {
		return nil, invalid(err, "VMI %s: print domain XML", vmiName)
	}
	return []byte(out), nil
}
