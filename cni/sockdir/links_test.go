package sockdir

import "testing"

func TestParseTarget(t *testing.T) {
	const root = "/var/lib/kubelet"
	const uid = "0f5e3b1c-8a6d-4d2e-9b7a-1c2d3e4f5a6b"
	for _, tc := range []struct {
		target     string
		uid, iface string
		ok         bool
	}{
		{root + "/pods/" + uid + "/volumes/kubernetes.io~empty-dir/vhostuser-sockets/vhostuser/pod1234567890a", uid, "pod1234567890a", true},
		{root + "/pods/" + uid + "/volumes/x/other/pod1234567890a", "", "", false},
		{"/elsewhere/pods/" + uid + "/volumes/x/vhostuser/pod1", "", "", false},
		{root + "/pods/" + uid + "/volumes/x/../vhostuser/pod1", "", "", false},
		{root + "/pods/" + uid + "/etc/x/vhostuser/pod1", "", "", false},
	} {
		uid, iface, ok := ParseTarget(root, tc.target)
		if ok != tc.ok || uid != tc.uid || iface != tc.iface {
			t.Errorf("ParseTarget(%q) = %q, %q, %v; want %q, %q, %v", tc.target, uid, iface, ok, tc.uid, tc.iface, tc.ok)
		}
	}
}
