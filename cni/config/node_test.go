package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

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
	if c.Layout != want || c.Node.Endpoint() != "unix:/run/ovs/db.sock" || c.Node.Group() != 993 || c.Node.Mode() != 0o3777 || c.Node.LogFile != "/var/log/vhostuser.log" {
		t.Errorf("layout %+v endpoint %q group %d mode %#o log %q", c.Layout, c.Node.Endpoint(), c.Node.Group(), c.Node.Mode(), c.Node.LogFile)
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
