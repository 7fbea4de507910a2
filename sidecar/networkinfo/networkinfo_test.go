package networkinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Info
		wantErr string
	}{
		{name: "empty list", in: `{"interfaces":[]}`, want: Info{}},
		{
			name: "mtu and server device-info",
			in:   `{"interfaces":[{"network":"dpdk0","mtu":9000,"deviceInfo":{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"server","path":"/var/run/x/vhost.sock"}}},{"network":"blue"}]}`,
			want: Info{
				"dpdk0": {Network: "dpdk0", MTU: 9000, VhostUserPath: "/var/run/x/vhost.sock", VhostUserMode: "server"},
				"blue":  {Network: "blue"},
			},
		},
		{
			name: "client mode word accepted",
			in:   `{"interfaces":[{"network":"a","deviceInfo":{"type":"vhost-user","vhost-user":{"mode":"client","path":"/p"}}}]}`,
			want: Info{"a": {Network: "a", VhostUserPath: "/p", VhostUserMode: "client"}},
		},
		{
			name: "pci device-info ignored",
			in:   `{"interfaces":[{"network":"a","deviceInfo":{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:81:00.1"}}}]}`,
			want: Info{"a": {Network: "a"}},
		},
		{name: "bad mode", in: `{"interfaces":[{"network":"a","deviceInfo":{"type":"vhost-user","vhost-user":{"mode":"both"}}}]}`, wantErr: `mode "both"`},
		{name: "bad mtu", in: `{"interfaces":[{"network":"a","mtu":-1}]}`, wantErr: "interfaces[0].mtu"},
		{name: "huge mtu", in: `{"interfaces":[{"network":"a","mtu":70000}]}`, wantErr: "interfaces[0].mtu"},
		{name: "no network", in: `{"interfaces":[{"mtu":1500}]}`, wantErr: "interfaces[0].network is empty"},
		{name: "not JSON", in: `network=a`, wantErr: "parse network-info"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: got %+v, want %+v", k, got[k], v)
				}
			}
		})
	}
}

func TestMTU(t *testing.T) {
	m := Info{"a": {MTU: 9000}, "b": {}}.MTU()
	if len(m) != 1 || m["a"] != 9000 {
		t.Errorf("MTU() = %v", m)
	}
}

func TestReadOptionalMissing(t *testing.T) {
	info, err := Read(filepath.Join(t.TempDir(), "network-info"), 0)
	if err != nil || len(info) != 0 {
		t.Fatalf("Read = %v, %v; want empty, nil", info, err)
	}
}

// writeLikeKubelet replaces p the way the kubelet's atomic writer updates a
// downward API file: new content in a sibling, then rename, so a reader
// never sees a half-written file.
func writeLikeKubelet(t *testing.T, p, content string) {
	t.Helper()
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Error(err)
	}
}

// Read waits for the content, whether the file is missing at first or, as
// the kubelet leaves it while the pod lacks the kubevirt.io/network-info
// annotation (virt-controller adds it after Multus reported the
// network-status), empty.
func TestReadWaitsForContent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		emptyFirst bool
	}{{"file missing at first", false}, {"file empty at first", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "network-info")
			if tc.emptyFirst {
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(300 * time.Millisecond)
				writeLikeKubelet(t, p, `{"interfaces":[{"network":"a","mtu":1400}]}`)
			}()
			info, err := Read(p, 5*time.Second)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			if info["a"].MTU != 1400 {
				t.Errorf("got %+v", info)
			}
		})
	}
}

func TestReadEmptyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "network-info")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if info, err := Read(p, 0); err != nil || len(info) != 0 {
		t.Fatalf("Read(wait 0) = %v, %v; want empty, nil", info, err)
	}
	if _, err := Read(p, 250*time.Millisecond); err == nil || !strings.Contains(err.Error(), "stayed empty within") {
		t.Fatalf("Read(wait) err = %v; want a 'stayed empty' error", err)
	}
}

func TestReadWaitTimesOut(t *testing.T) {
	p := filepath.Join(t.TempDir(), "network-info")
	start := time.Now()
	_, err := Read(p, 250*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not appear within") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("bounded wait took %s", d)
	}
}

func TestReadTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "network-info")
	if err := os.WriteFile(p, make([]byte, maxSize+10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p, 0); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDirectoryIsError(t *testing.T) {
	if _, err := Read(t.TempDir(), 0); err == nil {
		t.Fatal("reading a directory succeeded")
	}
}
