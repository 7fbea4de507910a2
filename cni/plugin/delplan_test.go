package plugin

import (
	"errors"
	"slices"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

func TestPlanPorts(t *testing.T) {
	const cid, ifn, pod, derived = "c1", "pod1234567890a", "uid-1", "derived-uuid"
	target := delTarget{containerID: cid, ifName: ifn, podUID: pod, derived: derived}
	port := func(uuid, owner, container, ifname, podUID string) ovsdb.Port {
		ids := map[string]string{}
		for k, v := range map[string]string{ovsdb.KeyOwner: owner, ovsdb.KeyContainerID: container, ovsdb.KeyIfName: ifname, ovsdb.KeyPodUID: podUID} {
			if v != "" {
				ids[k] = v
			}
		}
		return ovsdb.Port{UUID: uuid, Name: "vhu-" + uuid, ExternalIDs: ids}
	}
	tests := []struct {
		name   string
		target delTarget
		found  []ovsdb.Port
		fates  []portFate
		delete []string
		podUID string
		newer  bool
	}{
		{name: "nothing found", target: target},
		{
			name:   "the port ADD made, under the derived UUID",
			target: target, found: []ovsdb.Port{port(derived, ovsdb.Owner, cid, ifn, pod)},
			fates: []portFate{portDetached}, podUID: pod,
		},
		{
			name:   "ours under another UUID (replaced, older release)",
			target: target, found: []ovsdb.Port{port("u1", ovsdb.Owner, cid, ifn, pod)},
			fates: []portFate{portDelete}, delete: []string{"u1"}, podUID: pod,
		},
		{
			name:   "not ours: another owner's port of that name",
			target: target, found: []ovsdb.Port{port("u1", "someone-else", cid, ifn, pod)},
			fates: []portFate{portKeep},
		},
		{
			name:   "not ours: no marks at all",
			target: target, found: []ovsdb.Port{port("u1", "", "", "", "")},
			fates: []portFate{portKeep},
		},
		{
			name:   "another container's: a newer sandbox of the same pod",
			target: target, found: []ovsdb.Port{port("u1", ovsdb.Owner, "c2", ifn, pod)},
			fates: []portFate{portKeep}, newer: true,
		},
		{
			name:   "a same-name port of another pod",
			target: target, found: []ovsdb.Port{port("u1", ovsdb.Owner, "c2", ifn, "uid-2")},
			fates: []portFate{portKeep},
		},
		{
			name:   "same container, another ifname",
			target: target, found: []ovsdb.Port{port("u1", ovsdb.Owner, cid, "other", pod)},
			fates: []portFate{portKeep},
		},
		{
			name:   "another owner with this pod and ifname is no newer sandbox",
			target: target, found: []ovsdb.Port{port("u1", "someone-else", "c2", ifn, pod)},
			fates: []portFate{portKeep},
		},
		{
			name:   "another container's, but DEL has no pod UID to compare",
			target: delTarget{containerID: cid, ifName: ifn, derived: derived},
			found:  []ovsdb.Port{port("u1", ovsdb.Owner, "c2", ifn, pod)},
			fates:  []portFate{portKeep},
		},
		{
			name:   "found by marks and by name: decided once",
			target: target, found: []ovsdb.Port{port("u1", ovsdb.Owner, cid, ifn, pod), port("u1", ovsdb.Owner, cid, ifn, pod)},
			fates: []portFate{portDelete}, delete: []string{"u1"}, podUID: pod,
		},
		{
			name:   "no pod UID: the one recorded on our port",
			target: delTarget{containerID: cid, ifName: ifn, derived: derived},
			found:  []ovsdb.Port{port(derived, ovsdb.Owner, cid, ifn, pod)},
			fates:  []portFate{portDetached}, podUID: pod,
		},
		{
			name:   "mixed: ours detached and deleted, a foreign one kept",
			target: target,
			found: []ovsdb.Port{
				port(derived, ovsdb.Owner, cid, ifn, pod),
				port("foreign", "someone-else", "x", "y", "z"),
				port("old", ovsdb.Owner, cid, ifn, pod),
			},
			fates: []portFate{portDetached, portKeep, portDelete}, delete: []string{"old"}, podUID: pod,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := planPorts(tt.target, tt.found)
			var fates []portFate
			for _, v := range pl.verdicts {
				fates = append(fates, v.fate)
			}
			if !slices.Equal(fates, tt.fates) {
				t.Errorf("fates %v, want %v", fates, tt.fates)
			}
			if !slices.Equal(pl.delete, tt.delete) {
				t.Errorf("delete %v, want %v", pl.delete, tt.delete)
			}
			if pl.podUID != tt.podUID {
				t.Errorf("podUID %q, want %q", pl.podUID, tt.podUID)
			}
			if pl.newer != tt.newer {
				t.Errorf("newer %v, want %v", pl.newer, tt.newer)
			}
		})
	}
}

func TestDiskOwner(t *testing.T) {
	failed := errors.New("transaction failed")
	tests := []struct {
		name     string
		podUID   string
		reached  bool
		portsErr error
		plan     portPlan
		want     string
	}{
		{name: "OVSDB unreachable keeps them", podUID: "uid-1", want: ""},
		{name: "ports not read or not removed keeps them", podUID: "uid-1", reached: true, portsErr: failed, plan: portPlan{podUID: "uid-1"}, want: ""},
		{name: "a newer sandbox's", podUID: "uid-1", reached: true, plan: portPlan{newer: true}, want: ""},
		{name: "a newer sandbox's, port of ours also found", podUID: "uid-1", reached: true, plan: portPlan{podUID: "uid-1", newer: true}, want: ""},
		{name: "K8S_POD_UID", podUID: "uid-1", reached: true, want: "uid-1"},
		{name: "K8S_POD_UID wins over the port's", podUID: "uid-1", reached: true, plan: portPlan{podUID: "uid-2"}, want: "uid-1"},
		{name: "no K8S_POD_UID: the port's", reached: true, plan: portPlan{podUID: "uid-2"}, want: "uid-2"},
		{name: "no K8S_POD_UID and no port", reached: true, want: ""},
		{name: "no K8S_POD_UID, OVSDB unreachable", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, why := diskOwner(tt.podUID, tt.reached, tt.portsErr, tt.plan)
			if uid != tt.want {
				t.Errorf("uid %q, want %q", uid, tt.want)
			}
			if (uid == "") != (why != "") {
				t.Errorf("uid %q with reason %q: a reason is given exactly when nothing is removed", uid, why)
			}
		})
	}
}
