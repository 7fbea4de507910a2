package main

import (
	"os/exec"
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
