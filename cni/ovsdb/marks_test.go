package ovsdb

import (
	"regexp"
	"strings"
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

func TestCheckReplace(t *testing.T) {
	ours := map[string]string{KeyOwner: Owner, KeyPodUID: "u1", KeyIfName: "net1", KeyContainerID: "c0"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ours {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tt := range []struct {
		name  string
		stale map[string]string
		want  string // "" when the port may be replaced
	}{
		{"same attachment, another sandbox", with(KeyContainerID, "c1"), ""},
		{"not ours", with(KeyOwner, "someone"), "not owned by vhostuser-cni"},
		{"no marks", map[string]string{}, "not owned by vhostuser-cni"},
		{"another pod", with(KeyPodUID, "u2"), `pod-uid "u2", this one "u1"`},
		{"another ifname", with(KeyIfName, "net2"), `ifname "net2", this one "net1"`},
	} {
		err := checkReplace("vhu0", tt.stale, ours)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestIsCreatedBridge(t *testing.T) {
	for _, tt := range []struct {
		name string
		ids  map[string]string
		want bool
	}{
		{"created by ADD", createdBridgeMarks(), true},
		{"no marks", map[string]string{}, false},
		{"ours, not created", map[string]string{KeyOwner: Owner}, false},
		{"created mark, another owner", map[string]string{KeyOwner: "someone", KeyCreated: "true"}, false},
	} {
		if got := isCreatedBridge(tt.ids); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
