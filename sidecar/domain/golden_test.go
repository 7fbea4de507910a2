package domain

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kvv1 "kubevirt.io/api/core/v1"
	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

type goldenCase struct {
	name   string
	domain string
	vmi    *vmiBuilder
	opts   Options
	ours   []string // aliases of the interfaces we must produce
}

func goldenCases() []goldenCase {
	multiqueue := func(v *kvv1.VirtualMachineInstance) { v.Spec.Domain.Devices.NetworkInterfaceMultiQueue = ptr(true) }
	return []goldenCase{
		{name: "one", domain: "domain-base.xml", vmi: newVMI().vhost("dpdk0"), ours: []string{"ua-dpdk0"}},
		{
			name: "several-next-to-others", domain: "domain-placeholder.xml",
			vmi:  newVMI().vhost("dpdk0").bridge("blue").vhost("dpdk1").vhost("dpdk2"),
			opts: Options{MTU: map[string]uint{"dpdk1": 9000}},
			ours: []string{"ua-dpdk0", "ua-dpdk1", "ua-dpdk2"},
		},
		{
			name: "kitchen-sink", domain: "domain-kitchen-sink.xml",
			vmi:  newVMI().vhost("dpdk0").vhost("dpdk1", func(i *kvv1.Interface) { i.BootOrder = ptr(uint(2)) }).with(multiqueue),
			ours: []string{"ua-dpdk0", "ua-dpdk1"},
		},
		{name: "multiqueue-4vcpu", domain: "domain-4vcpu.xml", vmi: newVMI().vhost("dpdk0").with(multiqueue), ours: []string{"ua-dpdk0"}},
		{name: "multiqueue-capped", domain: "domain-16vcpu.xml", vmi: newVMI().vhost("dpdk0").vhost("dpdk1").with(multiqueue), ours: []string{"ua-dpdk0", "ua-dpdk1"}},
		{name: "hugepages-numa", domain: "domain-hugepages-numa.xml", vmi: newVMI().vhost("dpdk0").with(multiqueue), ours: []string{"ua-dpdk0"}},
		{
			name: "virtio-transitional", domain: "domain-base.xml",
			vmi:  newVMI().vhost("dpdk0").with(func(v *kvv1.VirtualMachineInstance) { v.Spec.Domain.Devices.UseVirtioTransitional = ptr(true) }),
			ours: []string{"ua-dpdk0"},
		},
		{
			name: "mac-pci-acpi-boot", domain: "domain-base.xml",
			vmi: newVMI().vhost("dpdk0", func(i *kvv1.Interface) {
				i.MacAddress = "02-00-00-0A-0B-0C" // KubeVirt accepts the dash form; libvirt gets colons
				i.PciAddress = "0000:00:1a.0"
				i.ACPIIndex = 3
				i.BootOrder = ptr(uint(2))
			}),
			opts: Options{MTU: map[string]uint{"dpdk0": 1500}},
			ours: []string{"ua-dpdk0"},
		},
	}
}

// TestRewriteGolden compares every case with testdata/golden/<name>.xml
// (go test -run TestRewriteGolden -update rewrites them), validates the output
// with virt-xml-validate and checks nothing but our changes happened.
func TestRewriteGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := readTestdata(t, tc.domain)
			out, err := Rewrite(in, tc.vmi.json(t), tc.opts)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			golden := filepath.Join("testdata", "golden", tc.name+".xml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestRewriteGolden -update)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from %s (go test -update to accept)\n--- got ---\n%s", golden, out)
			}
			validateDomain(t, tc.name, out)

			ours := map[string]bool{}
			for _, a := range tc.ours {
				ours[a] = true
			}
			if got, want := withoutOurChanges(t, out, ours), withoutOurChanges(t, in, ours); got != want {
				t.Errorf("the rewrite changed more than our interfaces and memory:\n got %s\nwant %s", got, want)
			}
			checkInvariants(t, out, tc.vmi)
		})
	}
}

// checkInvariants asserts the properties the golden files encode, so that a
// careless -update cannot bless a broken output.
func checkInvariants(t *testing.T, out []byte, b *vmiBuilder) {
	t.Helper()
	dom := &libvirtxml.Domain{}
	if err := dom.Unmarshal(string(out)); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	// Interfaces follow the VMI's order; placeholders stay last.
	var order []string
	for _, i := range dom.Devices.Interfaces {
		if i.Alias != nil {
			order = append(order, i.Alias.Name)
		}
	}
	var want []string
	for _, vi := range b.vmi.Spec.Domain.Devices.Interfaces {
		if slices.Contains(order, "ua-"+vi.Name) {
			want = append(want, "ua-"+vi.Name)
		}
	}
	for _, a := range order {
		if strings.HasPrefix(a, "placeholder") {
			want = append(want, a)
		}
	}
	if !slices.Equal(order, want) {
		t.Errorf("interface order %v, want %v", order, want)
	}
	byAlias := map[string]libvirtxml.DomainInterface{}
	for _, i := range dom.Devices.Interfaces {
		if i.Alias != nil {
			if _, dup := byAlias[i.Alias.Name]; dup {
				t.Errorf("alias %s appears twice", i.Alias.Name)
			}
			byAlias[i.Alias.Name] = i
		}
	}
	for _, vi := range b.vmi.Spec.Domain.Devices.Interfaces {
		if vi.Binding == nil {
			continue
		}
		di, ok := byAlias["ua-"+vi.Name]
		if !ok {
			t.Fatalf("no interface with alias ua-%s", vi.Name)
		}
		want, _ := socketpath.ComputeSocketForNetwork(vi.Name)
		if di.Source == nil || di.Source.VHostUser == nil || di.Source.VHostUser.Chardev == nil || di.Source.VHostUser.Chardev.UNIX == nil {
			t.Fatalf("ua-%s: not a vhostuser unix source", vi.Name)
		}
		u := di.Source.VHostUser.Chardev.UNIX
		if u.Path != want || u.Mode != "server" {
			t.Errorf("ua-%s: source path=%q mode=%q, want %q server", vi.Name, u.Path, u.Mode, want)
		}
		if di.Driver == nil || di.Driver.RXQueueSize != QueueSize || di.Driver.TXQueueSize != QueueSize {
			t.Errorf("ua-%s: driver %+v lacks rx/tx_queue_size %d", vi.Name, di.Driver, QueueSize)
		}
	}
	mb := dom.MemoryBacking
	if mb == nil || mb.MemoryAccess == nil || mb.MemoryAccess.Mode != "shared" {
		t.Errorf("memory access is not shared: %+v", mb)
	} else if mb.MemoryHugePages == nil && (mb.MemorySource == nil || mb.MemorySource.Type != "memfd") {
		t.Errorf("no hugepages and no memfd source: %+v", mb)
	}
	if dom.CPU != nil && dom.CPU.Numa != nil {
		for i, c := range dom.CPU.Numa.Cell {
			if c.MemAccess != "shared" {
				t.Errorf("NUMA cell %d memAccess %q", i, c.MemAccess)
			}
		}
	}
}
