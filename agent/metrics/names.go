package metrics

import "strings"

// Labels of every port series: the node; the VMI name and VMI network name
// (name and interface, as on KubeVirt's kubevirt_vmi_network_* series, empty
// for a pod that is not a VMI's or not known yet); the pod and its interface
// as the plugin marked them at ADD; and the OVS port, which keeps two ports
// of one pod interface (a stale one beside a new one) apart.
var portLabels = []string{"node", "namespace", "name", "interface", "pod", "pod_interface", "network", "port"}

// infoLabels follow portLabels on vhostuser_port_info.
var infoLabels = []string{"type", "mode", "socket"}

// Label of vhostuser_port_ovs_drops_total and of
// vhostuser_agent_ovsdb_errors_total beside the port labels.
const (
	labelReason = "reason"
	labelKind   = "kind"
)

// family is one metric family the Writer renders: its name, HELP text and
// type, and its HELP and TYPE lines, rendered once.
type family struct {
	name, help string
	counter    bool
	header     string
}

func newFamily(name, help string, counter bool) *family {
	typ := "gauge"
	if counter {
		typ = "counter"
	}
	// The text format escapes backslash and newline in HELP.
	h := strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)
	return &family{name: name, help: help, counter: counter,
		header: "# HELP " + name + " " + h + "\n# TYPE " + name + " " + typ + "\n"}
}

func gauge(name, help string) *family   { return newFamily(name, help, false) }
func counter(name, help string) *family { return newFamily(name, help, true) }

// trafficStat maps a counter of OVS Interface statistics onto a series.
// OVS counts from the switch's side of the port; the series count from the
// guest's, as KubeVirt's kubevirt_vmi_network_* do (and libvirt, which
// swaps them for vhost-user interfaces): what OVS transmits, the VM
// receives.
type trafficStat struct {
	key string
	fam *family
}

func traffic(key, name, help string) trafficStat {
	return trafficStat{key, counter(name, help)}
}

// TrafficSeries are the names of the per-VM traffic counters, the series
// the recording rules (manifests/components/recording-rules) map onto
// KubeVirt's kubevirt_vmi_network_* names.
func TrafficSeries() []string {
	out := make([]string, len(trafficStats))
	for i, s := range trafficStats {
		out[i] = s.fam.name
	}
	return out
}

var trafficStats = []trafficStat{
	traffic("tx_bytes", "vhostuser_vmi_network_receive_bytes_total",
		"Bytes the VM received on this interface (OVS Interface statistics tx_bytes)."),
	traffic("rx_bytes", "vhostuser_vmi_network_transmit_bytes_total",
		"Bytes the VM transmitted on this interface (OVS Interface statistics rx_bytes)."),
	traffic("tx_packets", "vhostuser_vmi_network_receive_packets_total",
		"Packets the VM received on this interface (OVS tx_packets)."),
	traffic("rx_packets", "vhostuser_vmi_network_transmit_packets_total",
		"Packets the VM transmitted on this interface (OVS rx_packets)."),
	traffic("tx_dropped", "vhostuser_vmi_network_receive_packets_dropped_total",
		"Packets for the VM that OVS dropped, mostly because the guest's receive queue was full (OVS tx_dropped)."),
	traffic("rx_dropped", "vhostuser_vmi_network_transmit_packets_dropped_total",
		"Packets from the VM that OVS dropped (OVS rx_dropped)."),
	traffic("tx_errors", "vhostuser_vmi_network_receive_errors_total",
		"Errors delivering packets to the VM (OVS tx_errors)."),
	traffic("rx_errors", "vhostuser_vmi_network_transmit_errors_total",
		"Errors receiving packets from the VM (OVS rx_errors)."),
}

// statTxRetries counts OVS's retries of a transmit to a full guest queue.
const statTxRetries = "ovs_tx_retries"

// The port families; all carry portLabels, vhostuser_port_info also
// infoLabels and vhostuser_port_ovs_drops_total also reason.
var (
	famInfo = gauge("vhostuser_port_info",
		"A port of ours in OVS; always 1. type: the OVS interface type; mode: vhost-user client or server (as OVS reports it); socket: options:vhost-server-path.")
	famLinkUp = gauge("vhostuser_port_link_up",
		"1 when OVS reports the interface's link_state up, else 0.")
	famConnectedVhost = gauge("vhostuser_port_vhost_connected",
		"1 when the vhost-user connection to QEMU is established (Interface status:status=connected), else 0.")
	famError = gauge("vhostuser_port_error",
		"1 when OVS reports an error for the interface (its error column is set), else 0.")
	famMTU = gauge("vhostuser_port_mtu_bytes",
		"The interface MTU OVS reports; absent while OVS reports none.")
	famQueues = gauge("vhostuser_port_queues",
		"Queue pairs the guest negotiated (Interface status num_of_vrings / 2); absent while not connected.")
	famOVSDrops = counter("vhostuser_port_ovs_drops_total",
		"Packets OVS dropped on this port for its own reasons (statistics ovs_<reason>_drops; tx: towards the VM).")
	famTxRetries = counter("vhostuser_port_ovs_tx_retries_total",
		"Retries of transmits towards the VM whose queue was full (statistics ovs_tx_retries).")
)

// The agent's own health; vhostuser_agent_ovsdb_errors_total carries kind,
// the others no label.
var (
	famConnected = gauge("vhostuser_agent_ovsdb_connected",
		"1 while the agent's OVSDB monitor is connected and its initial state read, else 0.")
	famLastUpdate = gauge("vhostuser_agent_ovsdb_last_update_timestamp_seconds",
		"When the agent last rebuilt its port state from an OVSDB update (Unix time).")
	famConnects = counter("vhostuser_agent_ovsdb_connects_total",
		"OVSDB monitor sessions established.")
	famErrors = counter("vhostuser_agent_ovsdb_errors_total",
		"OVSDB monitor failures by kind: connect, monitor (the request was refused), connection_lost.")
	famAPISynced = gauge("vhostuser_agent_api_synced",
		"1 once the agent's cache of this node's pods is synced with the Kubernetes API, else 0; absent when the agent runs without the API.")
	famPorts = gauge("vhostuser_agent_ports",
		"Ports of ours in the agent's state (the last known while disconnected).")
)

// Values of the kind label of vhostuser_agent_ovsdb_errors_total.
const (
	errorConnect = "connect"
	errorMonitor = "monitor"
	errorLost    = "connection_lost"
)

// allFamilies are the families a Writer renders, by name.
var allFamilies = func() map[string]*family {
	m := map[string]*family{}
	for _, f := range []*family{famInfo, famLinkUp, famConnectedVhost, famError, famMTU, famQueues,
		famOVSDrops, famTxRetries, famConnected, famLastUpdate, famConnects, famErrors, famPorts, famAPISynced} {
		m[f.name] = f
	}
	for _, s := range trafficStats {
		m[s.fam.name] = s.fam
	}
	return m
}()
