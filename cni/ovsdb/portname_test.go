package ovsdb

import (
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func TestPortName(t *testing.T) {
	seen := map[string]bool{}
	tests := []socketpath.Attachment{
		{PodUID: "a", IfName: "net1"},
		{PodUID: "a", IfName: "net2"},
		{PodUID: "b", IfName: "net1"},
		{PodUID: "a\x00n", IfName: "et1"},
		{PodUID: "0f1d3b4e-58a4-4a1c-9a0e-93e3b1d5b2c7", IfName: "pod16477688c0e"},
	}
	for _, a := range tests {
		n := PortName(socketpath.AttachmentID(a))
		if len(n) != 3+socketpath.IDLen || !strings.HasPrefix(n, "vhu") {
			t.Errorf("%+v: port name %q is not vhu + the 128-bit ID in hex", a, n)
		}
		if n != PortName(socketpath.AttachmentID(a)) {
			t.Errorf("%+v: port name not deterministic", a)
		}
		if seen[n] {
			t.Errorf("%+v: port name %q collides", a, n)
		}
		seen[n] = true
	}
}
