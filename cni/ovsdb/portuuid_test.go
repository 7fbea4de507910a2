package ovsdb

import (
	"regexp"
	"testing"
)

func TestPortUUID(t *testing.T) {
	// RFC 9562: 8-4-4-4-12 lowercase hex, version nibble 8, variant 10xx.
	form := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]string{}
	for _, tc := range []struct{ cid, ifname string }{
		{"c0", "net1"}, {"c0", "net2"}, {"c1", "net1"},
		// The length prefix keeps the two fields apart.
		{"c0n", "et1"}, {"c0net1", ""}, {"", "c0net1"},
		{"", ""}, {"x", "\x00"}, {"x\x00", ""},
	} {
		u := PortUUID(tc.cid, tc.ifname)
		if !form.MatchString(u) {
			t.Errorf("PortUUID(%q, %q) = %q: not a version 8 UUID", tc.cid, tc.ifname, u)
		}
		if u != PortUUID(tc.cid, tc.ifname) {
			t.Errorf("PortUUID(%q, %q) is not stable", tc.cid, tc.ifname)
		}
		k := tc.cid + "|" + tc.ifname
		if prev, dup := seen[u]; dup {
			t.Errorf("PortUUID(%q) = PortUUID(%q) = %s", k, prev, u)
		}
		seen[u] = k
	}
}
