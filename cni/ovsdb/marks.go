package ovsdb

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Marks the plugin writes into external_ids: who owns a row, and for a port
// which attachment it is.
const (
	KeyOwner       = "vhostuser.kubevirt.io/owner"
	Owner          = "vhostuser-cni"
	KeyNamespace   = "vhostuser.kubevirt.io/pod-namespace"
	KeyPodName     = "vhostuser.kubevirt.io/pod-name"
	KeyPodUID      = "vhostuser.kubevirt.io/pod-uid"
	KeyContainerID = "vhostuser.kubevirt.io/container-id"
	KeyIfName      = "vhostuser.kubevirt.io/ifname"
	KeyNetwork     = "vhostuser.kubevirt.io/network"
	KeyCreated     = "vhostuser.kubevirt.io/created-bridge"
)

// PortName is the OVS port (and interface) name of an attachment: "vhu" and
// its 128-bit ID, 35 bytes, deterministic and unique per pod UID and ifname.
// A dpdkvhostuserclient is no kernel netdev, so IFNAMSIZ does not apply: OVS
// 3.1 on a netdev bridge accepts such names (checked up to 64 bytes).
func PortName(id string) string { return "vhu" + id }

// PortUUID is the UUID ADD gives the Port row of one CNI attachment, derived
// from what every CNI call of that attachment carries: the container ID and
// the ifname. DEL can then detach the port in the same round trip that reads
// what else to clean, instead of reading the UUID first (ovsdb-server takes a
// row's UUID from the insert operation since Open vSwitch 2.13).
//
// The UUID names the attachment, not the pod: a newer sandbox of the same pod
// (new container ID, same port name) gets another UUID, so a late DEL of the
// old sandbox never detaches the newer one's port. Only this plugin derives
// such UUIDs, and SHA-256 keeps a tenant who picks the ifname from steering
// one onto another attachment's.
//
// The result is an RFC 9562 version 8 (custom) UUID.
func PortUUID(containerID, ifName string) string {
	h := sha256.New()
	h.Write([]byte("vhostuser.kubevirt.io/port\x00"))
	// Length-prefixed, so that no two (container ID, ifname) pairs feed
	// the hash the same bytes.
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(containerID))))
	h.Write([]byte(containerID))
	h.Write([]byte(ifName))
	var b [16]byte
	copy(b[:], h.Sum(nil))
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// checkReplace says why ADD may not replace the stale port named name
// (external_ids stale) with the port of the attachment marked ids: only a
// port of ours for the same attachment may be replaced (pod UID and ifname:
// a re-created sandbox; the name is a hash of both).
func checkReplace(name string, stale, ids map[string]string) error {
	if stale[KeyOwner] != Owner {
		return fmt.Errorf("add port %s: a port of that name exists and is not owned by %s; remove it by hand", name, Owner)
	}
	for _, k := range []string{KeyPodUID, KeyIfName} {
		if stale[k] != ids[k] {
			return fmt.Errorf("add port %s: a port of that name belongs to another attachment (%s %q, this one %q); refusing to replace it",
				name, k, stale[k], ids[k])
		}
	}
	return nil
}

// createdBridgeMarks are the external_ids of a bridge ADD created.
func createdBridgeMarks() map[string]string {
	return map[string]string{KeyOwner: Owner, KeyCreated: "true"}
}

// isCreatedBridge tells whether a bridge's external_ids say ADD created it.
func isCreatedBridge(ids map[string]string) bool {
	return ids[KeyCreated] == "true" && ids[KeyOwner] == Owner
}
