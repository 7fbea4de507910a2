package events

import (
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/agent/pods"
)

// Lookup is what the detector needs of the API side (pods.Cache).
type Lookup interface {
	Pod(uid string) (pods.Pod, bool)
	VMI(uid string) (pods.VMI, bool)
}

// Config sets the detector's thresholds.
type Config struct {
	// NotConnectedAfter is how long a port may stay not connected after
	// it appeared before a warning (default 60s: virt-launcher defines
	// the domain and starts QEMU after the pod's network is up).
	NotConnectedAfter time.Duration
	// DisconnectedAfter is how long a lost connection may stay down before
	// a warning (default 10s: ovs-vswitchd's own restart reconnects in
	// a few seconds, which is no news for the VM's owner).
	DisconnectedAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.NotConnectedAfter <= 0 {
		c.NotConnectedAfter = 60 * time.Second
	}
	if c.DisconnectedAfter <= 0 {
		c.DisconnectedAfter = 10 * time.Second
	}
	return c
}

// Event is one event to record, on the pod and, when known, its VMI.
type Event struct {
	Type, Reason, Message string
	Pod                   pods.Pod
	VMI                   *pods.VMI // nil for a pod no VMI of this node owns
	Port                  string    // the OVS port name
}

// Detector turns successive snapshots into events. It is not safe for
// concurrent use: one loop (Run) owns it.
type Detector struct {
	cfg    Config
	tracks map[trackKey]*track
	seen   bool // a first snapshot was taken
}

// A port's track is keyed by its name and its sandbox: a new sandbox of
// the same pod re-adds a port of the same name, which starts over.
type trackKey struct{ port, container string }

// track holds what was observed of a port and what was last told.
type track struct {
	firstSeen     time.Time
	everConnected bool
	downSince     time.Time // zero while connected or never connected
	// Told: the open connection warning ("" or a reason), whether the
	// port's being up was told (or was already so when the agent
	// started), and the error text last told.
	warned  string
	upTold  bool
	errTold string
}

// NewDetector returns a detector with cfg's thresholds (defaults for zero).
func NewDetector(cfg Config) *Detector {
	return &Detector{cfg: cfg.withDefaults(), tracks: map[trackKey]*track{}}
}

// Step compares a new snapshot of our ports with what was told before and
// returns the events due at now, and the next time a threshold falls due
// (zero when none). Ports whose pod is unknown or going away give no event
// now; their transitions stay pending until the pod is known, or the port
// goes.
func (d *Detector) Step(now time.Time, ports []ovsstate.Port, lk Lookup) ([]Event, time.Time) {
	var out []Event
	var next time.Time
	due := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	first := !d.seen
	d.seen = true
	present := make(map[trackKey]bool, len(ports))
	for i := range ports {
		p := &ports[i]
		k := trackKey{p.Name, p.ContainerID}
		present[k] = true
		t := d.tracks[k]
		if t == nil {
			t = &track{firstSeen: now}
			// A port already up when the agent starts was up before:
			// that is no news.
			t.upTold = first && p.Interface.Connected()
			d.tracks[k] = t
		}
		target, ok := d.target(p, lk)
		evs, at := d.port(now, t, p, describe(p, target.vmi), ok)
		for _, e := range evs {
			e.Pod, e.VMI, e.Port = target.pod, target.vmi, p.Name
			out = append(out, e)
		}
		if !at.IsZero() {
			due(at)
		}
	}
	for k := range d.tracks {
		if !present[k] {
			delete(d.tracks, k)
		}
	}
	return out, next
}

type target struct {
	pod pods.Pod
	vmi *pods.VMI
}

// target finds the objects a port's events go to, and whether its VM
// should be running here: the pod is cached and not terminating and, for
// a virt-launcher pod, its VMI is on this node, Running and not being
// deleted. A VM that shuts down, or the source pod of a live migration
// (whose VMI has moved to another node), closes its sockets as it should.
func (d *Detector) target(p *ovsstate.Port, lk Lookup) (target, bool) {
	if lk == nil {
		return target{}, false
	}
	pod, ok := lk.Pod(p.PodUID)
	if !ok || pod.Terminating {
		return target{}, false
	}
	if pod.VMIName == "" {
		return target{pod: pod}, true
	}
	vmi, ok := lk.VMI(pod.VMIUID)
	if !ok || vmi.Deleting || vmi.Phase != pods.VMIRunning {
		return target{}, false
	}
	return target{pod: pod, vmi: &vmi}, true
}

// port steps one port: its events (without their target) and its next
// deadline. eligible tells whether events may be sent now.
func (d *Detector) port(now time.Time, t *track, p *ovsstate.Port, in string, eligible bool) ([]Event, time.Time) {
	var out []Event

	if errText := clip(p.Interface.Error); errText != t.errTold && eligible {
		if errText != "" {
			out = append(out, Event{Type: TypeWarning, Reason: ReasonPortError, Message: msgPortError(in, errText)})
		} else {
			out = append(out, Event{Type: TypeNormal, Reason: ReasonPortErrorCleared, Message: msgPortErrorCleared(in)})
		}
		t.errTold = errText
	}

	if p.Interface.Connected() {
		t.downSince = time.Time{}
		wasWarned := t.warned
		if (!t.upTold || wasWarned != "") && eligible {
			out = append(out, Event{Type: TypeNormal, Reason: ReasonConnected, Message: msgConnected(in, p, wasWarned, now.Sub(t.firstSeen))})
			t.upTold, t.warned = true, ""
		}
		t.everConnected = true
		return out, time.Time{}
	}

	if t.everConnected && t.downSince.IsZero() {
		t.downSince = now
	}
	if t.warned != "" {
		return out, time.Time{}
	}
	var reason string
	var at time.Time
	if t.everConnected {
		reason, at = ReasonDisconnected, t.downSince.Add(d.cfg.DisconnectedAfter)
	} else {
		reason, at = ReasonNotConnected, t.firstSeen.Add(d.cfg.NotConnectedAfter)
	}
	if now.Before(at) {
		return out, at
	}
	if !eligible {
		// Looked at again on the next step: the run loop steps at least
		// every recheck interval.
		return out, time.Time{}
	}
	if reason == ReasonDisconnected {
		out = append(out, Event{Type: TypeWarning, Reason: reason, Message: msgDisconnected(in, p, now.Sub(t.downSince))})
	} else {
		out = append(out, Event{Type: TypeWarning, Reason: reason, Message: msgNotConnected(in, p, now.Sub(t.firstSeen))})
	}
	t.warned = reason
	t.upTold = false
	return out, time.Time{}
}
