package dataplane

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/functests/virtxml"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func testBoot() TestBoot {
	return TestBoot{
		Kernel: "/cache/vmlinuz", Initrd: "/cache/initrd.gz", Cmdline: "console=ttyS0 vhu.ip=10.0.0.1/24",
		ConsoleLog: "/work/consoles/a.log",
		Layout:     socketpath.Layout{KubeletRoot: "/work/kubelet", Volume: socketpath.DefaultVolume, ShortDir: "/work/s"},
		PodUID:     "7e570000-0000-4000-8000-000000000001",
	}
}

func parse(t *testing.T, s string) *libvirtxml.Domain {
	t.Helper()
	d := &libvirtxml.Domain{}
	if err := d.Unmarshal(s); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMakeRunnable checks each documented change on real sidecar output
// (testdata written from the KubeVirt compatibility test), and that the rest
// is untouched.
func TestMakeRunnable(t *testing.T) {
	for _, tc := range []struct {
		file     string
		networks []string
	}{
		{"testdata/sidecar-one.xml", []string{"vhu"}},
		{"testdata/sidecar-two.xml", []string{"vhu-a", "vhu-b"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			b := testBoot()
			out, err := MakeRunnableOnThisHost(string(in), b)
			if err != nil {
				t.Fatal(err)
			}
			before, after := parse(t, string(in)), parse(t, out)
			if after.Type != "qemu" {
				t.Errorf("type %q, want qemu", after.Type)
			}
			if after.OS.Kernel != b.Kernel || after.OS.Initrd != b.Initrd || after.OS.Cmdline != b.Cmdline {
				t.Errorf("os %+v: want kernel %s initrd %s cmdline %q", after.OS, b.Kernel, b.Initrd, b.Cmdline)
			}
			if len(after.Devices.Interfaces) != len(tc.networks) {
				t.Fatalf("%d interfaces, want only the %d vhost-user ones", len(after.Devices.Interfaces), len(tc.networks))
			}
			if after.QEMUOverride == nil || len(after.QEMUOverride.Devices) != len(tc.networks) {
				t.Fatalf("qemu override %+v: want one device per vhost-user interface", after.QEMUOverride)
			}
			for i, net := range tc.networks {
				ifName := socketpath.PodInterfaceName(net)
				p, err := b.Layout.For(socketpath.Attachment{PodUID: b.PodUID, IfName: ifName})
				if err != nil {
					t.Fatal(err)
				}
				iface := after.Devices.Interfaces[i]
				if got := iface.Source.VHostUser.Chardev.UNIX.Path; got != p.OVSSocket {
					t.Errorf("%s: socket %s, want host view %s", net, got, p.OVSSocket)
				}
				ov := after.QEMUOverride.Devices[i]
				want := []libvirtxml.DomainQEMUOverrideProperty{{Name: "vectors", Type: "unsigned", Value: "0"}}
				if ov.Alias != "ua-"+net || !reflect.DeepEqual(ov.Frontend.Properties, want) {
					t.Errorf("override %+v: want alias ua-%s with vectors=0", ov, net)
				}
				// Apart from the path, the interface is the sidecar's.
				orig := findAlias(before, "ua-"+net)
				if orig == nil {
					t.Fatalf("input has no ua-%s", net)
				}
				orig.Source.VHostUser.Chardev.UNIX.Path = p.OVSSocket
				if !reflect.DeepEqual(*orig, iface) {
					t.Errorf("%s: interface changed beyond the socket path:\nin:  %+v\nout: %+v", net, *orig, iface)
				}
			}
			if len(after.Devices.Serials) != 1 || after.Devices.Serials[0].Source.File == nil || after.Devices.Serials[0].Source.File.Path != b.ConsoleLog {
				t.Errorf("serial %+v: want one file serial at %s", after.Devices.Serials, b.ConsoleLog)
			}
			if len(after.Devices.Graphics) != 0 {
				t.Errorf("graphics kept: %+v", after.Devices.Graphics)
			}
			// What libvirtd is handed must be valid for libvirt's schema.
			if err := virtxml.Validate(context.Background(), out); err != nil {
				t.Errorf("runnable domain: %v", err)
			}
			if !reflect.DeepEqual(before.MemoryBacking, after.MemoryBacking) || !reflect.DeepEqual(before.CPU, after.CPU) ||
				!reflect.DeepEqual(before.Memory, after.Memory) || !reflect.DeepEqual(before.Devices.Controllers, after.Devices.Controllers) {
				t.Error("memory, CPU or controllers changed: only the documented changes are allowed")
			}
		})
	}
}

func findAlias(d *libvirtxml.Domain, alias string) *libvirtxml.DomainInterface {
	for i := range d.Devices.Interfaces {
		if a := d.Devices.Interfaces[i].Alias; a != nil && a.Name == alias {
			return &d.Devices.Interfaces[i]
		}
	}
	return nil
}

func TestMakeRunnableRejects(t *testing.T) {
	one, err := os.ReadFile("testdata/sidecar-one.xml")
	if err != nil {
		t.Fatal(err)
	}
	compute, _ := socketpath.ComputeSocketForNetwork("vhu")
	badUID := testBoot()
	badUID.PodUID = "../etc"
	for _, tc := range []struct {
		name, xml string
		boot      TestBoot
		want      string
	}{
		{"not XML", "<domain", testBoot(), "parse"},
		{"socket outside the contract", strings.Replace(string(one), compute, "/tmp/evil/vhost.sock", 1), testBoot(), "not a compute-view path"},
		{"traversal in path", strings.Replace(string(one), compute, "/var/run/kubevirt-hooks/vhostuser/../../x/vhost.sock", 1), testBoot(), "not a compute-view path"},
		{"bad pod UID", string(one), badUID, "pod UID"},
		{"no vhost-user interface", `<domain type="kvm"><name>x</name><devices></devices></domain>`, testBoot(), "no vhost-user interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MakeRunnableOnThisHost(tc.xml, tc.boot)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
