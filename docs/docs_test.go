// Package docs holds the operator documentation; its test keeps the
// configuration reference in step with the code.
package docs

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/agent/events"
	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConfigurationCoversNetConf: every JSON field of the plugin's NetConf
// has a row in configuration.md.
func TestConfigurationCoversNetConf(t *testing.T) {
	doc := read(t, "configuration.md")
	var fields []string
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous || name == "-" || name == "":
				continue // embedded CNI PluginConf fields and derived values
			case name == "runtimeConfig":
				walk(f.Type, "runtimeConfig.")
			default:
				fields = append(fields, prefix+name)
			}
		}
	}
	walk(reflect.TypeOf(config.NetConf{}), "")
	walk(reflect.TypeOf(config.NodeConf{}), "")
	if len(fields) < 10 {
		t.Fatalf("found only %d NetConf fields: %v", len(fields), fields)
	}
	for _, f := range append(fields, "ipam", "cniVersion", "name", "type") {
		if !strings.Contains(doc, "| `"+f+"` |") {
			t.Errorf("configuration.md has no row for the CNI field %q", f)
		}
	}
}

var flagDef = regexp.MustCompile(`\b(?:fs|flag)\.(?:String|Bool|Duration|Uint|Int|Int64)(?:Var)?\((?:&[\w.]+, )?"([a-z0-9-]+)"`)

// TestConfigurationCoversFlags: every flag the binaries define has a row.
func TestConfigurationCoversFlags(t *testing.T) {
	doc := read(t, "configuration.md")
	for _, main := range []string{
		"../cmd/vhostuser-sidecar/main.go",
		"../cmd/vhostuser-installer/main.go",
		"../cmd/image-builder/main.go",
	} {
		m := flagDef.FindAllStringSubmatch(read(t, main), -1)
		if len(m) < 3 {
			t.Errorf("%s: found only %d flags; has the flag style changed?", main, len(m))
		}
		for _, f := range m {
			if !strings.Contains(doc, "| `-"+f[1]+"` |") {
				t.Errorf("configuration.md has no row for flag -%s of %s", f[1], main)
			}
		}
	}
}

// TestDocLinks: relative links between the docs and into the repository
// point at files that exist.
func TestDocLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#:]+)(?:#[^)]*)?\)`)
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".md") {
			continue
		}
		for _, m := range link.FindAllStringSubmatch(read(t, f.Name()), -1) {
			if _, err := os.Stat(m[1]); err != nil {
				t.Errorf("%s links to %s: %v", f.Name(), m[1], err)
			}
		}
	}
}

// TestObservabilityCoversAgent: every flag of the node agent, every metric
// name it serves and every event reason it records has its row in
// observability.md.
func TestObservabilityCoversAgent(t *testing.T) {
	doc := read(t, "observability.md")
	var flags []string
	for _, f := range []string{"../cmd/vhostuser-agent/main.go"} {
		for _, m := range flagDef.FindAllStringSubmatch(read(t, f), -1) {
			flags = append(flags, m[1])
		}
	}
	if len(flags) < 8 {
		t.Fatalf("found only %d agent flags: %v; has the flag style changed?", len(flags), flags)
	}
	for _, f := range flags {
		if !strings.Contains(doc, "| `-"+f+"` |") {
			t.Errorf("observability.md has no row for the agent flag -%s", f)
		}
	}
	metric := regexp.MustCompile(`"(vhostuser_[a-z_]+)"`)
	var names []string
	for _, f := range []string{"../agent/metrics/names.go", "../agent/reconcile/metrics.go"} {
		for _, m := range metric.FindAllStringSubmatch(read(t, f), -1) {
			names = append(names, m[1])
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metric names: %v", len(names), names)
	}
	for _, n := range names {
		if !strings.Contains(doc, "| `"+n+"` |") && !strings.Contains(doc, "| `"+n+"{") {
			t.Errorf("observability.md has no row for the metric %s", n)
		}
	}
	for _, r := range []string{events.ReasonConnected, events.ReasonNotConnected, events.ReasonDisconnected, events.ReasonPortError, events.ReasonPortErrorCleared} {
		if !strings.Contains(doc, "| `"+r+"` |") {
			t.Errorf("observability.md has no row for the event reason %s", r)
		}
	}
}
