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
			if c.Node.Endpoint() != DefaultOVSDBSocket || c.Node.Group() != 107 || c.Node.Mode() != 0o1777 || c.Node.DeviceInfoDir != DefaultDeviceInfoDir {
				t.Errorf("defaults: endpoint %q group %d mode %#o devinfo %q", c.Node.Endpoint(), c.Node.Group(), c.Node.Mode(), c.Node.DeviceInfoDir)
			}
			if c.CreateBridge || c.HasIPAM() || c.Level != slog.LevelInfo || c.Node.LogFile != "" {
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
