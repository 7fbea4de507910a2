package config

import (
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// TestNodeFieldsRepeated: the narrow override. A NAD written before the node
// configuration existed, with the defaults spelled out, still parses (the
// fields are reported); DEL and GC ignore node fields whatever their value.
func TestNodeFieldsRepeated(t *testing.T) {
	n, err := ParseNode(nil)
	if err != nil {
		t.Fatal(err)
	}
	old := `{"cniVersion":"1.1.0","name":"n","type":"vhostuser","bridge":"b","ovsdbSocket":"/var/run/openvswitch/db.sock",` +
		`"kubeletRoot":"/var/lib/kubelet","shortSocketDir":"/var/run/vhostuser","socketDirGroup":107,"socketDirMode":"01777"}`
	c, err := ParseWithNode([]byte(old), n)
	if err != nil {
		t.Fatalf("NAD repeating the node's values: %v", err)
	}
	if len(c.Repeated) != 5 {
		t.Errorf("repeated %v, want 5 fields", c.Repeated)
	}
	other := `{"cniVersion":"1.1.0","name":"n","type":"vhostuser","bridge":"b","kubeletRoot":"/elsewhere","socketDirMode":"0770","socketDirOwner":107,"logFile":"/etc/passwd"}`
	if _, err := ParseWithNode([]byte(other), n); err == nil {
		t.Fatal("NAD with other node values accepted for ADD")
	}
	c, err = ParseForCleanup([]byte(other), n)
	if err != nil {
		t.Fatalf("ParseForCleanup: %v", err)
	}
	if c.Node.KubeletRoot != socketpath.DefaultKubeletRoot || c.Node.LogFile != "" || c.Node.Mode() != 0o1777 {
		t.Errorf("cleanup took a NAD's node value: root %q log %q mode %#o", c.Node.KubeletRoot, c.Node.LogFile, c.Node.Mode())
	}
}
