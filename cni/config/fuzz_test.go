package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// FuzzParse: no input panics, and an accepted configuration always derives
// paths within the socket limit for a valid attachment.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"minimal.json", "full.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"n","bridge":"b","shortSocketDir":"/x/../y","socketDirMode":"7777"}`))
	f.Add([]byte(`{"name":"n","bridge":"b","trunk":[1,2,3],"mtu":1500,"options":{"k":"v"}}`))
	// At and just over every bound.
	f.Add([]byte(`{"name":"` + strings.Repeat("n", MaxNameLen) + `","bridge":"b","options":{` + manyOptions(MaxOptions) + `}}`))
	f.Add([]byte(`{"name":"n","bridge":"b","options":{` + manyOptions(MaxOptions+1) + `}}`))
	f.Add([]byte(`{"name":"n","bridge":"b","options":{"` + strings.Repeat("k", MaxOptionKeyLen) + `":"` + strings.Repeat("v", MaxOptionValLen) + `"}}`))
	f.Add([]byte(`{"name":"n","bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"/var/run/k8s.cni.cncf.io/devinfo/x.json"}}`))
	f.Add([]byte(`{"name":"n","bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"/var/run/k8s.cni.cncf.io/devinfo/../x"}}`))
	f.Add([]byte(`{"name":"n","bridge":"b","logFile":"/etc/passwd"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("non-nil config with an error")
			}
			return
		}
		if c.Bridge == "" || c.Name == "" || c.Node.Endpoint() == "" || c.Node.SocketDirGroup == nil {
			t.Fatalf("accepted config lacks required fields: %+v", c)
		}
		if len(data) > MaxConfigSize || len(c.Name) > MaxNameLen || len(c.Options) > MaxOptions {
			t.Fatalf("accepted config over a bound: %d bytes, name %d, %d options", len(data), len(c.Name), len(c.Options))
		}
		for k, v := range c.Options {
			if len(k) > MaxOptionKeyLen || len(v) > MaxOptionValLen {
				t.Fatalf("accepted option %.80q=%.80q", k, v)
			}
		}
		if f := c.RuntimeConfig.CNIDeviceInfoFile; f != "" && (!strings.HasPrefix(f, DefaultDeviceInfoDir+"/") || strings.Contains(f, "..")) {
			if filepath.Clean(f) != f || !strings.HasPrefix(f, DefaultDeviceInfoDir+"/") {
				t.Fatalf("accepted device-info file %q", f)
			}
		}
		p, err := c.Layout.For(socketpath.Attachment{PodUID: "0f1d3b4e-58a4-4a1c-9a0e-93e3b1d5b2c7", IfName: "pod16477688c0e"})
		if err != nil {
			t.Fatalf("accepted layout %+v fails For: %v", c.Layout, err)
		}
		if len(p.OVSSocket) > socketpath.MaxSocketPath || !strings.HasPrefix(p.HostDir, c.Node.KubeletRoot+"/") {
			t.Fatalf("paths escape or overflow: %+v", p)
		}
	})
}

// FuzzParseNode: no node configuration panics, and an accepted one always
// gives a valid layout and a mode the socket directory protection needs.
func FuzzParseNode(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "node.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"shortSocketDir":"/` + strings.Repeat("s", socketpath.MaxShortDirLen-1) + `"}`))
	f.Add([]byte(`{"shortSocketDir":"/` + strings.Repeat("s", socketpath.MaxShortDirLen) + `"}`))
	f.Add([]byte(`{"socketDirMode":"0770","logFile":"../x","deviceInfoDir":"/"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNode(data)
		if err != nil {
			return
		}
		if n.mode&0o1003 != 0o1003 || n.mode&0o4000 != 0 || n.endpoint == "" || n.SocketDirGroup == nil {
			t.Fatalf("accepted %+v", n)
		}
		l := socketpath.Layout{KubeletRoot: n.KubeletRoot, Volume: socketpath.DefaultVolume, ShortDir: n.ShortSocketDir}
		p, err := l.For(socketpath.Attachment{PodUID: strings.Repeat("u", socketpath.MaxPodUIDLen), IfName: strings.Repeat("i", socketpath.MaxIfNameLen)})
		if err != nil || len(p.OVSSocket) > socketpath.MaxSocketPath {
			t.Fatalf("accepted node layout %+v: %v %q", l, err, p.OVSSocket)
		}
	})
}

func manyOptions(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	return b.String()
}
