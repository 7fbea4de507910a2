package events

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubevirt-vhostuser/vhostuser/agent/ovsstate"
	"github.com/kubevirt-vhostuser/vhostuser/agent/pods"
)

// maxError bounds the OVS error text an event carries (an Event's message
// is meant to be short; the whole text is in OVSDB).
const maxError = 512

// describe names a port for a message: the VMI network (the name in the
// VM's spec) when known, the pod interface and the OVS port.
func describe(p *ovsstate.Port, vmi *pods.VMI) string {
	var b strings.Builder
	b.WriteString("vhost-user interface ")
	if vmi != nil {
		if n := vmi.Interfaces[p.IfName]; n != "" {
			fmt.Fprintf(&b, "%q (pod interface %s, ", n, p.IfName)
			fmt.Fprintf(&b, "OVS port %s)", p.Name)
			return b.String()
		}
	}
	fmt.Fprintf(&b, "%s (OVS port %s)", p.IfName, p.Name)
	return b.String()
}

// clip bounds an OVS error text, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxError {
		return s
	}
	cut := maxError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func seconds(d time.Duration) string { return d.Round(time.Second).String() }

func msgPortError(in, errText string) string {
	return fmt.Sprintf("OVS reports an error on %s: %s. Check ovs-vswitchd's log on this node and that the bridge is a DPDK (datapath_type=netdev) bridge of an OVS with DPDK initialised.", in, errText)
}

func msgPortErrorCleared(in string) string {
	return fmt.Sprintf("OVS no longer reports an error on %s.", in)
}

func msgConnected(in string, p *ovsstate.Port, after string, since time.Duration) string {
	q := ""
	if n, ok := p.Interface.Queues(); ok {
		q = fmt.Sprintf(" with %d queue pair(s)", n)
	}
	switch after {
	case ReasonNotConnected:
		return fmt.Sprintf("%s connected%s, %s after its port was added.", in, q, seconds(since))
	case ReasonDisconnected:
		return fmt.Sprintf("%s connected again%s.", in, q)
	}
	return fmt.Sprintf("%s connected%s: QEMU serves the socket and OVS-DPDK reached it.", in, q)
}

func msgNotConnected(in string, p *ovsstate.Port, since time.Duration) string {
	return fmt.Sprintf("%s is not connected %s after its port was added: nothing serves the socket OVS dials (%s). "+
		"Check that the VMI's interface uses the vhostuser binding (its hook sidecar makes QEMU serve that socket), "+
		"the hook sidecar's log, and the port's status (ovs-vsctl get Interface %s status).",
		in, seconds(since), p.Interface.ServerPath, p.Name)
}

func msgDisconnected(in string, p *ovsstate.Port, since time.Duration) string {
	return fmt.Sprintf("%s lost its vhost-user connection %s ago while the VM runs: QEMU closed the socket, "+
		"or ovs-vswitchd restarted and cannot reach it. The guest has no traffic on it. Check ovs-vswitchd's log on this node "+
		"and the port's status (ovs-vsctl get Interface %s status).", in, seconds(since), p.Name)
}
