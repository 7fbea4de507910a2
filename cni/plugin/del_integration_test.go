//go:build integration

package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

func TestDelIdempotent(t *testing.T) {
	tests := []struct {
		name   string
		before func(f *fixture, a att)
	}{
		{"twice", func(f *fixture, a att) {
			if err := f.del("1.1.0", a); err != nil {
				f.t.Fatalf("first DEL: %v", err)
			}
		}},
		{"port removed by hand", func(f *fixture, a att) {
			f.vsctl("del-port", ovsdb.PortName(f.paths(a).ID))
		}},
		{"pod volume gone", func(f *fixture, a att) {
			if err := os.RemoveAll(filepath.Join(f.root, "pods", a.uid)); err != nil {
				f.t.Fatal(err)
			}
		}},
		{"never added", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := att{"idem", "net1", uid1}
			f.newPod(a.uid)
			if tt.before != nil {
				if _, err := f.add("1.1.0", a); err != nil {
					t.Fatalf("ADD: %v", err)
				}
				f.assertAttached(a)
				tt.before(f, a)
			}
			if err := f.del("1.1.0", a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			f.assertDetached(a)
		})
	}
}

func TestDelWithOVSDown(t *testing.T) {
	f := newFixture(t)
	a := att{"down", "net1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	f.assertAttached(a)
	p := f.paths(a)
	ctx := context.Background()
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovs.StartDB(context.Background()) })
	err := f.del("1.1.0", a)
	if err == nil || !strings.Contains(err.Error(), "OVSDB unreachable") {
		t.Fatalf("DEL with OVSDB down: %v, want an error about OVSDB (the port remains)", err)
	}
	// The directory and link stay: without OVSDB the plugin cannot tell
	// whether a newer sandbox of the pod uses them (the chaos test found a
	// late DEL removing them under a live sandbox). The retried DEL cleans.
	for _, path := range []string{p.ShortLink, p.HostDir} {
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("%s removed while OVSDB was down: %v", path, err)
		}
	}
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.get("Port", ovsdb.PortName(p.ID), "name"); got == "" {
		t.Fatal("port vanished while OVSDB was down?")
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL after OVSDB is back: %v", err)
	}
	f.assertDetached(a)
}

// TestLateDelWithOVSDown: the old sandbox's DEL arrives while OVSDB is down,
// after a newer sandbox of the same pod took the attachment over. It must not
// remove the newer sandbox's socket directory or short link, then or when
// retried after OVSDB is back.
func TestLateDelWithOVSDown(t *testing.T) {
	f := newFixture(t)
	old, cur := att{"late1", "net1", uid1}, att{"late2", "net1", uid1}
	f.newPod(uid1)
	if _, err := f.add("1.1.0", old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.add("1.1.0", cur); err != nil {
		t.Fatalf("ADD of the new sandbox: %v", err)
	}
	ctx := context.Background()
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovs.StartDB(context.Background()) })
	if err := f.del("1.1.0", old); err == nil {
		t.Fatal("late DEL with OVSDB down succeeded; it cannot know the port is gone")
	}
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	f.assertAttached(cur)
	if err := f.del("1.1.0", old); err != nil {
		t.Fatalf("late DEL retried with OVSDB back: %v", err)
	}
	f.assertAttached(cur)
	if err := f.del("1.1.0", cur); err != nil {
		t.Fatal(err)
	}
	f.assertDetached(cur)
}

// TestSandboxRecreated: a new sandbox of the same pod (new container id, same
// pod UID and ifname) takes the port over; the old sandbox's late DEL leaves it.
func TestSandboxRecreated(t *testing.T) {
	f := newFixture(t)
	old, cur := att{"sandbox1", "net1", uid1}, att{"sandbox2", "net1", uid1}
	f.newPod(uid1)
	if _, err := f.add("1.1.0", old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.add("1.1.0", cur); err != nil {
		t.Fatalf("ADD of the new sandbox: %v", err)
	}
	f.assertAttached(cur)
	if err := f.del("1.1.0", old); err != nil {
		t.Fatalf("late DEL of the old sandbox: %v", err)
	}
	name := ovsdb.PortName(f.paths(cur).ID)
	if got := f.get("Port", name, "external_ids:vhostuser.kubevirt.io/container-id"); got != "sandbox2" {
		t.Fatalf("the old sandbox's DEL removed the new port (container-id %q)", got)
	}
	f.assertAttached(cur) // also the socket directory and the short link
	if err := f.del("1.1.0", cur); err != nil {
		t.Fatal(err)
	}
	f.assertDetached(cur)
}

// TestDelInvalidConfig: DEL with the configuration an ADD refused succeeds.
func TestDelInvalidConfig(t *testing.T) {
	f := newFixture(t)
	f.extra["vlan"] = 5000
	a := att{"badconf", "net1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err == nil || !strings.Contains(err.Error(), `"vlan"`) {
		t.Fatalf("ADD: %v, want a vlan error", err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestDelLegacyLink: an attachment made by a release with the 48-bit ID has
// its short link named by the first 12 hex characters; DEL removes it too.
func TestDelLegacyLink(t *testing.T) {
	f := newFixture(t)
	a := att{"legacy", "net1", uid1}
	f.newPod(a.uid)
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatal(err)
	}
	p := f.paths(a)
	legacy := filepath.Join(f.short, p.ID[:12])
	if err := os.Symlink(p.HostDir, legacy); err != nil {
		t.Fatal(err)
	}
	if err := f.del("1.1.0", a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	f.assertDetached(a)
	if _, err := os.Lstat(legacy); !os.IsNotExist(err) {
		t.Fatalf("legacy link kept: %v", err)
	}
}

// TestRoundTrips: a healthy ADD and its DEL are one OVSDB transaction each
// (the DEL detaches the port under the UUID ADD derived); a port of ours
// under another UUID (a retried ADD replaced it) still goes, with one more.
func TestRoundTrips(t *testing.T) {
	f := newFixture(t)
	a := att{"roundtrip1", "net1", uid1}
	f.newPod(uid1)
	if n := transactions(t, []string{a.containerID}, func() {
		if _, err := f.add("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("ADD sent %d transactions, want 1", n)
	}
	f.assertAttached(a)
	name := ovsdb.PortName(f.paths(a).ID)
	if got, want := f.get("Port", name, "_uuid"), ovsdb.PortUUID(a.containerID, a.ifName); got != want {
		t.Fatalf("port UUID %s, want the attachment's %s", got, want)
	}
	if n := transactions(t, []string{a.containerID, f.get("Port", name, "_uuid")}, func() {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("DEL sent %d transactions, want 1", n)
	}
	f.assertDetached(a)

	// ADD again for the same container: its UUID is taken, so the careful
	// path replaces the port under a UUID of the server's.
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.add("1.1.0", a); err != nil {
		t.Fatalf("repeated ADD: %v", err)
	}
	replaced := f.get("Port", name, "_uuid")
	if replaced == ovsdb.PortUUID(a.containerID, a.ifName) {
		t.Fatalf("replaced port kept the derived UUID %s", replaced)
	}
	if n := transactions(t, []string{a.containerID, replaced}, func() {
		if err := f.del("1.1.0", a); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Errorf("DEL of a replaced port sent %d transactions, want 2 (read and detach, then delete by its UUID)", n)
	}
	f.assertDetached(a)
}
