package config

// PortName is the OVS port (and interface) name of an attachment: "vhu" and
// its 128-bit ID, 35 bytes, deterministic and unique per pod UID and ifname.
// A dpdkvhostuserclient is no kernel netdev, so IFNAMSIZ does not apply: OVS
// 3.1 on a netdev bridge accepts such names (checked up to 64 bytes).
func PortName(id string) string { return "vhu" + id }
