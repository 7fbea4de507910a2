package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c *NetConf)
	}{
		{"minimal.json", func(t *testing.T, c *NetConf) {
			want := socketpath.Layout{KubeletRoot: "/var/lib/kubelet", Volume: "hook-sidecar-sockets", ShortDir: "/var/run/vhostuser"}
			if c.Layout != want {
				t.Errorf("layout %+v, want %+v", c.Layout, want)
			}
			if c.Endpoint != DefaultOVSDBSocket || c.Group() != 107 || c.Mode != 0o1777 || c.Node.DeviceInfoDir != DefaultDeviceInfoDir {
				t.Errorf("defaults: endpoint %q group %d mode %#o devinfo %q", c.Endpoint, c.Group(), c.Mode, c.Node.DeviceInfoDir)
			}
			if c.CreateBridge || c.HasIPAM() || c.Level != slog.LevelInfo || c.LogFile != "" {
				t.Errorf("unexpected optional settings: %+v", c)
			}
		}},
		{"full.json", func(t *testing.T, c *NetConf) {
			if !c.CreateBridge || c.Volume != "my-sockets" {
				t.Errorf("create %v volume %q", c.CreateBridge, c.Volume)
			}
			if c.MTU != 9000 || len(c.Trunk) != 2 || c.Options["tx-retries-max"] != "8" || c.Level != slog.LevelDebug {
				t.Errorf("mtu %d trunk %v options %v level %v", c.MTU, c.Trunk, c.Options, c.Level)
			}
			if c.IPAM.Type != "host-local" || c.RuntimeConfig.Mac != "02:aa:00:00:00:01" || c.RuntimeConfig.CNIDeviceInfoFile == "" {
				t.Errorf("ipam %q runtimeConfig %+v", c.IPAM.Type, c.RuntimeConfig)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestNodeConfig(t *testing.T) {
	n, err := LoadNode(filepath.Join("testdata", "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseWithNode([]byte(`{"cniVersion":"1.1.0","name":"n","type":"vhostuser","bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"/run/devinfo/a.json"}}`), n)
	if err != nil {
		t.Fatal(err)
	}
	want := socketpath.Layout{KubeletRoot: "/data/kubelet", Volume: socketpath.DefaultVolume, ShortDir: "/run/vhu"}
	if c.Layout != want || c.Endpoint != "unix:/run/ovs/db.sock" || c.Group() != 993 || c.Mode != 0o3777 || c.LogFile != "/var/log/vhostuser.log" {
		t.Errorf("layout %+v endpoint %q group %d mode %#o log %q", c.Layout, c.Endpoint, c.Group(), c.Mode, c.LogFile)
	}
	// A missing file is the built-in defaults.
	d, err := LoadNode(filepath.Join(t.TempDir(), "none.json"))
	if err != nil || d.KubeletRoot != socketpath.DefaultKubeletRoot || d.ShortSocketDir != socketpath.DefaultShortDir || *d.SocketDirGroup != 107 || d.SocketDirMode != "1777" {
		t.Errorf("defaults %+v %v", d, err)
	}
	t.Setenv(EnvNodeConfig, "/x/node.json")
	if NodeConfigFile() != "/x/node.json" {
		t.Errorf("NodeConfigFile %q", NodeConfigFile())
	}
	// What the installer writes reads back the same.
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if n2, err := ParseNode(b); err != nil || n2.KubeletRoot != n.KubeletRoot || n2.mode != n.mode || n2.endpoint != n.endpoint {
		t.Errorf("round trip %+v %v", n2, err)
	}
	for _, tt := range []struct{ name, json, wantErr string }{
		{"unknown field", `{"kubeletDir":"/x"}`, "unknown field"},
		{"kubeletRoot relative", `{"kubeletRoot":"var/lib"}`, "kubeletRoot"},
		{"kubeletRoot unclean", `{"kubeletRoot":"/var/../etc"}`, "kubeletRoot"},
		{"shortSocketDir too long", `{"shortSocketDir":"/` + strings.Repeat("d", socketpath.MaxShortDirLen) + `"}`, "shortSocketDir"},
		{"ovsdb relative", `{"ovsdbSocket":"unix:db.sock"}`, `"ovsdbSocket"`},
		{"ovsdb tcp", `{"ovsdbSocket":"tcp:127.0.0.1:6640"}`, `"ovsdbSocket"`},
		{"ovsdb too long", `{"ovsdbSocket":"/` + strings.Repeat("a", 120) + `"}`, `"ovsdbSocket"`},
		{"group huge", `{"socketDirGroup":4294967295}`, `"socketDirGroup"`},
		{"mode not octal", `{"socketDirMode":"0779"}`, `"socketDirMode"`},
		{"mode too big", `{"socketDirMode":"17777"}`, `"socketDirMode"`},
		{"mode not sticky", `{"socketDirMode":"0777"}`, `"socketDirMode"`},
		{"mode not writable by others", `{"socketDirMode":"1770"}`, `"socketDirMode"`},
		{"mode setuid", `{"socketDirMode":"5777"}`, `setuid`},
		{"logFile relative", `{"logFile":"x.log"}`, `"logFile"`},
		{"deviceInfoDir root", `{"deviceInfoDir":"/"}`, `"deviceInfoDir"`},
		{"too big", `{"logFile":"/` + strings.Repeat("a", 20000) + `"}`, "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseNode([]byte(tt.json)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseNode(%.80s): %v, want an error with %q", tt.json, err, tt.wantErr)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	base := `"cniVersion":"1.1.0","name":"n","type":"vhostuser"`
	tests := []struct {
		name, json, wantErr string
	}{
		{"not json", `{`, "parse network configuration"},
		{"no name", `{"bridge":"br0"}`, `"name" is required`},
		{"no bridge", `{` + base + `}`, `"bridge" is required`},
		{"bridge too long", `{` + base + `,"bridge":"0123456789abcdef"}`, `"bridge"`},
		{"bridge slash", `{` + base + `,"bridge":"br/0"}`, `"bridge" "br/0" contains`},
		{"bridge dotdot", `{` + base + `,"bridge":".."}`, `"bridge"`},
		{"node field kubeletRoot", `{` + base + `,"bridge":"b","kubeletRoot":"/var/lib/k0s/kubelet"}`, `"kubeletRoot" is a node setting`},
		{"node field group of another type", `{` + base + `,"bridge":"b","socketDirGroup":"107"}`, `"socketDirGroup" is a node setting`},
		{"node field shortSocketDir", `{` + base + `,"bridge":"b","shortSocketDir":"/x"}`, `"shortSocketDir" is a node setting`},
		{"node field ovsdbSocket", `{` + base + `,"bridge":"b","ovsdbSocket":"unix:/x"}`, `"ovsdbSocket" is a node setting`},
		{"node field socketDirGroup", `{` + base + `,"bridge":"b","socketDirGroup":0}`, `"socketDirGroup" is a node setting`},
		{"node field socketDirMode", `{` + base + `,"bridge":"b","socketDirMode":"0777"}`, `"socketDirMode" is a node setting`},
		{"node field logFile", `{` + base + `,"bridge":"b","logFile":"/etc/passwd"}`, `"logFile" is a node setting`},
		{"node field deviceInfoDir", `{` + base + `,"bridge":"b","deviceInfoDir":"/etc"}`, `"deviceInfoDir" is a node setting`},
		{"node field in other case", `{` + base + `,"bridge":"b","LOGFILE":"/etc/passwd"}`, `"logFile" is a node setting`},
		{"socketDirOwner removed", `{` + base + `,"bridge":"b","socketDirOwner":0}`, `"socketDirOwner"`},
		{"volume traversal", `{` + base + `,"bridge":"b","volume":"../x"}`, "volume"},
		{"name too long", `{"cniVersion":"1.1.0","type":"vhostuser","bridge":"b","name":"` + strings.Repeat("n", MaxNameLen+1) + `"}`, `"name"`},
		{"name with slash", `{"cniVersion":"1.1.0","type":"vhostuser","bridge":"b","name":"a/b"}`, `"name"`},
		{"too many options", `{` + base + `,"bridge":"b","options":{` + manyOptions(MaxOptions+1) + `}}`, `"options" has 33 keys`},
		{"option value too long", `{` + base + `,"bridge":"b","options":{"k":"` + strings.Repeat("v", MaxOptionValLen+1) + `"}}`, `"options" value`},
		{"option key too long", `{` + base + `,"bridge":"b","options":{"` + strings.Repeat("k", MaxOptionKeyLen+1) + `":"v"}}`, `"options" key`},
		{"config too big", `{` + base + `,"bridge":"b","options":{"k":"` + strings.Repeat("v", MaxConfigSize) + `"}}`, "network configuration is"},
		{"device info outside devinfo", `{` + base + `,"bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"/etc/cron.d/x"}}`, `outside the node's device-info directory`},
		{"device info dotdot", `{` + base + `,"bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"/var/run/k8s.cni.cncf.io/devinfo/../../../etc/x"}}`, `CNIDeviceInfoFile`},
		{"device info is the dir", `{` + base + `,"bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"/var/run/k8s.cni.cncf.io/devinfo"}}`, `CNIDeviceInfoFile`},
		{"mtu small", `{` + base + `,"bridge":"b","mtu":67}`, `"mtu"`},
		{"mtu big", `{` + base + `,"bridge":"b","mtu":65536}`, `"mtu"`},
		{"vlan big", `{` + base + `,"bridge":"b","vlan":4095}`, `"vlan"`},
		{"vlan negative", `{` + base + `,"bridge":"b","vlan":-3}`, `"vlan"`},
		{"vlan and trunk", `{` + base + `,"bridge":"b","vlan":5,"trunk":[6]}`, `exclusive`},
		{"trunk out of range", `{` + base + `,"bridge":"b","trunk":[4096]}`, `"trunk"`},
		{"option reserved", `{` + base + `,"bridge":"b","options":{"vhost-server-path":"/x"}}`, `reserved`},
		{"option bad key", `{` + base + `,"bridge":"b","options":{"a b":"1"}}`, `"options" key`},
		{"option newline", `{` + base + `,"bridge":"b","options":{"a":"1\n"}}`, `"options" value`},
		{"logLevel", `{` + base + `,"bridge":"b","logLevel":"loud"}`, `"logLevel"`},
		{"device info relative", `{` + base + `,"bridge":"b","runtimeConfig":{"CNIDeviceInfoFile":"x"}}`, `CNIDeviceInfoFile`},
		{"mac", `{` + base + `,"bridge":"b","runtimeConfig":{"mac":"zz"}}`, `"mac"`},
		{"mac infiniband", `{` + base + `,"bridge":"b","runtimeConfig":{"mac":"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"}}`, `"mac"`},
		{"wrong type", `{` + base + `,"bridge":7}`, "parse network configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", tt.json, c)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestNodeFieldsRepeated: the narrow override. A NAD written before the node
// configuration existed, with the defaults spelled out, still parses (the
// fields are reported); DEL and GC ignore node fields whatever their value.
func TestNodeFieldsRepeated(t *testing.T) {
	n, err := ParseNode(nil)
	if err != nil {
		t.Fatal(err)
	}
	old := `{"cniVersion":"1.1.0","name":"n","type":"vhostuser","bridge":"b","ovsdbSocket":"/var/run/openvswitch/db.sock",` +
		`"kubeletRoot":"/var/lib/kubelet","shortSocketDir":"/var/run/vhostuser","socketDirGroup":107,"socketDirMode":"01777"}`
	c, err := ParseWithNode([]byte(old), n)
	if err != nil {
		t.Fatalf("NAD repeating the node's values: %v", err)
	}
	if len(c.Repeated) != 5 {
		t.Errorf("repeated %v, want 5 fields", c.Repeated)
	}
	other := `{"cniVersion":"1.1.0","name":"n","type":"vhostuser","bridge":"b","kubeletRoot":"/elsewhere","socketDirMode":"0770","socketDirOwner":107,"logFile":"/etc/passwd"}`
	if _, err := ParseWithNode([]byte(other), n); err == nil {
		t.Fatal("NAD with other node values accepted for ADD")
	}
	c, err = ParseForCleanup([]byte(other), n)
	if err != nil {
		t.Fatalf("ParseForCleanup: %v", err)
	}
	if c.KubeletRoot != socketpath.DefaultKubeletRoot || c.LogFile != "" || c.Mode != 0o1777 {
		t.Errorf("cleanup took a NAD's node value: root %q log %q mode %#o", c.KubeletRoot, c.LogFile, c.Mode)
	}
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

func TestParseArgs(t *testing.T) {
	tests := []struct {
		in      string
		uid, ns string
		wantErr bool
	}{
		{"K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-x;K8S_POD_UID=1234-ab;IgnoreUnknown=1", "1234-ab", "default", false},
		{"K8S_POD_UID=u;FOO=bar", "u", "", false},
		{"", "", "", false},
		{"K8S_POD_UID", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseArgs(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (string(a.K8S_POD_UID) != tt.uid || string(a.K8S_POD_NAMESPACE) != tt.ns) {
				t.Fatalf("got uid %q ns %q", a.K8S_POD_UID, a.K8S_POD_NAMESPACE)
			}
		})
	}
}

func TestPortName(t *testing.T) {
	seen := map[string]bool{}
	tests := []socketpath.Attachment{
		{PodUID: "a", IfName: "net1"},
		{PodUID: "a", IfName: "net2"},
		{PodUID: "b", IfName: "net1"},
		{PodUID: "a\x00n", IfName: "et1"},
		{PodUID: "0f1d3b4e-58a4-4a1c-9a0e-93e3b1d5b2c7", IfName: "pod16477688c0e"},
	}
	for _, a := range tests {
		n := PortName(socketpath.AttachmentID(a))
		if len(n) != 3+socketpath.IDLen || !strings.HasPrefix(n, "vhu") {
			t.Errorf("%+v: port name %q is not vhu + the 128-bit ID in hex", a, n)
		}
		if n != PortName(socketpath.AttachmentID(a)) {
			t.Errorf("%+v: port name not deterministic", a)
		}
		if seen[n] {
			t.Errorf("%+v: port name %q collides", a, n)
		}
		seen[n] = true
	}
}

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
		if c.Bridge == "" || c.Name == "" || c.Endpoint == "" || c.Node.SocketDirGroup == nil {
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
		if len(p.OVSSocket) > socketpath.MaxSocketPath || !strings.HasPrefix(p.HostDir, c.KubeletRoot+"/") {
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
