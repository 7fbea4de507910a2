package ovsstate

import (
	"strconv"
	"time"
)

// Port is one port of ours as OVSDB last reported it: the Port row's marks
// and its Interface row. A Port is immutable once published; its maps are
// shared with libovsdb's cache, which clones rows before updating them.
type Port struct {
	// Name is the OVS port (and interface) name.
	Name string
	// Identity marks the plugin wrote at ADD.
	Namespace   string
	Pod         string
	PodUID      string
	ContainerID string
	IfName      string // the interface name inside the pod
	Network     string // the CNI network (NetworkAttachmentDefinition) name
	Interface   Interface
}

// Interface is the Interface row of a Port: what ovs-vswitchd reports.
type Interface struct {
	Type       string
	LinkState  string // "up", "down" or "" (not reported yet)
	AdminState string
	MTU        int    // 0 while unknown
	Error      string // the error column; "" when none
	ServerPath string // options:vhost-server-path
	// Status is the status column: for dpdkvhostuserclient "mode" (client)
	// and "status" (connected or disconnected), and while connected also
	// "socket", "num_of_vrings" and the like.
	Status map[string]string
	// Statistics is the statistics column, refreshed by ovs-vswitchd every
	// other_config:stats-update-interval (5 s by default).
	Statistics map[string]int
}

// Keys of Interface.status that OVS reports for vhost-user ports.
const (
	StatusMode       = "mode"
	StatusConnection = "status"
	StatusVrings     = "num_of_vrings"
	// ConnectionUp is the "status" value of a vhost-user port whose guest
	// side is connected.
	ConnectionUp = "connected"
)

// Connected tells whether the vhost-user connection to QEMU is up.
func (i Interface) Connected() bool { return i.Status[StatusConnection] == ConnectionUp }

// Queues is the number of queue pairs the guest negotiated (one receive and
// one transmit virtqueue each); ok is false while OVS reports none (the
// port is not connected).
func (i Interface) Queues() (n int, ok bool) {
	v, err := strconv.Atoi(i.Status[StatusVrings])
	if err != nil || v <= 0 {
		return 0, false
	}
	return (v + 1) / 2, true
}

// Health is how the monitor itself is doing.
type Health struct {
	// Connected tells whether the monitor holds a live OVSDB connection
	// whose initial state has been read.
	Connected bool
	// LastUpdate is when the port snapshot was last rebuilt from an OVSDB
	// update (zero before the first).
	LastUpdate time.Time
	// Connects counts established monitor sessions.
	Connects uint64
	// Errors counts failures by kind.
	Errors Errors
}

// Errors counts the monitor's failures.
type Errors struct {
	Connect        uint64 // connecting to ovsdb-server failed
	Monitor        uint64 // the monitor request failed (schema mismatch, refused)
	ConnectionLost uint64 // an established connection broke
}
