package ovsdb

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

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
