package events

import (
	"context"
	"log/slog"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
)

// Recheck bounds how long a pending transition (a pod not cached yet, a
// VMI not Running yet) waits for the caches: they change without telling
// the detector.
const Recheck = 5 * time.Second

// Run steps a detector on every change of state and on its deadlines, and
// sends what it finds to sink and to the log, until ctx ends. Nothing is
// looked at while OVSDB is not connected: the snapshot is then stale.
func Run(ctx context.Context, cfg Config, state *ovsstate.State, lk Lookup, sink Sink, log *slog.Logger) {
	changes, stop := state.Subscribe()
	defer stop()
	d := NewDetector(cfg)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-timer.C:
		}
		wait := Recheck
		if state.Health().Connected {
			now := time.Now()
			evs, next := d.Step(now, state.Ports(), lk)
			for _, e := range evs {
				log.Info("event", "type", e.Type, "reason", e.Reason, "namespace", e.Pod.Namespace, "pod", e.Pod.Name, "port", e.Port, "message", e.Message)
				sink.Record(e)
			}
			if !next.IsZero() && next.Sub(now) < wait {
				wait = max(next.Sub(now), 0)
			}
		}
		timer.Reset(wait) // no stale tick to drain since Go 1.23
	}
}
