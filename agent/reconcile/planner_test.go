package reconcile

import (
	"testing"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
)

func TestPlanner(t *testing.T) {
	const grace = 30 * time.Second
	t0 := time.Unix(1_000_000, 0)
	port := func(uid string) ovsstate.Port {
		return ovsstate.Port{Name: "vhu" + uid, PodUID: uid, IfName: "pod1", Namespace: "ns", Pod: "p"}
	}
	cached := func(uids ...string) func(string) bool {
		m := map[string]bool{}
		for _, u := range uids {
			m[u] = true
		}
		return func(u string) bool { return m[u] }
	}
	obs := func(c func(string) bool, ports ...ovsstate.Port) Observation {
		return Observation{Synced: true, Connected: true, Ports: ports, Cached: c}
	}
	type step struct {
		at      time.Duration
		obs     Observation
		due     []string // names
		waiting int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"gone pod waits out grace", []step{
			{0, obs(cached(), port("a")), nil, 1},
			{29 * time.Second, obs(cached(), port("a")), nil, 1},
			{30 * time.Second, obs(cached(), port("a")), []string{"vhua"}, 0},
		}},
		{"cached pod never due", []step{
			{0, obs(cached("a"), port("a")), nil, 0},
			{time.Hour, obs(cached("a"), port("a")), nil, 0},
		}},
		{"re-cached resets grace", []step{
			{0, obs(cached(), port("a")), nil, 1},
			{20 * time.Second, obs(cached("a"), port("a")), nil, 0},
			{40 * time.Second, obs(cached(), port("a")), nil, 1},
			{69 * time.Second, obs(cached(), port("a")), nil, 1},
			{70 * time.Second, obs(cached(), port("a")), []string{"vhua"}, 0},
		}},
		{"not synced plans nothing and resets", []step{
			{0, obs(cached(), port("a")), nil, 1},
			{31 * time.Second, Observation{Synced: false, Connected: true, Ports: []ovsstate.Port{port("a")}, Cached: cached()}, nil, 0},
			{40 * time.Second, obs(cached(), port("a")), nil, 1},
		}},
		{"not connected plans nothing", []step{
			{0, obs(cached(), port("a")), nil, 1},
			{31 * time.Second, Observation{Synced: true, Connected: false, Ports: []ovsstate.Port{port("a")}, Cached: cached()}, nil, 0},
		}},
		{"port without pod UID kept", []step{
			{0, obs(cached(), ovsstate.Port{Name: "vhux"}), nil, 0},
			{time.Hour, obs(cached(), ovsstate.Port{Name: "vhux"}), nil, 0},
		}},
		{"link of gone pod, link of live pod", []step{
			{0, Observation{Synced: true, Connected: true, Cached: cached("live"),
				Links: []sockdir.Link{{Path: "/s/1", PodUID: "gone"}, {Path: "/s/2", PodUID: "live"}}}, nil, 1},
			{grace, Observation{Synced: true, Connected: true, Cached: cached("live"),
				Links: []sockdir.Link{{Path: "/s/1", PodUID: "gone"}, {Path: "/s/2", PodUID: "live"}}}, []string{"/s/1"}, 0},
		}},
		{"temp link by age, ports first", []step{
			{grace, Observation{Synced: true, Connected: true, Cached: cached(),
				Temps: []sockdir.Temp{{Path: "/s/.old", ModTime: t0}, {Path: "/s/.new", ModTime: t0.Add(grace)}}}, []string{"/s/.old"}, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlanner(grace)
			for i, s := range tc.steps {
				plan := p.Plan(t0.Add(s.at), s.obs)
				var names []string
				for _, c := range plan.Due {
					names = append(names, c.Name)
				}
				if !equal(names, s.due) {
					t.Errorf("step %d: due %v, want %v", i, names, s.due)
				}
				n := 0
				for _, w := range plan.Waiting {
					n += w
				}
				if n != s.waiting {
					t.Errorf("step %d: waiting %v, want %d", i, plan.Waiting, s.waiting)
				}
			}
		})
	}
}

func TestConfirm(t *testing.T) {
	due := []Candidate{
		{Kind: KindPort, Name: "alive", PodUID: "a"},
		{Kind: KindPort, Name: "gone", PodUID: "g"},
		{Kind: KindLink, Name: "/s/alive", PodUID: "a"},
		{Kind: KindTempLink, Name: "/s/.t"},
	}
	got := Confirm(due, map[string]bool{"a": true})
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if want := []string{"gone", "/s/.t"}; !equal(names, want) {
		t.Errorf("Confirm: %v, want %v (Live says alive => kept)", names, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
