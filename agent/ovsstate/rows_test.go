package ovsstate

import (
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

func marks(pod string) map[string]string {
	return map[string]string{ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyNamespace: "ns", ovsdb.KeyPodName: pod,
		ovsdb.KeyPodUID: "uid-" + pod, ovsdb.KeyContainerID: "c-" + pod, ovsdb.KeyIfName: "net1", ovsdb.KeyNetwork: "vhu"}
}

func ptr[T any](v T) *T { return &v }

func TestBuildPorts(t *testing.T) {
	ifaces := map[string]*interfaceRow{
		"i-b": {UUID: "i-b", Name: "vhub", Type: "dpdkvhostuserclient", ExternalIDs: marks("b"),
			Options: map[string]string{"vhost-server-path": "/s/b"}, LinkState: ptr("up"), MTU: ptr(1500),
			Status: map[string]string{"status": "connected"}, Statistics: map[string]int{"rx_packets": 3}},
		"i-a":      {UUID: "i-a", Name: "vhua", ExternalIDs: marks("a"), Error: ptr("boom")},
		"i-theirs": {UUID: "i-theirs", Name: "eth0", ExternalIDs: map[string]string{}},
	}
	ports := map[string]*portRow{
		"p-b": {UUID: "p-b", Name: "vhub", Interfaces: []string{"i-b"}, ExternalIDs: marks("b")},
		"p-a": {UUID: "p-a", Name: "vhua", Interfaces: []string{"i-a"}, ExternalIDs: marks("a")},
		// Not ours (the mark was removed in an update): left out.
		"p-theirs": {UUID: "p-theirs", Name: "eth0", Interfaces: []string{"i-theirs"},
			ExternalIDs: map[string]string{ovsdb.KeyOwner: "someone-else"}},
		// Interface row not cached yet: left out until it is.
		"p-c": {UUID: "p-c", Name: "vhuc", Interfaces: []string{"i-c"}, ExternalIDs: marks("c")},
		// Ours, but its interface is not: left out.
		"p-d": {UUID: "p-d", Name: "vhud", Interfaces: []string{"i-theirs"}, ExternalIDs: marks("d")},
	}
	got := buildPorts(ports, ifaces)
	if len(got) != 2 || got[0].Name != "vhua" || got[1].Name != "vhub" {
		t.Fatalf("ports %+v, want vhua and vhub in that order", got)
	}
	b := got[1]
	if b.Namespace != "ns" || b.Pod != "b" || b.PodUID != "uid-b" || b.ContainerID != "c-b" || b.IfName != "net1" || b.Network != "vhu" {
		t.Errorf("identity %+v", b)
	}
	i := b.Interface
	if i.Type != "dpdkvhostuserclient" || i.LinkState != "up" || i.MTU != 1500 || i.ServerPath != "/s/b" ||
		!i.Connected() || i.Statistics["rx_packets"] != 3 || i.Error != "" {
		t.Errorf("interface %+v", i)
	}
	if a := got[0].Interface; a.Error != "boom" || a.LinkState != "" || a.MTU != 0 || a.Connected() {
		t.Errorf("interface with nothing reported: %+v", a)
	}
}

func TestQueues(t *testing.T) {
	for vrings, want := range map[string]int{"": 0, "0": 0, "x": 0, "2": 1, "8": 4, "3": 2} {
		i := Interface{Status: map[string]string{StatusVrings: vrings}}
		n, ok := i.Queues()
		if n != want || ok != (want > 0) {
			t.Errorf("num_of_vrings %q: %d %v, want %d", vrings, n, ok, want)
		}
	}
}
