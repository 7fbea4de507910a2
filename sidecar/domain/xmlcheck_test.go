package domain

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// kubevirtSysinfoQuirk matches the empty <bios>, <baseBoard> and <chassis>
// KubeVirt's converter writes into <sysinfo>: libvirt accepts them, its RNG
// schema does not. Only exactly these empty elements are removed before validating.
var kubevirtSysinfoQuirk = regexp.MustCompile(`\s*<(bios|baseBoard|chassis)>\s*</(bios|baseBoard|chassis)>|\s*<(bios|baseBoard|chassis)\s*/>`)

// validateDomain runs libvirt's own schema validator on the XML.
func validateDomain(t *testing.T, name string, x []byte) {
	t.Helper()
	tool, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatalf("virt-xml-validate not found (%v): install Debian libvirt-clients and libxml2-utils with `make deps`", err)
	}
	f := filepath.Join(t.TempDir(), strings.ReplaceAll(name, "/", "_")+".xml")
	if err := os.WriteFile(f, kubevirtSysinfoQuirk.ReplaceAll(x, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, f, "domain").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: virt-xml-validate rejects the domain: %v\n%s\n--- XML ---\n%s", name, err, out, x)
	}
}

// node is a namespace-aware element tree used to compare XML by meaning:
// namespaces by URI, attributes unordered, insignificant whitespace ignored.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	text     string
	children []*node
}

func parseTree(b []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &node{name: tk.Name}
			for _, a := range tk.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue // declarations, not content
				}
				n.attrs = append(n.attrs, a)
			}
			sort.Slice(n.attrs, func(i, j int) bool { return attrKey(n.attrs[i]) < attrKey(n.attrs[j]) })
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += strings.TrimSpace(string(tk))
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

func attrKey(a xml.Attr) string { return a.Name.Space + " " + a.Name.Local + "=" + a.Value }

// canon prints the tree; children of the elements in unordered are grouped by
// name, because libvirt does not care about the order of different kinds of
// children there and libvirtxml reorders them.
func (n *node) canon(unordered map[string]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<{%s}%s", n.name.Space, n.name.Local)
	for _, a := range n.attrs {
		fmt.Fprintf(&b, " %s", attrKey(a))
	}
	b.WriteString(">" + n.text)
	kids := make([]*node, len(n.children))
	copy(kids, n.children)
	if unordered[n.name.Local] {
		// By element name only, stably: siblings of the same name (disks,
		// <boot> devices, qemu args) must keep their relative order.
		sort.SliceStable(kids, func(i, j int) bool {
			return kids[i].name.Space+" "+kids[i].name.Local < kids[j].name.Space+" "+kids[j].name.Local
		})
	}
	for _, c := range kids {
		b.WriteString(c.canon(unordered))
	}
	b.WriteString("</>")
	return b.String()
}

func (n *node) child(local string) *node {
	for _, c := range n.children {
		if c.name.Local == local {
			return c
		}
	}
	return nil
}

func (n *node) attr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// filter drops the children for which drop returns true, recursively.
func (n *node) filter(drop func(parent, c *node) bool) {
	kept := n.children[:0]
	for _, c := range n.children {
		if drop(n, c) {
			continue
		}
		c.filter(drop)
		kept = append(kept, c)
	}
	n.children = kept
}

var unorderedElems = map[string]bool{
	"domain": true, "devices": true, "sysinfo": true, "interface": true, "disk": true, "serial": true,
	"channel": true, "os": true, "cpu": true, "features": true, "filesystem": true,
}

// withoutOurChanges is the tree minus everything Rewrite may legitimately change:
// our interfaces (aliases in ours), memoryBacking, NUMA memAccess, and the
// meaningless empty <source/> of ethernet interfaces that libvirtxml drops.
func withoutOurChanges(t *testing.T, x []byte, ours map[string]bool) string {
	t.Helper()
	root, err := parseTree(x)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, x)
	}
	root.filter(func(parent, c *node) bool {
		switch {
		case parent.name.Local == "devices" && c.name.Local == "interface":
			if a := c.child("alias"); a != nil && ours[a.attr("name")] {
				return true
			}
		case parent.name.Local == "domain" && c.name.Local == "memoryBacking":
			return true
		case parent.name.Local == "interface" && parent.attr("type") == "ethernet" && c.name.Local == "source":
			return len(c.attrs) == 0 && len(c.children) == 0 && c.text == ""
		case c.name.Local == "cell":
			attrs := c.attrs[:0]
			for _, a := range c.attrs {
				if a.Name.Local != "memAccess" {
					attrs = append(attrs, a)
				}
			}
			c.attrs = attrs
		}
		return false
	})
	return root.canon(unorderedElems)
}

// TestTreeCompareDetectsLoss makes sure the preservation check can fail.
func TestTreeCompareDetectsLoss(t *testing.T) {
	in := readTestdata(t, "domain-kitchen-sink.xml")
	base := withoutOurChanges(t, in, nil)
	for _, mut := range []struct{ old, new string }{
		{`<qemu:env name="QEMU_AUDIO_DRV" value="none"></qemu:env>`, ``},
		{`<uid>0f7a3b5e`, `<uid>1f7a3b5e`},
		{`<entry name="sku"></entry>`, ``},
		{`io="native"`, ``},
		{`<iothread id="1"></iothread>
    <iothread id="2"></iothread>`, `<iothread id="2"></iothread>
    <iothread id="1"></iothread>`},
		{`<qemu:arg value="-fw_cfg"></qemu:arg>`, `<arg xmlns="urn:other" value="-fw_cfg"></arg>`},
	} {
		if !bytes.Contains(in, []byte(mut.old)) {
			t.Fatalf("testdata lacks %q", mut.old)
		}
		if withoutOurChanges(t, bytes.Replace(in, []byte(mut.old), []byte(mut.new), 1), nil) == base {
			t.Errorf("replacing %q by %q went unnoticed", mut.old, mut.new)
		}
	}
}
