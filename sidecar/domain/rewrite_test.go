package domain

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	kvv1 "kubevirt.io/api/core/v1"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

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
