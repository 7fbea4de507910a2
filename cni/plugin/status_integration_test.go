//go:build integration

package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestStatus(t *testing.T) {
	f := newFixture(t)
	f.extra["ipam"] = map[string]any{"type": "host-local", "subnet": "10.78.0.0/24", "dataDir": filepath.Join(f.root, "ipam")}
	ctx := context.Background()
	if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); err != nil {
		t.Fatalf("STATUS with OVS up: %v", err)
	}
	wantCode := func(what string, err error, code uint) {
		t.Helper()
		var e *types.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Fatalf("STATUS %s: %v, want CNI error %d", what, err, code)
		}
	}
	realBridge := f.bridge
	f.bridge = "br-absent"
	wantCode("with the bridge missing", f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")), 50)
	f.extra["createBridge"] = true
	if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); err != nil {
		t.Fatalf("STATUS with createBridge and the bridge missing: %v", err)
	}
	f.bridge = realBridge
	if err := ovs.StopDB(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ovs.StartDB(context.Background()) })
	wantCode("with OVSDB stopped", f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")), 50)
	if err := ovs.StartDB(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); err != nil {
		t.Fatalf("STATUS after OVSDB is back: %v", err)
	}
}

// TestNotReady: with a bridge that is not netdev or with DPDK not
// initialised, ADD fails saying what to fix (and leaves nothing), and STATUS
// reports not-ready (50). Healthy ADDs keep these checks in their one
// transaction (waits), so only a failure costs a read.
func TestNotReady(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		break_  func(f *fixture)
		restore func(f *fixture)
		wantErr string
	}{
		{"system bridge", func(f *fixture) {
			f.bridge = fmt.Sprintf("brsys%d", bridgeSeq.Add(1))
			f.vsctl("add-br", f.bridge, "--", "set", "Bridge", f.bridge, "datapath_type=system")
		}, func(f *fixture) { _, _ = ovs.Vsctl(ctx, "--if-exists", "del-br", f.bridge) }, "datapath_type"},
		// ovs-vswitchd rewrites dpdk_initialized and iface_types, so these
		// cases use an ovsdb-server of their own without ovs-vswitchd, as
		// a node looks when the non-DPDK vswitchd runs or DPDK failed.
		{"DPDK not initialised", func(f *fixture) { f.dbOnly() }, func(f *fixture) {}, "dpdk-init"},
		{"no dpdkvhostuserclient", func(f *fixture) {
			f.dbOnly()
			f.dbOnlyVsctl("set", "Open_vSwitch", ".", "dpdk_initialized=true")
		}, func(f *fixture) {}, "DPDK build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := att{"notready", "net1", uid1}
			f.newPod(a.uid)
			tt.break_(f)
			t.Cleanup(func() { tt.restore(f) })
			_, err := f.add("1.1.0", a)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ADD: %v, want an error mentioning %q", err, tt.wantErr)
			}
			if out := f.vsctl("--bare", "--columns=name", "find", "Port", "external_ids:vhostuser.kubevirt.io/container-id=notready"); out != "" {
				t.Fatalf("port left behind: %s", out)
			}
			if ents := f.shortEntries(); len(ents) != 0 {
				t.Fatalf("short links left: %v", ents)
			}
			var e *types.Error
			if err := f.cni.GetStatusNetworkList(ctx, f.confList("1.1.0")); !errors.As(err, &e) || e.Code != 50 || !strings.Contains(e.Msg, tt.wantErr) {
				t.Fatalf("STATUS: %v, want error 50 mentioning %q", err, tt.wantErr)
			}
			tt.restore(f)
			if err := f.del("1.1.0", a); err != nil {
				t.Fatalf("DEL: %v", err)
			}
		})
	}
}
