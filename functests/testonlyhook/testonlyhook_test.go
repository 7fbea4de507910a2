package testonlyhook

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

const vhostUserDomain = `<domain type="qemu" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"><name>default_vm-a</name>
<devices><interface type="vhostuser"><mac address="02:00:00:00:00:01"/><source type="unix" path="/var/run/kubevirt-hooks/vhostuser/pod0/vhost.sock" mode="server"/><model type="virtio-non-transitional"/><alias name="ua-vhu"/></interface></devices></domain>`

func TestAddVectorsZero(t *testing.T) {
	tests := []struct {
		name, in  string
		overrides int
		seen      []Interface
	}{
		{"vhost-user interface", vhostUserDomain, 1,
			[]Interface{{Alias: "ua-vhu", Path: "/var/run/kubevirt-hooks/vhostuser/pod0/vhost.sock", Mode: "server"}}},
		{"no interface", `<domain type="qemu"><name>d</name><devices/></domain>`, 0, nil},
		{"tap interface only", `<domain type="qemu"><name>d</name><devices><interface type="ethernet"><alias name="ua-x"/></interface></devices></domain>`, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, seen, err := AddVectorsZero(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != len(tc.seen) || (len(seen) > 0 && seen[0] != tc.seen[0]) {
				t.Fatalf("seen %+v, want %+v", seen, tc.seen)
			}
			// A later define passes the output through again: still one override per device.
			again, _, err := AddVectorsZero(out)
			if err != nil {
				t.Fatal(err)
			}
			var d libvirtxml.Domain
			if err := d.Unmarshal(again); err != nil {
				t.Fatal(err)
			}
			n := 0
			if d.QEMUOverride != nil {
				for _, dev := range d.QEMUOverride.Devices {
					n++
					p := dev.Frontend.Properties
					if dev.Alias != "ua-vhu" || len(p) != 1 || p[0].Name != "vectors" || p[0].Value != "0" || p[0].Type != "unsigned" {
						t.Errorf("override %+v", dev)
					}
				}
			}
			if n != tc.overrides {
				t.Fatalf("%d overrides, want %d:\n%s", n, tc.overrides, again)
			}
			if tc.overrides > 0 && !strings.Contains(again, `path="/var/run/kubevirt-hooks/vhostuser/pod0/vhost.sock"`) {
				t.Fatalf("socket path changed:\n%s", again)
			}
		})
	}
}

func TestAddVectorsZeroBadXML(t *testing.T) {
	if _, _, err := AddVectorsZero("<domain"); err == nil {
		t.Fatal("no error for broken XML")
	}
}
