package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Pods is what the reconciler needs from the API side (pods.Cache
// implements it).
type Pods interface {
	Synced() bool                                      // the pod informer has synced
	Cached(podUID string) bool                         // the pod is in the informer's cache
	Live(ctx context.Context) (map[string]bool, error) // a fresh quorum list of this node's pod UIDs
}

// Removal is one thing the reconciler removed (or failed to remove).
type Removal struct {
	Kind                           string // "port", "link", "temp-link", "socket-dir"
	Name                           string // port name or path
	PodUID, Namespace, Pod, IfName string // from the port's marks or the link's target when known
	Err                            error  // nil when removed
}

// Notifier hears of every removal (Kubernetes events, say).
type Notifier interface{ Removed(Removal) }

// Config configures a Reconciler.
type Config struct {
	Layout   socketpath.Layout
	Endpoint string        // OVSDB endpoint for the deleting connection (unix:/path)
	Grace    time.Duration // default 30s: how long a port/link must look orphaned before removal
	Interval time.Duration // default 10s: periodic pass, besides passes on ovsstate changes (debounced)
	Log      *slog.Logger
	Notify   Notifier         // may be nil: log only
	Now      func() time.Time // default time.Now (tests)
}

// Debounce is how long Run waits after an ovsstate change before a pass, so
// that a burst of changes (a node draining) costs one pass.
const Debounce = time.Second

// liveTimeout bounds the second look at the API.
const liveTimeout = 30 * time.Second

// Reconciler removes the ports, short links and socket directories of pods
// that no longer exist on this node. See the package comment.
type Reconciler struct {
	cfg   Config
	state *ovsstate.State
	pods  Pods

	passMu  sync.Mutex // one pass at a time
	planner *planner
	ovs     *ovsdb.Client // under passMu

	mu          sync.Mutex // metrics
	passes      uint64
	errors      uint64
	removed     map[string]uint64
	orphans     map[string]int
	lastSuccess time.Time
}

// New makes a Reconciler; Run or Pass drive it.
func New(cfg Config, state *ovsstate.State, pods Pods) *Reconciler {
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reconciler{cfg: cfg, state: state, pods: pods, planner: newPlanner(cfg.Grace),
		removed: map[string]uint64{}, orphans: map[string]int{}}
}

// Run passes every Interval and after ovsstate changes (debounced), never
// concurrently, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	changes, stop := r.state.Subscribe()
	defer stop()
	defer func() {
		r.passMu.Lock()
		r.dropClient()
		r.passMu.Unlock()
	}()
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	debounce := time.NewTimer(0)
	<-debounce.C
	armed := false
	pass := func() {
		if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.Warn("reconcile pass failed", "err", err)
		}
	}
	pass()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			pass()
		case <-changes:
			if !armed {
				debounce.Reset(Debounce)
				armed = true
			}
		case <-debounce.C:
			armed = false
			pass()
		}
	}
}

// Pass runs one reconcile pass: observe, plan, second look, remove.
func (r *Reconciler) Pass(ctx context.Context) error {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	r.mu.Lock()
	r.passes++
	r.mu.Unlock()
	err := r.pass(ctx)
	r.mu.Lock()
	if err != nil {
		r.errors++
	} else {
		r.lastSuccess = r.cfg.Now()
	}
	r.mu.Unlock()
	return err
}

func (r *Reconciler) pass(ctx context.Context) error {
	obs := Observation{
		Synced:    r.pods.Synced(),
		Connected: r.state.Health().Connected,
		Cached:    r.pods.Cached,
	}
	var errs []error
	if obs.Synced && obs.Connected {
		obs.Ports = r.state.Ports()
		var err error
		if obs.Links, err = sockdir.Links(r.cfg.Layout); err != nil {
			errs = append(errs, err)
		}
		if obs.Temps, err = sockdir.Temps(r.cfg.Layout.ShortDir); err != nil {
			errs = append(errs, err)
		}
	}
	plan := r.planner.Plan(r.cfg.Now(), obs)
	r.mu.Lock()
	r.orphans = plan.Waiting
	r.mu.Unlock()
	if !obs.Synced || !obs.Connected {
		r.cfg.Log.Debug("reconcile pass skipped", "synced", obs.Synced, "ovsdbConnected", obs.Connected)
		return errors.Join(errs...)
	}
	// Dangling links point at a socket directory that no longer exists:
	// nothing can use them, whatever the API says.
	dangling, err := sockdir.RemoveDanglingLinks(r.cfg.Layout)
	if err != nil {
		errs = append(errs, fmt.Errorf("remove dangling short links: %w", err))
	}
	for _, d := range dangling {
		rm := Removal{Kind: KindLink, Name: d.Link}
		if c, ok := linkOf(r.cfg.Layout, d); ok {
			rm.PodUID, rm.IfName = c.PodUID, c.IfName
		}
		r.report(rm)
	}
	if len(plan.Due) == 0 {
		return errors.Join(errs...)
	}
	// The second look: one fresh quorum list. Without it nothing is removed.
	lctx, cancel := context.WithTimeout(ctx, liveTimeout)
	live, err := r.pods.Live(lctx)
	cancel()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("second look at the API (list this node's pods): %w; nothing removed", err))...)
	}
	confirmed := Confirm(plan.Due, live)
	for _, c := range plan.Due {
		if c.Kind != KindTempLink && live[c.PodUID] {
			// The informer lags the API: wait a full grace period again.
			r.cfg.Log.Info("reconcile: pod exists though not cached yet; kept", "kind", c.Kind, "name", c.Name, "podUID", c.PodUID)
			r.planner.forget(c)
		}
	}
	for _, c := range confirmed {
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		for _, rm := range r.execute(ctx, c) {
			r.report(rm)
			if rm.Err != nil && !errors.Is(rm.Err, sockdir.ErrNotOurs) {
				errs = append(errs, rm.Err)
			}
		}
		r.planner.forget(c)
	}
	return errors.Join(errs...)
}

// linkOf parses a dangling link's target for the report.
func linkOf(l socketpath.Layout, d sockdir.Dangling) (sockdir.Link, bool) {
	uid, ifName, ok := sockdir.ParseTarget(l.KubeletRoot, d.Target)
	return sockdir.Link{Path: d.Link, Target: d.Target, PodUID: uid, IfName: ifName}, ok
}

// report logs a removal, counts it and tells the notifier.
func (r *Reconciler) report(rm Removal) {
	attrs := []any{"kind", rm.Kind, "name", rm.Name, "podUID", rm.PodUID, "namespace", rm.Namespace, "pod", rm.Pod, "ifname", rm.IfName}
	switch {
	case rm.Err == nil:
		r.cfg.Log.Info("reconcile: removed leaked "+rm.Kind, attrs...)
		r.mu.Lock()
		r.removed[rm.Kind]++
		r.mu.Unlock()
	case errors.Is(rm.Err, sockdir.ErrNotOurs):
		r.cfg.Log.Warn("reconcile: left in place, not ours", append(attrs, "err", rm.Err)...)
	default:
		r.cfg.Log.Error("reconcile: removal failed", append(attrs, "err", rm.Err)...)
	}
	if r.cfg.Notify != nil {
		r.cfg.Notify.Removed(rm)
	}
}
