package events

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/agent/pods"
)

type fakeLookup struct {
	pods map[string]pods.Pod
	vmis map[string]pods.VMI
}

func (f *fakeLookup) Pod(uid string) (pods.Pod, bool) { p, ok := f.pods[uid]; return p, ok }
func (f *fakeLookup) VMI(uid string) (pods.VMI, bool) { v, ok := f.vmis[uid]; return v, ok }

// A virt-launcher pod of a Running VMI on this node, and a plain pod.
func world() *fakeLookup {
	return &fakeLookup{
		pods: map[string]pods.Pod{
			"pod-vm": {UID: "pod-vm", Namespace: "t", Name: "virt-launcher-vm1-abcde", VMIName: "vm1", VMIUID: "vmi-1"},
			"pod-2":  {UID: "pod-2", Namespace: "t", Name: "plain"},
		},
		vmis: map[string]pods.VMI{
			"vmi-1": {UID: "vmi-1", Namespace: "t", Name: "vm1", Phase: pods.VMIRunning, Interfaces: map[string]string{"net1": "fast"}},
		},
	}
}

type portState struct {
	up  bool
	err string
}

func port(podUID, container string, s portState) ovsstate.Port {
	p := ovsstate.Port{Name: "vhu-" + podUID, Namespace: "t", PodUID: podUID, ContainerID: container, IfName: "net1",
		Interface: ovsstate.Interface{Error: s.err, ServerPath: "/var/run/vhostuser/x", Status: map[string]string{"status": "disconnected"}}}
	if s.up {
		p.Interface.Status = map[string]string{"status": "connected", "num_of_vrings": "2"}
	}
	return p
}

type step struct {
	at    time.Duration // since the start
	ports []ovsstate.Port
	world func(*fakeLookup) // changes to the caches before this step
	want  []string          // reasons, in order
}

func TestDetector(t *testing.T) {
	vm := func(s portState) []ovsstate.Port { return []ovsstate.Port{port("pod-vm", "c1", s)} }
	up, down := portState{up: true}, portState{}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"never connected: one warning at the threshold, then connected", []step{
			{0, vm(down), nil, nil},
			{59 * time.Second, vm(down), nil, nil},
			{60 * time.Second, vm(down), nil, []string{ReasonNotConnected}},
			{90 * time.Second, vm(down), nil, nil},
			{95 * time.Second, vm(up), nil, []string{ReasonConnected}},
			{96 * time.Second, vm(up), nil, nil},
		}},
		{"a new port that connects in time: one Normal event", []step{
			{0, nil, nil, nil},
			{time.Second, vm(down), nil, nil},
			{5 * time.Second, vm(up), nil, []string{ReasonConnected}},
			{6 * time.Second, vm(up), nil, nil},
		}},
		{"up when the agent starts: no news; a lost connection warns after the threshold", []step{
			{0, vm(up), nil, nil},
			{time.Second, vm(down), nil, nil},
			{10 * time.Second, vm(down), nil, nil},
			{11 * time.Second, vm(down), nil, []string{ReasonDisconnected}},
			{20 * time.Second, vm(down), nil, nil},
			{21 * time.Second, vm(up), nil, []string{ReasonConnected}},
		}},
		{"a short flap (an ovs-vswitchd restart) says nothing", []step{
			{0, vm(up), nil, nil},
			{time.Second, vm(down), nil, nil},
			{4 * time.Second, vm(up), nil, nil},
			{30 * time.Second, vm(up), nil, nil},
		}},
		{"an error: one warning, then cleared", []step{
			{0, vm(portState{up: true, err: "could not open"}), nil, []string{ReasonPortError}},
			{time.Second, vm(portState{up: true, err: "could not open"}), nil, nil},
			{2 * time.Second, vm(portState{up: true, err: "other"}), nil, []string{ReasonPortError}},
			{3 * time.Second, vm(up), nil, []string{ReasonPortErrorCleared}},
		}},
		{"a terminating pod gets nothing", []step{
			{0, vm(up), func(w *fakeLookup) { p := w.pods["pod-vm"]; p.Terminating = true; w.pods["pod-vm"] = p }, nil},
			{time.Second, vm(portState{err: "x"}), nil, nil},
			{time.Minute, vm(portState{err: "x"}), nil, nil},
		}},
		{"a VM that stopped (VMI Succeeded) closes its socket as it should", []step{
			{0, vm(up), nil, nil},
			{time.Second, vm(down), func(w *fakeLookup) { v := w.vmis["vmi-1"]; v.Phase = "Succeeded"; w.vmis["vmi-1"] = v }, nil},
			{time.Minute, vm(down), nil, nil},
		}},
		{"a VMI being deleted", []step{
			{0, vm(up), func(w *fakeLookup) { v := w.vmis["vmi-1"]; v.Deleting = true; w.vmis["vmi-1"] = v }, nil},
			{time.Minute, vm(down), nil, nil},
		}},
		{"the source pod of a migration: the VMI left this node", []step{
			{0, vm(up), nil, nil},
			{time.Second, vm(down), func(w *fakeLookup) { delete(w.vmis, "vmi-1") }, nil},
			{time.Minute, vm(down), nil, nil},
		}},
		{"a pod not cached yet: the warning waits for it", []step{
			{0, vm(down), func(w *fakeLookup) { delete(w.pods, "pod-vm") }, nil},
			{2 * time.Minute, vm(down), nil, nil},
			{2*time.Minute + time.Second, vm(down), func(w *fakeLookup) { w.pods["pod-vm"] = world().pods["pod-vm"] }, []string{ReasonNotConnected}},
		}},
		{"a plain pod (no VMI) still gets its warning", []step{
			{0, []ovsstate.Port{port("pod-2", "c1", down)}, nil, nil},
			{time.Minute, []ovsstate.Port{port("pod-2", "c1", down)}, nil, []string{ReasonNotConnected}},
		}},
		{"a new sandbox starts over", []step{
			{0, vm(down), nil, nil},
			{time.Minute, vm(down), nil, []string{ReasonNotConnected}},
			{61 * time.Second, []ovsstate.Port{port("pod-vm", "c2", down)}, nil, nil},
			{2*time.Minute + time.Second, []ovsstate.Port{port("pod-vm", "c2", down)}, nil, []string{ReasonNotConnected}},
		}},
		{"a port that goes and comes back is new", []step{
			{0, vm(up), nil, nil},
			{time.Second, nil, nil, nil},
			{2 * time.Second, vm(up), nil, []string{ReasonConnected}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDetector(Config{})
			w := world()
			start := time.Unix(1_000_000, 0)
			for i, s := range tc.steps {
				if s.world != nil {
					s.world(w)
				}
				evs, _ := d.Step(start.Add(s.at), s.ports, w)
				var got []string
				for _, e := range evs {
					got = append(got, e.Reason)
					if e.Pod.UID == "" || e.Port == "" || e.Message == "" {
						t.Errorf("step %d: event without target or message: %+v", i, e)
					}
					if want := map[string]string{ReasonConnected: TypeNormal, ReasonPortErrorCleared: TypeNormal}[e.Reason]; want == "" && e.Type != TypeWarning || want != "" && e.Type != want {
						t.Errorf("step %d: %s has type %s", i, e.Reason, e.Type)
					}
				}
				if !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d (at %v): events %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}

// Step's deadline is the earliest threshold, so the loop wakes in time.
func TestDetectorNext(t *testing.T) {
	d := NewDetector(Config{NotConnectedAfter: 30 * time.Second, DisconnectedAfter: 5 * time.Second})
	w := world()
	start := time.Unix(1_000_000, 0)
	ports := []ovsstate.Port{port("pod-vm", "c1", portState{up: true}), port("pod-2", "c1", portState{})}
	if _, next := d.Step(start, ports, w); !next.Equal(start.Add(30 * time.Second)) {
		t.Errorf("next %v, want the not-connected threshold", next.Sub(start))
	}
	ports[0] = port("pod-vm", "c1", portState{})
	if _, next := d.Step(start.Add(10*time.Second), ports, w); !next.Equal(start.Add(15 * time.Second)) {
		t.Errorf("next %v, want the disconnected threshold", next.Sub(start))
	}
	evs, _ := d.Step(start.Add(30*time.Second), ports, w)
	if len(evs) != 2 {
		t.Fatalf("events %+v, want both warnings", evs)
	}
	if _, next := d.Step(start.Add(31*time.Second), ports, w); !next.IsZero() {
		t.Errorf("next %v after both warnings, want none", next.Sub(start))
	}
}

// Events name the VMI network when the VMI is known, and go to the pod and
// its VMI.
func TestDetectorTargets(t *testing.T) {
	d := NewDetector(Config{})
	w := world()
	now := time.Unix(1_000_000, 0)
	evs, _ := d.Step(now, []ovsstate.Port{port("pod-vm", "c1", portState{up: true, err: strings.Repeat("é", 600)})}, w)
	if len(evs) != 1 {
		t.Fatalf("events %+v", evs)
	}
	e := evs[0]
	if e.VMI == nil || e.VMI.Name != "vm1" || e.Pod.Name != "virt-launcher-vm1-abcde" || e.Port != "vhu-pod-vm" {
		t.Errorf("target %+v", e)
	}
	if !strings.Contains(e.Message, `"fast" (pod interface net1, OVS port vhu-pod-vm)`) {
		t.Errorf("message does not name the VMI network: %s", e.Message)
	}
	if len(e.Message) > 1024 || !strings.Contains(e.Message, "...") {
		t.Errorf("a long OVS error is not clipped (%d bytes): %s", len(e.Message), e.Message)
	}
	evs, _ = d.Step(now, []ovsstate.Port{port("pod-2", "c1", portState{err: "x"})}, w)
	if len(evs) != 1 || evs[0].VMI != nil || !strings.Contains(evs[0].Message, "interface net1 (OVS port vhu-pod-2)") {
		t.Errorf("plain pod's event %+v", evs)
	}
}

// Without an API side nothing is sent and nothing panics.
func TestDetectorNoAPI(t *testing.T) {
	d := NewDetector(Config{})
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		if evs, _ := d.Step(now.Add(time.Duration(i)*time.Hour), []ovsstate.Port{port("pod-vm", "c1", portState{err: "x"})}, nil); len(evs) != 0 {
			t.Errorf("events without an API: %+v", evs)
		}
	}
}
