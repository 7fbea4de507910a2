package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

type stubPods struct{ lives int }

func (*stubPods) Synced() bool       { return true }
func (*stubPods) Cached(string) bool { return false }
func (s *stubPods) Live(context.Context) (map[string]bool, error) {
	s.lives++
	return map[string]bool{}, nil
}

// TestPassWithoutOVSDB: with the OVSDB monitor not connected a pass removes
// nothing, not even a dangling link, and never asks the API; the collector
// reports the pass under every name the wiring expects.
func TestPassWithoutOVSDB(t *testing.T) {
	dir := t.TempDir()
	l := socketpath.Layout{KubeletRoot: filepath.Join(dir, "k"), Volume: socketpath.DefaultVolume, ShortDir: filepath.Join(dir, "s")}
	if err := os.MkdirAll(l.ShortDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(l.ShortDir, strings.Repeat("b", socketpath.IDLen))
	target := filepath.Join(l.KubeletRoot, "pods", "u1", "volumes", "kubernetes.io~empty-dir", l.Volume, socketpath.SocketsDir, "pod1")
	if err := os.Symlink(target, dangling); err != nil {
		t.Fatal(err)
	}
	pods := &stubPods{}
	r := New(Config{Layout: l, Endpoint: "unix:" + filepath.Join(dir, "none.sock")}, ovsstate.NewState(), pods)
	if err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dangling); err != nil {
		t.Errorf("dangling link removed while OVSDB is not connected: %v", err)
	}
	if pods.lives != 0 {
		t.Errorf("Live called %d times", pods.lives)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()] += v
		}
	}
	for name, want := range map[string]float64{
		"vhostuser_agent_reconcile_passes_total":                   1,
		"vhostuser_agent_reconcile_errors_total":                   0,
		"vhostuser_agent_reconcile_removed_total":                  0,
		"vhostuser_agent_reconcile_orphans":                        0,
		"vhostuser_agent_reconcile_last_success_timestamp_seconds": -1,
	} {
		v, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s missing", name)
		case want >= 0 && v != want:
			t.Errorf("%s = %v, want %v", name, v, want)
		case want < 0 && v <= 0:
			t.Errorf("%s = %v, want a timestamp", name, v)
		}
	}
}
