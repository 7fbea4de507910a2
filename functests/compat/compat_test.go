// The sidecar binary runs as its own process in the hooks directory
// virt-launcher uses; KubeVirt's hooks manager collects it and calls
// OnDefineDomain (twice, with virt-launcher's re-parse in between) and
// Shutdown.
package compat

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "kubevirt.io/api/core/v1"
	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/functests/dataplane"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcher"
	"github.com/kubevirt-vhostuser/vhostuser/functests/virtxml"
	"github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func sidecarBinary(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VHOSTUSER_BIN")
	if dir == "" {
		t.Fatal("VHOSTUSER_BIN is not set: run `make functest` or set it to the directory holding vhostuser-sidecar (make build)")
	}
	bin := filepath.Join(dir, "vhostuser-sidecar")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("sidecar binary: %v (make build)", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root: KubeVirt's hooks manager only looks in %s", launcher.HooksDir)
	}
	return bin
}

// expect is what a case's result must show.
type expect struct {
	queues    uint // driver queues on every vhost-user interface, 0 = none
	hugepages bool
	numaCells int
}

func TestKubeVirtDrivesSidecar(t *testing.T) {
	bin := sidecarBinary(t)
	const uid = "c0ffee00-0000-4000-8000-000000000001"
	cases := []struct {
		name string
		vmi  *v1.VirtualMachineInstance
		want expect
	}{
		{"one vhostuser beside masquerade",
			vmi.New("one", uid, vmi.WithVhostUser("vhu", "vhostuser-net", "02:00:00:00:01:01")),
			expect{}},
		{"two vhostuser beside masquerade",
			vmi.New("two", uid, vmi.WithVhostUser("vhu-a", "vhostuser-net", "02:00:00:00:02:01"), vmi.WithVhostUser("vhu-b", "vhostuser-net-b", "")),
			expect{}},
		{"multiqueue with 4 vCPUs",
			vmi.New("mq", uid, vmi.WithVhostUser("vhu", "vhostuser-net", ""), vmi.WithCPUs(4), vmi.WithMultiqueue()),
			expect{queues: 4}},
		{"hugepages",
			vmi.New("huge", uid, vmi.WithVhostUser("vhu", "vhostuser-net", ""), vmi.WithHugepages("2Mi")),
			expect{hugepages: true, numaCells: 1}},
		{"NUMA passthrough guest",
			vmi.New("numa", uid, vmi.WithVhostUser("vhu", "vhostuser-net", ""), vmi.WithCPUs(4), vmi.WithMultiqueue(),
				vmi.WithHugepages("2Mi"), vmi.WithMemory("512Mi"), vmi.WithNUMAPassthrough()),
			expect{queues: 4, hugepages: true, numaCells: 2}},
		{"vhostuser only, no pod network",
			vmi.New("solo", uid, vmi.WithoutPodNetwork(), vmi.WithVhostUser("vhu", "vhostuser-net", "")),
			expect{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dom, err := launcher.Convert(tc.vmi)
			if err != nil {
				t.Fatal(err)
			}
			if err := virtxml.Validate(ctx, mustXML(t, dom.Spec)); err != nil {
				t.Fatalf("KubeVirt's own domain does not validate (test setup): %v", err)
			}

			logFile, err := os.Create(filepath.Join(t.TempDir(), "sidecar.log"))
			if err != nil {
				t.Fatal(err)
			}
			s, err := launcher.StartSidecar(ctx, bin, dataplane.SidecarArgs, nil, logFile)
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					s.Close()
				}
				logFile.Close()
			})
			// The sidecar sits where virt-launcher looks, and nothing else does.
			entries, err := os.ReadDir(s.SocketDir)
			if err != nil || len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".sock") {
				t.Fatalf("socket directory %s: want exactly one *.sock, got %v (%v)", s.SocketDir, names(entries), err)
			}

			first, err := s.OnDefineDomain(&dom.Spec, tc.vmi)
			if err != nil {
				t.Fatalf("first OnDefineDomain: %v\nsidecar log:\n%s", err, readFile(logFile.Name()))
			}
			// virt-launcher parses the result back into its own schema
			// before the next define, losing what it does not model.
			spec, err := launcher.Redefine(first)
			if err != nil {
				t.Fatal(err)
			}
			second, err := s.OnDefineDomain(spec, tc.vmi)
			if err != nil {
				t.Fatalf("second OnDefineDomain: %v\nsidecar log:\n%s", err, readFile(logFile.Name()))
			}
			closed = true
			if err := s.Close(); err != nil {
				t.Fatalf("sidecar did not exit 0 after Shutdown: %v\nsidecar log:\n%s", err, readFile(logFile.Name()))
			}
			if _, err := os.Stat(s.SocketDir); !os.IsNotExist(err) {
				t.Errorf("socket directory %s still there after the session: %v", s.SocketDir, err)
			}

			d1 := checkDomain(t, "first define", first, tc.vmi, tc.want)
			d2 := checkDomain(t, "second define", second, tc.vmi, tc.want)
			if !reflect.DeepEqual(vhostUser(d1), vhostUser(d2)) {
				t.Errorf("not idempotent: vhost-user interfaces differ between defines\nfirst:  %+v\nsecond: %+v", vhostUser(d1), vhostUser(d2))
			}
			if len(d1.Devices.Interfaces) != len(d2.Devices.Interfaces) {
				t.Errorf("not idempotent: %d interfaces after the first define, %d after the second", len(d1.Devices.Interfaces), len(d2.Devices.Interfaces))
			}
			if !reflect.DeepEqual(d1.MemoryBacking, d2.MemoryBacking) {
				t.Errorf("not idempotent: memoryBacking differs\nfirst:  %+v\nsecond: %+v", d1.MemoryBacking, d2.MemoryBacking)
			}
			for name, x := range map[string]string{"first": first, "second": second} {
				if err := virtxml.Validate(ctx, x); err != nil {
					t.Errorf("%s result fails libvirt's schema: %v", name, err)
				}
			}
		})
	}
}

// checkDomain asserts the sidecar's output for vmi and returns it parsed.
func checkDomain(t *testing.T, when, domainXML string, vm *v1.VirtualMachineInstance, want expect) *libvirtxml.Domain {
	t.Helper()
	d := &libvirtxml.Domain{}
	if err := d.Unmarshal(domainXML); err != nil {
		t.Fatalf("%s: sidecar output is not domain XML: %v", when, err)
	}
	byAlias := map[string]libvirtxml.DomainInterface{}
	pod := 0
	for _, i := range d.Devices.Interfaces {
		if i.Alias == nil {
			t.Errorf("%s: interface without alias: %+v", when, i)
			continue
		}
		if i.Source != nil && i.Source.VHostUser != nil {
			if _, dup := byAlias[i.Alias.Name]; dup {
				t.Errorf("%s: interface %s appears twice", when, i.Alias.Name)
			}
			byAlias[i.Alias.Name] = i
		} else if i.Alias.Name == "ua-default" {
			pod++
		}
	}
	wantPod := 0
	var wantVU []v1.Interface
	for _, i := range vm.Spec.Domain.Devices.Interfaces {
		switch {
		case i.Masquerade != nil:
			wantPod++
		case i.Binding != nil && i.Binding.Name == vmi.BindingName:
			wantVU = append(wantVU, i)
		}
	}
	if pod != wantPod {
		t.Errorf("%s: %d pod network interfaces, want %d (the sidecar must leave them alone)", when, pod, wantPod)
	}
	if len(byAlias) != len(wantVU) {
		t.Errorf("%s: %d vhost-user interfaces, want %d", when, len(byAlias), len(wantVU))
	}
	for _, vi := range wantVU {
		i, ok := byAlias["ua-"+vi.Name]
		if !ok {
			t.Errorf("%s: no vhost-user interface with alias ua-%s", when, vi.Name)
			continue
		}
		wantPath, err := socketpath.ComputeSocketForNetwork(vi.Name)
		if err != nil {
			t.Fatal(err)
		}
		src := i.Source.VHostUser.Chardev
		if src == nil || src.UNIX == nil || src.UNIX.Path != wantPath || src.UNIX.Mode != "server" {
			t.Errorf("%s: %s source %+v, want unix %s mode server", when, vi.Name, src, wantPath)
		}
		if i.Model == nil || !strings.HasPrefix(i.Model.Type, "virtio") {
			t.Errorf("%s: %s model %+v, want virtio", when, vi.Name, i.Model)
		}
		if vi.MacAddress != "" && (i.MAC == nil || !strings.EqualFold(i.MAC.Address, vi.MacAddress)) {
			t.Errorf("%s: %s MAC %+v, want %s", when, vi.Name, i.MAC, vi.MacAddress)
		}
		var queues uint
		if i.Driver != nil {
			queues = i.Driver.Queues
		}
		if want.queues > 0 && queues != want.queues {
			t.Errorf("%s: %s driver queues %d, want %d", when, vi.Name, queues, want.queues)
		}
		if want.queues == 0 && queues > 1 {
			t.Errorf("%s: %s driver queues %d without multiqueue", when, vi.Name, queues)
		}
	}

	mb := d.MemoryBacking
	if mb == nil || mb.MemoryAccess == nil || mb.MemoryAccess.Mode != "shared" {
		t.Errorf("%s: memoryBacking %+v, want <access mode='shared'/> (vhost-user needs shared guest memory)", when, mb)
	} else {
		if want.hugepages && mb.MemoryHugePages == nil {
			t.Errorf("%s: hugepages dropped from memoryBacking", when)
		}
		if mb.MemorySource == nil || (mb.MemorySource.Type != "memfd" && !(want.hugepages && mb.MemorySource.Type == "")) {
			t.Errorf("%s: memory source %+v, want memfd (or hugepages)", when, mb.MemorySource)
		}
	}
	cells := 0
	if d.CPU != nil && d.CPU.Numa != nil {
		for _, c := range d.CPU.Numa.Cell {
			cells++
			if c.MemAccess != "" && c.MemAccess != "shared" {
				t.Errorf("%s: NUMA cell %v memAccess %q, want shared", when, c.ID, c.MemAccess)
			}
		}
	}
	if want.numaCells > 0 && cells != want.numaCells {
		t.Errorf("%s: %d NUMA cells, want %d", when, cells, want.numaCells)
	}
	return d
}

func vhostUser(d *libvirtxml.Domain) []libvirtxml.DomainInterface {
	var out []libvirtxml.DomainInterface
	for _, i := range d.Devices.Interfaces {
		if i.Source != nil && i.Source.VHostUser != nil {
			out = append(out, i)
		}
	}
	return out
}

func mustXML(t *testing.T, v any) string {
	t.Helper()
	// As KubeVirt's hooks manager prints the spec.
	out, err := xml.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func names(entries []os.DirEntry) []string {
	var n []string
	for _, e := range entries {
		n = append(n, e.Name())
	}
	return n
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprint(err)
	}
	return string(b)
}
