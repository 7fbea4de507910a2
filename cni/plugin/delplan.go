package plugin

import (
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

// DEL's ownership decisions, kept free of I/O so that every case is a table
// row (delplan_test.go): which ports it removes, and whether the socket
// directory and short link are its to remove.

// delTarget is the attachment a DEL was called for.
type delTarget struct {
	containerID, ifName string
	podUID              string // K8S_POD_UID; may be empty
	derived             string // ovsdb.PortUUID(containerID, ifName)
}

// portFate is what DEL does with one port its read found.
type portFate int

const (
	portDetached portFate = iota // under the derived UUID: detached by the read's transaction
	portDelete                   // ours under another UUID (a replaced port, an older release's)
	portKeep                     // another owner's, container's or ifname's
)

type portVerdict struct {
	port ovsdb.Port
	fate portFate
}

// portPlan is DEL's decision on the ports found by its marks and its name.
type portPlan struct {
	verdicts []portVerdict // one per distinct port, in the order found
	delete   []string      // UUIDs of the portDelete ports
	podUID   string        // pod UID recorded on the last port of ours
	newer    bool          // a kept port is a newer sandbox's of the same pod and ifname
}

// planPorts decides which found ports are this DEL's. Only the plugin
// derives port UUIDs, so the derived one is this attachment's; any other is
// ours only when owner, container id and ifname all match. A kept port of
// ours with this pod UID and ifname belongs to a newer sandbox of the pod
// (the same port name, socket directory and short link).
func planPorts(t delTarget, found []ovsdb.Port) portPlan {
	var pl portPlan
	seen := map[string]bool{}
	for _, pt := range found {
		if seen[pt.UUID] {
			continue
		}
		seen[pt.UUID] = true
		ids := pt.ExternalIDs
		switch {
		case pt.UUID == t.derived:
			pl.verdicts = append(pl.verdicts, portVerdict{pt, portDetached})
			pl.podUID = ids[ovsdb.KeyPodUID]
		case ids[ovsdb.KeyOwner] != ovsdb.Owner || ids[ovsdb.KeyContainerID] != t.containerID || ids[ovsdb.KeyIfName] != t.ifName:
			pl.verdicts = append(pl.verdicts, portVerdict{pt, portKeep})
			if ids[ovsdb.KeyOwner] == ovsdb.Owner && t.podUID != "" && ids[ovsdb.KeyPodUID] == t.podUID && ids[ovsdb.KeyIfName] == t.ifName {
				pl.newer = true
			}
		default:
			pl.verdicts = append(pl.verdicts, portVerdict{pt, portDelete})
			pl.delete = append(pl.delete, pt.UUID)
			pl.podUID = ids[ovsdb.KeyPodUID]
		}
	}
	return pl
}

// diskOwner is the pod UID whose socket directory and short link DEL may
// remove, or "" and why not. Only OVSDB tells whether a newer sandbox of the
// pod owns the attachment (same directory, same link): while it cannot
// answer (unreachable, or the ports not read or not removed), DEL keeps them
// and the runtime's retry cleans up. Without K8S_POD_UID the UID recorded on
// our port is used.
func diskOwner(podUID string, reached bool, portsErr error, pl portPlan) (uid, why string) {
	switch {
	case !reached:
		return "", "OVSDB unreachable: socket directory and short link kept until a DEL can tell whose they are"
	case portsErr != nil:
		return "", "ports not read or not removed: socket directory and short link kept"
	case pl.newer:
		return "", "a newer sandbox owns this attachment; socket directory and link kept"
	case podUID != "":
		return podUID, ""
	case pl.podUID != "":
		return pl.podUID, ""
	}
	return "", "no K8S_POD_UID and no port found: no socket directory to clean"
}
