package domain

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kvv1 "kubevirt.io/api/core/v1"
	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func ptr[T any](v T) *T { return &v }

// vmiBuilder builds the VMIs of the tests: a masquerade pod network interface
// "default" plus whatever the case adds.
type vmiBuilder struct{ vmi kvv1.VirtualMachineInstance }

func newVMI() *vmiBuilder {
	b := &vmiBuilder{}
	b.vmi.TypeMeta = metav1.TypeMeta{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachineInstance"}
	b.vmi.ObjectMeta = metav1.ObjectMeta{Name: "vmi-vhostuser", Namespace: "default", UID: types.UID("0f7a3b5e-2c1d-4e8f-9a6b-7c5d3e1f2a4b")}
	b.vmi.Spec.Domain.Devices.Interfaces = []kvv1.Interface{{
		Name:                   "default",
		InterfaceBindingMethod: kvv1.InterfaceBindingMethod{Masquerade: &kvv1.InterfaceMasquerade{}},
	}}
	b.vmi.Spec.Networks = []kvv1.Network{{Name: "default", NetworkSource: kvv1.NetworkSource{Pod: &kvv1.PodNetwork{}}}}
	return b
}

// vhost adds a vhostuser interface on a Multus network of the same name.
func (b *vmiBuilder) vhost(name string, mod ...func(*kvv1.Interface)) *vmiBuilder {
	iface := kvv1.Interface{Name: name, Binding: &kvv1.PluginBinding{Name: "vhostuser"}}
	for _, m := range mod {
		m(&iface)
	}
	b.vmi.Spec.Domain.Devices.Interfaces = append(b.vmi.Spec.Domain.Devices.Interfaces, iface)
	b.vmi.Spec.Networks = append(b.vmi.Spec.Networks, kvv1.Network{Name: name, NetworkSource: kvv1.NetworkSource{
		Multus: &kvv1.MultusNetwork{NetworkName: "ovs-dpdk-" + name}}})
	return b
}

// bridge adds a bridge-binding interface on a Multus network: not ours.
func (b *vmiBuilder) bridge(name string) *vmiBuilder {
	b.vmi.Spec.Domain.Devices.Interfaces = append(b.vmi.Spec.Domain.Devices.Interfaces, kvv1.Interface{
		Name: name, InterfaceBindingMethod: kvv1.InterfaceBindingMethod{Bridge: &kvv1.InterfaceBridge{}}})
	b.vmi.Spec.Networks = append(b.vmi.Spec.Networks, kvv1.Network{Name: name, NetworkSource: kvv1.NetworkSource{
		Multus: &kvv1.MultusNetwork{NetworkName: "linux-bridge"}}})
	return b
}

func (b *vmiBuilder) with(f func(*kvv1.VirtualMachineInstance)) *vmiBuilder { f(&b.vmi); return b }

// podIfaces sets status.interfaces[].podInterfaceName per network, as
// KubeVirt's controller reports them.
func podIfaces(names map[string]string) func(*kvv1.VirtualMachineInstance) {
	return func(v *kvv1.VirtualMachineInstance) {
		for _, n := range v.Spec.Networks {
			if name, ok := names[n.Name]; ok {
				v.Status.Interfaces = append(v.Status.Interfaces, kvv1.VirtualMachineInstanceNetworkInterface{Name: n.Name, PodInterfaceName: name})
			}
		}
	}
}

func (b *vmiBuilder) json(t testing.TB) []byte {
	t.Helper()
	j, err := json.Marshal(&b.vmi)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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

// TestRewriteDetails checks the individual attributes table-wise.
func TestRewriteDetails(t *testing.T) {
	cases := []struct {
		name   string
		domain string
		vmi    *vmiBuilder
		opts   Options
		want   []string // substrings of the output
		reject []string // substrings that must not appear
	}{
		{name: "no multiqueue: no queues", domain: "domain-16vcpu.xml", vmi: newVMI().vhost("a"), reject: []string{"queues=\""}},
		{name: "multiqueue 4 vCPUs", domain: "domain-4vcpu.xml", vmi: newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) {
			v.Spec.Domain.Devices.NetworkInterfaceMultiQueue = ptr(true)
		}), want: []string{`queues="4"`}},
		{name: "multiqueue capped by option", domain: "domain-16vcpu.xml", opts: Options{MaxQueues: 2}, vmi: newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) {
			v.Spec.Domain.Devices.NetworkInterfaceMultiQueue = ptr(true)
		}), want: []string{`queues="2"`}},
		{name: "hugepages kept, no memfd added twice", domain: "domain-hugepages-numa.xml", vmi: newVMI().vhost("a"),
			want: []string{"<hugepages></hugepages>", `<source type="memfd"></source>`, `<access mode="shared"></access>`, `memAccess="shared"`}},
		{name: "plain memory gets memfd", domain: "domain-base.xml", vmi: newVMI().vhost("a"),
			want: []string{`<source type="memfd"></source>`, `<access mode="shared"></access>`}, reject: []string{"hugepages"}},
		{name: "mtu from network-info", domain: "domain-base.xml", vmi: newVMI().vhost("a"), opts: Options{MTU: map[string]uint{"a": 8900}},
			want: []string{`<mtu size="8900"></mtu>`}},
		{name: "custom binding name", domain: "domain-base.xml", opts: Options{BindingName: "dpdk"},
			vmi:  newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) { v.Spec.Domain.Devices.Interfaces[1].Binding.Name = "dpdk" }),
			want: []string{`type="vhostuser"`, "ua-a"}},
		{name: "other binding untouched", domain: "domain-base.xml", opts: Options{BindingName: "dpdk"}, vmi: newVMI().vhost("a"),
			reject: []string{`type="vhostuser"`, "memfd"}},
		{name: "placeholder untouched", domain: "domain-placeholder.xml", vmi: newVMI().vhost("a"),
			want: []string{`<alias name="placeholder-0"></alias>`, `<target dev="placeholder-0" managed="no"></target>`}},
		{name: "no boot order: ROM off", domain: "domain-base.xml", vmi: newVMI().vhost("a"),
			want: []string{"<rom enabled=\"no\"></rom>\n      <alias name=\"ua-a\">"}},
		{name: "boot order: ROM on", domain: "domain-base.xml", vmi: newVMI().vhost("a", func(i *kvv1.Interface) { i.BootOrder = ptr(uint(1)) }),
			want: []string{`<boot order="1"></boot>`}, reject: []string{"<rom enabled=\"no\"></rom>\n      <alias name=\"ua-a\">"}},
		{name: "model virtio accepted", domain: "domain-base.xml", vmi: newVMI().vhost("a", func(i *kvv1.Interface) { i.Model = "virtio" }),
			want: []string{`<model type="virtio"></model>`}},
		// The pod interface name, and with it the socket path: as KubeVirt
		// reports it in the VMI status, else inferred from the pod's scheme.
		{name: "reported ordinal names", domain: "domain-base.xml", vmi: newVMI().vhost("a").bridge("b").vhost("c").with(podIfaces(map[string]string{"a": "net1", "c": "net3"})),
			want: []string{`path="/var/run/kubevirt-hooks/vhostuser/net1/vhost.sock"`, `path="/var/run/kubevirt-hooks/vhostuser/net3/vhost.sock"`}, reject: []string{"/pod"}},
		{name: "one ordinal report: ordinal pod", domain: "domain-base.xml", vmi: newVMI().vhost("a").bridge("b").vhost("c").with(podIfaces(map[string]string{"b": "net2"})),
			want: []string{`path="/var/run/kubevirt-hooks/vhostuser/net1/vhost.sock"`, `path="/var/run/kubevirt-hooks/vhostuser/net3/vhost.sock"`}},
		{name: "reported hashed name", domain: "domain-base.xml", vmi: newVMI().vhost("a").with(podIfaces(map[string]string{"a": socketpath.PodInterfaceName("a")})),
			want: []string{`path="/var/run/kubevirt-hooks/vhostuser/` + socketpath.PodInterfaceName("a") + `/vhost.sock"`}},
		{name: "nothing reported: hashed", domain: "domain-base.xml", vmi: newVMI().vhost("a").bridge("b"),
			want: []string{`path="/var/run/kubevirt-hooks/vhostuser/` + socketpath.PodInterfaceName("a") + `/vhost.sock"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Rewrite(readTestdata(t, tc.domain), tc.vmi.json(t), tc.opts)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %s\n%s", w, out)
				}
			}
			for _, r := range tc.reject {
				if strings.Contains(string(out), r) {
					t.Errorf("output contains %s\n%s", r, out)
				}
			}
			validateDomain(t, tc.name, out)
		})
	}
}

func TestRewriteNoInterfaceReturnsInput(t *testing.T) {
	in := readTestdata(t, "domain-base.xml")
	out, err := Rewrite(in, newVMI().bridge("blue").json(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Error("a VMI without vhostuser interfaces changed the domain")
	}
}

func TestRewriteErrors(t *testing.T) {
	base := readTestdata(t, "domain-base.xml")
	hp := readTestdata(t, "domain-hugepages-numa.xml")
	cases := []struct {
		name   string
		domain []byte
		vmi    []byte
		kind   Kind
		want   []string // every substring must appear in the message
	}{
		{name: "malformed XML", domain: []byte("<domain><devices>"), vmi: newVMI().vhost("a").json(t), kind: Invalid,
			want: []string{"default/vmi-vhostuser", "parse domain XML"}},
		{name: "not XML", domain: []byte("{}"), vmi: newVMI().vhost("a").json(t), kind: Invalid, want: []string{"parse domain XML"}},
		{name: "malformed VMI", domain: base, vmi: []byte(`{"spec":`), kind: Invalid, want: []string{"parse VMI JSON"}},
		{name: "VMI wrong type", domain: base, vmi: []byte(`{"spec":{"domain":{"devices":{"interfaces":"x"}}}}`), kind: Invalid, want: []string{"parse VMI JSON"}},
		{name: "pod network", domain: base, kind: Invalid, want: []string{"default/vmi-vhostuser", `"default"`, "pod network"},
			vmi: newVMI().with(func(v *kvv1.VirtualMachineInstance) {
				v.Spec.Domain.Devices.Interfaces[0] = kvv1.Interface{Name: "default", Binding: &kvv1.PluginBinding{Name: "vhostuser"}}
			}).json(t)},
		{name: "hostile podInterfaceName", domain: base, kind: Invalid, want: []string{"default/vmi-vhostuser", `network "a"`, "podInterfaceName"},
			vmi: newVMI().vhost("a").with(podIfaces(map[string]string{"a": "../../x"})).json(t)},
		{name: "no network", domain: base, kind: Invalid, want: []string{`"a"`, "spec.networks"},
			vmi: newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) { v.Spec.Networks = v.Spec.Networks[:1] }).json(t)},
		{name: "not multus", domain: base, kind: Invalid, want: []string{`"a"`, "not a Multus network"},
			vmi: newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) { v.Spec.Networks[1].Multus = nil }).json(t)},
		{name: "multus default", domain: base, kind: Invalid, want: []string{`"a"`, "default Multus network"},
			vmi: newVMI().vhost("a").with(func(v *kvv1.VirtualMachineInstance) { v.Spec.Networks[1].Multus.Default = true }).json(t)},
		{name: "model e1000", domain: base, kind: Invalid, want: []string{`"a"`, `"e1000"`, "virtio"},
			vmi: newVMI().vhost("a", func(i *kvv1.Interface) { i.Model = "e1000" }).json(t)},
		{name: "bad MAC", domain: base, kind: Invalid, want: []string{`"a"`, "macAddress"},
			vmi: newVMI().vhost("a", func(i *kvv1.Interface) { i.MacAddress = "zz:00" }).json(t)},
		{name: "bad PCI", domain: base, kind: Invalid, want: []string{`"a"`, "pciAddress"},
			vmi: newVMI().vhost("a", func(i *kvv1.Interface) { i.PciAddress = "00:1a.0" }).json(t)},
		{name: "duplicate interface", domain: base, kind: Invalid, want: []string{`"a"`, "twice"},
			vmi: newVMI().vhost("a").vhost("a").json(t)},
		{name: "private memory", domain: bytes.Replace(base, []byte("<os>"), []byte(`<memoryBacking><access mode="private"/></memoryBacking><os>`), 1),
			kind: Conflict, want: []string{"default/vmi-vhostuser", "private"}, vmi: newVMI().vhost("a").json(t)},
		{name: "anonymous memory", domain: bytes.Replace(base, []byte("<os>"), []byte(`<memoryBacking><source type="anonymous"/></memoryBacking><os>`), 1),
			kind: Conflict, want: []string{"anonymous"}, vmi: newVMI().vhost("a").json(t)},
		{name: "private NUMA cell", domain: bytes.Replace(hp, []byte(`<cell id="1"`), []byte(`<cell memAccess="private" id="1"`), 1),
			kind: Conflict, want: []string{"NUMA cell 1", "private"}, vmi: newVMI().vhost("a").json(t)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Rewrite(tc.domain, tc.vmi, Options{})
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if out != nil {
				t.Errorf("output alongside error")
			}
			if k := KindOf(err); k != tc.kind {
				t.Errorf("kind %d, want %d (%v)", k, tc.kind, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// stripLikeKubeVirt simulates virt-launcher parsing a domain into its own
// schema between defines: <source type/path> of interfaces and the
// rx/tx_queue_size of <driver> are lost.
func stripLikeKubeVirt(x []byte) []byte {
	s := regexp.MustCompile(`(<source) type="unix" path="[^"]*"( mode="server")`).ReplaceAll(x, []byte("$1$2"))
	return regexp.MustCompile(` (rx|tx)_queue_size="\d+"`).ReplaceAll(s, nil)
}

func TestRewriteIdempotent(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			once, err := Rewrite(readTestdata(t, tc.domain), tc.vmi.json(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			twice, err := Rewrite(once, tc.vmi.json(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(once, twice) {
				t.Errorf("rewrite(rewrite(x)) != rewrite(x)\n--- once ---\n%s\n--- twice ---\n%s", once, twice)
			}
			stripped := stripLikeKubeVirt(once)
			if bytes.Equal(stripped, once) {
				t.Fatal("the KubeVirt round-trip simulation removed nothing")
			}
			repaired, err := Rewrite(stripped, tc.vmi.json(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(once, repaired) {
				t.Errorf("rewrite after KubeVirt's round trip differs\n--- want ---\n%s\n--- got ---\n%s", once, repaired)
			}
		})
	}
}

// TestRewriteKeepsLibvirtAssignedMACAndPCI: a second define must not change
// the MAC or PCI slot libvirt picked for an interface the VMI leaves open.
func TestRewriteKeepsLibvirtAssignedMACAndPCI(t *testing.T) {
	vmi := newVMI().vhost("a").json(t)
	once, err := Rewrite(readTestdata(t, "domain-base.xml"), vmi, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defined := bytes.Replace(once, []byte(`<alias name="ua-a">`),
		[]byte(`<mac address="52:54:00:12:34:56"/><address type="pci" domain="0x0000" bus="0x07" slot="0x00" function="0x0"/><alias name="ua-a">`), 1)
	again, err := Rewrite(stripLikeKubeVirt(defined), vmi, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`<mac address="52:54:00:12:34:56">`, `bus="0x07"`} {
		if !bytes.Contains(again, []byte(w)) {
			t.Errorf("lost %s:\n%s", w, again)
		}
	}
	validateDomain(t, "kept", again)
}

// TestRewriteMigration: the target pod of a live migration gets the same VMI
// (with another pod and node in its status); the domain must be identical,
// and the socket path must not depend on the pod.
func TestRewriteMigration(t *testing.T) {
	in := readTestdata(t, "domain-hugepages-numa.xml")
	src := newVMI().vhost("dpdk0").vhost("dpdk1").with(func(v *kvv1.VirtualMachineInstance) {
		v.Status.NodeName = "node-a"
		v.Status.ActivePods = map[types.UID]string{"8d1c3f0e-1111-4a2b-9c3d-000000000001": "node-a"}
	})
	dst := newVMI().vhost("dpdk0").vhost("dpdk1").with(func(v *kvv1.VirtualMachineInstance) {
		v.Status.NodeName = "node-b"
		v.Status.ActivePods = map[types.UID]string{
			"8d1c3f0e-1111-4a2b-9c3d-000000000001": "node-a",
			"5e2a9b7c-2222-4d3e-8f1a-000000000002": "node-b",
		}
		v.Status.MigrationState = &kvv1.VirtualMachineInstanceMigrationState{TargetNode: "node-b", TargetPod: "virt-launcher-vmi-vhostuser-xyz12"}
	})
	a, err := Rewrite(in, src.json(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Rewrite(in, dst.json(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	validateDomain(t, "migration", a)
	if !bytes.Equal(a, b) {
		t.Errorf("source and target pods give different domains\n--- source ---\n%s\n--- target ---\n%s", a, b)
	}
	for uid := range dst.vmi.Status.ActivePods {
		if bytes.Contains(a, []byte(uid)) {
			t.Errorf("domain contains pod UID %s", uid)
		}
		p, err := socketpath.Defaults().For(socketpath.Attachment{PodUID: string(uid), IfName: socketpath.PodInterfaceName("dpdk0")})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(a, []byte(`path="`+p.ComputeSocket+`"`)) {
			t.Errorf("domain lacks the contract's compute socket %s of pod %s", p.ComputeSocket, uid)
		}
	}
}

func TestParsePCI(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0000:00:1a.0", true}, {"0000:81:01.7", true}, {"ffff:ff:1f.7", true},
		{"0000:00:20.0", false}, {"0000:00:1a.8", false}, {"00:1a.0", false}, {"", false}, {"0000:00:1a.0\n", false},
	} {
		_, err := parsePCI(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parsePCI(%q) err=%v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestVCPUs(t *testing.T) {
	topo := func(s, c, th int) *libvirtxml.DomainCPU {
		return &libvirtxml.DomainCPU{Topology: &libvirtxml.DomainCPUTopology{Sockets: s, Cores: c, Threads: th}}
	}
	vmiCPU := &kvv1.VirtualMachineInstance{}
	vmiCPU.Spec.Domain.CPU = &kvv1.CPU{Sockets: 2, Cores: 3, Threads: 1}
	for _, tc := range []struct {
		name string
		dom  libvirtxml.Domain
		vmi  *kvv1.VirtualMachineInstance
		want uint
	}{
		{"topology", libvirtxml.Domain{CPU: topo(2, 4, 2)}, &kvv1.VirtualMachineInstance{}, 16},
		{"hotplug current", libvirtxml.Domain{CPU: topo(4, 2, 1), VCPU: &libvirtxml.DomainVCPU{Value: 8, Current: 2}}, &kvv1.VirtualMachineInstance{}, 2},
		{"vcpu only", libvirtxml.Domain{VCPU: &libvirtxml.DomainVCPU{Value: 3}}, &kvv1.VirtualMachineInstance{}, 3},
		{"VMI fallback", libvirtxml.Domain{}, vmiCPU, 6},
		{"nothing", libvirtxml.Domain{}, &kvv1.VirtualMachineInstance{}, 1},
	} {
		if got := vcpus(&tc.dom, tc.vmi); got != tc.want {
			t.Errorf("%s: vcpus = %d, want %d", tc.name, got, tc.want)
		}
	}
}
