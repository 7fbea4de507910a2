package domain

import (
	"bytes"
	"strings"
	"testing"

	kvv1 "kubevirt.io/api/core/v1"
)

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
