package config

import (
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
			if c.Endpoint != DefaultOVSDBSocket || c.Owner() != 107 || c.Group() != 107 || c.Mode != 0o770 {
				t.Errorf("defaults: endpoint %q owner %d group %d mode %#o", c.Endpoint, c.Owner(), c.Group(), c.Mode)
			}
			if c.CreateBridge || c.HasIPAM() || c.Level != slog.LevelInfo || c.LogFile != "" {
				t.Errorf("unexpected optional settings: %+v", c)
			}
		}},
		{"full.json", func(t *testing.T, c *NetConf) {
			if c.Endpoint != "unix:/run/ovs/db.sock" || !c.CreateBridge || c.Owner() != 0 || c.Group() != 993 || c.Mode != 0o2770 {
				t.Errorf("endpoint %q create %v owner %d group %d mode %#o", c.Endpoint, c.CreateBridge, c.Owner(), c.Group(), c.Mode)
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
		{"ovsdb relative", `{` + base + `,"bridge":"b","ovsdbSocket":"unix:db.sock"}`, `"ovsdbSocket"`},
		{"ovsdb tcp", `{` + base + `,"bridge":"b","ovsdbSocket":"tcp:127.0.0.1:6640"}`, `"ovsdbSocket"`},
		{"ovsdb too long", `{` + base + `,"bridge":"b","ovsdbSocket":"/` + strings.Repeat("a", 120) + `"}`, `"ovsdbSocket"`},
		{"kubeletRoot relative", `{` + base + `,"bridge":"b","kubeletRoot":"var/lib"}`, "kubeletRoot"},
		{"kubeletRoot unclean", `{` + base + `,"bridge":"b","kubeletRoot":"/var/../etc"}`, "kubeletRoot"},
		{"volume traversal", `{` + base + `,"bridge":"b","volume":"../x"}`, "volume"},
		{"shortSocketDir too long", `{` + base + `,"bridge":"b","shortSocketDir":"/` + strings.Repeat("d", 90) + `"}`, "shortSocketDir"},
		{"owner negative", `{` + base + `,"bridge":"b","socketDirOwner":-1}`, `"socketDirOwner"`},
		{"group huge", `{` + base + `,"bridge":"b","socketDirGroup":4294967295}`, `"socketDirGroup"`},
		{"mode not octal", `{` + base + `,"bridge":"b","socketDirMode":"0779"}`, `"socketDirMode"`},
		{"mode too big", `{` + base + `,"bridge":"b","socketDirMode":"17777"}`, `"socketDirMode"`},
		{"mode owner cannot write", `{` + base + `,"bridge":"b","socketDirMode":"0570"}`, `"socketDirMode"`},
		{"mode world writable", `{` + base + `,"bridge":"b","socketDirMode":"0777"}`, `"socketDirMode"`},
		{"mtu small", `{` + base + `,"bridge":"b","mtu":67}`, `"mtu"`},
		{"mtu big", `{` + base + `,"bridge":"b","mtu":65536}`, `"mtu"`},
		{"vlan big", `{` + base + `,"bridge":"b","vlan":4095}`, `"vlan"`},
		{"vlan negative", `{` + base + `,"bridge":"b","vlan":-3}`, `"vlan"`},
		{"vlan and trunk", `{` + base + `,"bridge":"b","vlan":5,"trunk":[6]}`, `exclusive`},
		{"trunk out of range", `{` + base + `,"bridge":"b","trunk":[4096]}`, `"trunk"`},
		{"option reserved", `{` + base + `,"bridge":"b","options":{"vhost-server-path":"/x"}}`, `reserved`},
		{"option bad key", `{` + base + `,"bridge":"b","options":{"a b":"1"}}`, `"options" key`},
		{"option newline", `{` + base + `,"bridge":"b","options":{"a":"1\n"}}`, `"options" value`},
		{"logFile relative", `{` + base + `,"bridge":"b","logFile":"x.log"}`, `"logFile"`},
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
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("non-nil config with an error")
			}
			return
		}
		if c.Bridge == "" || c.Name == "" || c.Endpoint == "" || c.SocketDirOwner == nil || c.SocketDirGroup == nil {
			t.Fatalf("accepted config lacks required fields: %+v", c)
		}
		if c.Mode > 0o7777 || c.Mode&0o002 != 0 {
			t.Fatalf("accepted mode %#o", c.Mode)
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
