package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The plugin runs once per CNI command, hundreds at once on a busy node:
// whatever it links initialises and pages in on every run. These packages
// once came in through libovsdb's client and libcni's invoke, for nothing
// the plugin does (issue 11); keep them out.
func TestImportGraphStaysLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v (the test needs the go command on PATH)", err)
	}
	deps := strings.Fields(string(out))
	banned := []string{
		"net/http", "crypto/tls",
		"go.opentelemetry.io/", "github.com/prometheus/", "google.golang.org/protobuf/",
		"gopkg.in/yaml", "sigs.k8s.io/yaml", "github.com/ovn-org/libovsdb/client",
		"github.com/containernetworking/cni/pkg/invoke", "github.com/containernetworking/cni/libcni",
	}
	for _, d := range deps {
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b) && (strings.HasSuffix(b, "/") || strings.HasPrefix(d, b+"/")) {
				t.Errorf("the plugin links %s (banned: %s)", d, b)
			}
		}
	}
	if len(deps) > 160 {
		t.Errorf("the plugin links %d packages, more than the 160 allowed: check what a new import pulls in", len(deps))
	}
}

// oneproc only helps if it runs before the packages whose initialisation
// touches memory; Go orders initialisation by import path among packages
// whose imports are done, so a rename or a new import could move it late.
func TestOneProcInitialisesFirst(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vhostuser")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "CNI_COMMAND=VERSION")
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.1.0"}`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("VERSION: %v\n%s", err, stderr.String())
	}
	const oneproc = "github.com/kubevirt-vhostuser/vhostuser/cmd/vhostuser/internal/oneproc"
	var order []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
			order = append(order, f[1])
		}
	}
	at := slices.Index(order, oneproc)
	if at < 0 {
		t.Fatalf("no init of %s in the trace:\n%s", oneproc, stderr.String())
	}
	for _, later := range []string{"os", "unicode", "net", "github.com/ovn-org/libovsdb/ovsdb", "github.com/containernetworking/cni/pkg/utils"} {
		if i := slices.Index(order, later); i >= 0 && i < at {
			t.Errorf("%s is initialised before oneproc (order %v)", later, order[:at+1])
		} else if i < 0 {
			t.Errorf("%s does not appear in the init trace: update this test's list", later)
		}
	}
}
