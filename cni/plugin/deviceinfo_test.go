package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestDeviceInfo(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sub", "net1.json")
	const path = "/var/run/kubevirt-hooks/vhostuser/net1/vhost.sock"
	if err := writeDeviceInfo(dir, file, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	vu, _ := got["vhost-user"].(map[string]any)
	if got["type"] != "vhost-user" || got["version"] != "1.1.0" || vu["path"] != path || vu["mode"] != "server" {
		t.Fatalf("device-info %s", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	// Readable by root only, as os.CreateTemp makes it: nothing is chmodded.
	if fi, err := os.Lstat(file); err != nil {
		t.Fatal(err)
	} else if fi.Mode() != 0o600 {
		t.Fatalf("device-info file mode %v, want -rw-------", fi.Mode())
	}
	tests := []struct {
		name    string
		content string
		removed bool
	}{
		{"ours", string(b), true},
		{"another path", `{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"server","path":"/other"}}`, false},
		{"another type", `{"type":"pci","version":"1.1.0"}`, false},
		{"not json", `garbage`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := removeDeviceInfo(dir, file, path); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(file)
			if removed := os.IsNotExist(err); removed != tt.removed {
				t.Fatalf("removed %v, want %v", removed, tt.removed)
			}
		})
	}
	if err := removeDeviceInfo(dir, filepath.Join(dir, "none.json"), path); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	// A symlink below the device-info directory is never followed, and a
	// path outside it is refused.
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "file-link.json")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "link", "victim"), filepath.Join(dir, "file-link.json"), victim, dir} {
		if err := writeDeviceInfo(dir, f, path); err == nil {
			t.Errorf("writeDeviceInfo(%s) succeeded", f)
		}
		if err := removeDeviceInfo(dir, f, path); err == nil && f != dir {
			t.Errorf("removeDeviceInfo(%s) succeeded", f)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Fatalf("file outside changed: %q %v", b, err)
	}
}

func TestSameInts(t *testing.T) {
	tests := []struct {
		a, b []int
		want bool
	}{
		{nil, nil, true},
		{[]int{1, 2}, []int{2, 1}, true},
		{[]int{1, 1}, []int{1, 2}, false},
		{[]int{1}, nil, false},
	}
	for _, tt := range tests {
		if got := sameInts(tt.a, tt.b); got != tt.want {
			t.Errorf("sameInts(%v, %v) = %v", tt.a, tt.b, got)
		}
	}
}

// A run killed between creating the temporary device-info file and renaming
// it leaves ".<name>.<digits>": the next ADD (write) and DEL (remove) of the
// attachment remove it, and nothing else.
func TestDeviceInfoLeftoverTemps(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "net1.json")
	const path = "/var/run/kubevirt-hooks/vhostuser/net1/vhost.sock"
	leftover := filepath.Join(dir, ".net1.json.123456789")
	keep := []string{
		filepath.Join(dir, ".net1.json.12x"),         // not CreateTemp's form
		filepath.Join(dir, ".net2.json.123456789"),   // another attachment's
		filepath.Join(dir, ".net1.json.987654321.d"), // not ours
	}
	for _, f := range append(keep, leftover) {
		if err := os.WriteFile(f, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(f string) bool { _, err := os.Lstat(f); return err == nil }
	if err := writeDeviceInfo(dir, file, path); err != nil {
		t.Fatal(err)
	}
	if exists(leftover) {
		t.Fatal("ADD kept the leftover temporary file")
	}
	if err := os.WriteFile(leftover, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := removeDeviceInfo(dir, file, path); err != nil {
		t.Fatal(err)
	}
	if exists(leftover) || exists(file) {
		t.Fatalf("after DEL: leftover %v, file %v", exists(leftover), exists(file))
	}
	for _, f := range keep {
		if !exists(f) {
			t.Errorf("%s was removed", f)
		}
	}
}
