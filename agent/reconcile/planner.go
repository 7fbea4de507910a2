package reconcile

import (
	"sort"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
)

// Kinds of things the reconciler removes.
const (
	KindPort      = "port"
	KindLink      = "link"
	KindTempLink  = "temp-link"
	KindSocketDir = "socket-dir"
)

// Candidate is something that looks leaked: a port or short link of a pod
// the informer does not know, or an old temporary link name.
type Candidate struct {
	Kind string // KindPort, KindLink or KindTempLink
	Name string // port name or path
	// Identity, when known (ports: their marks; links: their target).
	PodUID, Namespace, Pod, IfName, ContainerID string
}

func (c Candidate) key() string {
	return c.Kind + "\x00" + c.Name + "\x00" + c.PodUID + "\x00" + c.IfName
}

// Observation is what one pass saw; the planner does no I/O.
type Observation struct {
	Synced    bool // the pod informer has synced
	Connected bool // the OVSDB monitor is connected and its state read
	Ports     []ovsstate.Port
	Links     []sockdir.Link
	Temps     []sockdir.Temp
	Cached    func(podUID string) bool
}

// Plan is the planner's verdict for one pass.
type Plan struct {
	// Due have looked orphaned for at least Grace, continuously; they still
	// need the second look (Confirm) before anything is removed.
	Due []Candidate
	// Waiting counts, by kind, the suspects still inside the grace period.
	Waiting map[string]int
}

// planner remembers when each candidate was first seen orphaned.
type planner struct {
	grace time.Duration
	seen  map[string]time.Time
}

func newPlanner(grace time.Duration) *planner {
	return &planner{grace: grace, seen: map[string]time.Time{}}
}

// Plan updates the first-seen times with obs and returns what is due. An
// observation that cannot be trusted (informer not synced, OVSDB not
// connected) plans nothing and forgets every suspect: the grace period must
// elapse under trustworthy observation.
func (p *planner) Plan(now time.Time, obs Observation) Plan {
	plan := Plan{Waiting: map[string]int{}}
	if !obs.Synced || !obs.Connected || obs.Cached == nil {
		clear(p.seen)
		return plan
	}
	var cands []Candidate
	for _, port := range obs.Ports {
		// A port without a pod UID cannot be matched to a pod: never ours
		// to judge (CNI GC handles it by container ID).
		if port.PodUID == "" || obs.Cached(port.PodUID) {
			continue
		}
		cands = append(cands, Candidate{Kind: KindPort, Name: port.Name, PodUID: port.PodUID,
			Namespace: port.Namespace, Pod: port.Pod, IfName: port.IfName, ContainerID: port.ContainerID})
	}
	for _, l := range obs.Links {
		if l.PodUID == "" || obs.Cached(l.PodUID) {
			continue
		}
		cands = append(cands, Candidate{Kind: KindLink, Name: l.Path, PodUID: l.PodUID, IfName: l.IfName})
	}
	current := make(map[string]bool, len(cands))
	for _, c := range cands {
		k := c.key()
		current[k] = true
		first, ok := p.seen[k]
		if !ok {
			p.seen[k] = now
			first = now
		}
		if now.Sub(first) >= p.grace {
			plan.Due = append(plan.Due, c)
		} else {
			plan.Waiting[c.Kind]++
		}
	}
	// Forget whatever is no longer a suspect (cached again, or gone).
	for k := range p.seen {
		if !current[k] {
			delete(p.seen, k)
		}
	}
	// Temporary names carry their age in their mtime: a link() between
	// symlink and rename takes microseconds, so one older than Grace was
	// left by a killed run. No pod is involved.
	for _, t := range obs.Temps {
		if now.Sub(t.ModTime) >= p.grace {
			plan.Due = append(plan.Due, Candidate{Kind: KindTempLink, Name: t.Path})
		} else {
			plan.Waiting[KindTempLink]++
		}
	}
	// Ports first: the executor removes a port's link and socket directory
	// with it.
	sort.SliceStable(plan.Due, func(i, j int) bool { return rank(plan.Due[i].Kind) < rank(plan.Due[j].Kind) })
	return plan
}

func rank(kind string) int {
	switch kind {
	case KindPort:
		return 0
	case KindLink:
		return 1
	}
	return 2
}

// Confirm is the second look: of the due candidates, those whose pod is
// absent from a fresh quorum list of this node's pods (live). Temporary
// links need no pod.
func Confirm(due []Candidate, live map[string]bool) []Candidate {
	var out []Candidate
	for _, c := range due {
		if c.Kind != KindTempLink && live[c.PodUID] {
			continue
		}
		out = append(out, c)
	}
	return out
}

// forget drops a candidate's first-seen time (after it was removed, or
// found alive by the second look, so it waits a full grace period again).
func (p *planner) forget(c Candidate) { delete(p.seen, c.key()) }
