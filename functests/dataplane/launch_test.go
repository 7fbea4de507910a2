package dataplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hook's log as the sidecar-shim writes it: a define's interface lines,
// then its "define with" line (cmd/test-only-msix-vectors0).
func TestCheckDefines(t *testing.T) {
	const sock = "/var/run/kubevirt-hooks/vhostuser/pod1/vhost.sock"
	iface := "test-only-msix-vectors0: vhostuser alias=ua-vhu path=" + sock + " mode=server"
	define := func(n string) string { return "test-only-msix-vectors0: define with " + n + " vhostuser interfaces" }
	for _, tt := range []struct {
		name    string
		lines   []string
		want    int
		wantErr string
	}{
		{"two defines", []string{iface, define("1"), iface, define("1")}, 2, ""},
		{"a third define still being logged", []string{iface, define("1"), iface, define("1"), iface}, 2, ""},
		{"one define", []string{iface, define("1")}, 1, "want at least 2"},
		{"define without our interface", []string{iface, define("1"), define("0")}, 2, "0 interface lines"},
		{"two interfaces in one define", []string{iface, iface, define("2"), iface, define("1")}, 1, "define 1"},
		{"client mode", []string{strings.Replace(iface, "mode=server", "mode=client", 1), define("1")}, 0, "want path="},
		{"another path", []string{strings.Replace(iface, sock, "/tmp/x.sock", 1), define("1")}, 0, "want path="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "hook.log")
			if err := os.WriteFile(f, []byte(strings.Join(tt.lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			n, err := checkDefines(f, sock)
			if n != tt.want || (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkDefines = %d, %v; want %d, error containing %q", n, err, tt.want, tt.wantErr)
			}
		})
	}
}
