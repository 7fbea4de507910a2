package metrics

import "github.com/prometheus/client_golang/prometheus"

// Labels of every port series: the node; the VMI name and VMI network name
// (name and interface, as on KubeVirt's kubevirt_vmi_network_* series, empty
// for a pod that is not a VMI's or not known yet); the pod and its interface
// as the plugin marked them at ADD; and the OVS port, which keeps two ports
// of one pod interface (a stale one beside a new one) apart.
var portLabels = []string{"node", "namespace", "name", "interface", "pod", "pod_interface", "network", "port"}

// infoLabels follow portLabels on vhostuser_port_info.
var infoLabels = []string{"type", "mode", "socket"}

// trafficStat maps a counter of OVS Interface statistics onto a series.
// OVS counts from the switch's side of the port; the series count from the
// guest's, as KubeVirt's kubevirt_vmi_network_* do (and libvirt, which
// swaps them for vhost-user interfaces): what OVS transmits, the VM
// receives.
type trafficStat struct {
	key  string
	name string
	desc *prometheus.Desc
}

func traffic(key, name, help string) trafficStat {
	return trafficStat{key, name, portDesc(name, help)}
}

// TrafficSeries are the names of the per-VM traffic counters, the series
// the recording rules (manifests/components/recording-rules) map onto
// KubeVirt's kubevirt_vmi_network_* names.
func TrafficSeries() []string {
	out := make([]string, len(trafficStats))
	for i, s := range trafficStats {
		out[i] = s.name
	}
	return out
}

func portDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string(nil), portLabels...), extra...), nil)
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

var (
	descInfo = portDesc("vhostuser_port_info",
		"A port of ours in OVS; always 1. type: the OVS interface type; mode: vhost-user client or server (as OVS reports it); socket: options:vhost-server-path.",
		infoLabels...)
	descLinkUp = portDesc("vhostuser_port_link_up",
		"1 when OVS reports the interface's link_state up, else 0.")
	descConnectedVhost = portDesc("vhostuser_port_vhost_connected",
		"1 when the vhost-user connection to QEMU is established (Interface status:status=connected), else 0.")
	descError = portDesc("vhostuser_port_error",
		"1 when OVS reports an error for the interface (its error column is set), else 0.")
	descMTU = portDesc("vhostuser_port_mtu_bytes",
		"The interface MTU OVS reports; absent while OVS reports none.")
	descQueues = portDesc("vhostuser_port_queues",
		"Queue pairs the guest negotiated (Interface status num_of_vrings / 2); absent while not connected.")
	descOVSDrops = portDesc("vhostuser_port_ovs_drops_total",
		"Packets OVS dropped on this port for its own reasons (statistics ovs_<reason>_drops; tx: towards the VM).",
		"reason")
	descTxRetries = portDesc("vhostuser_port_ovs_tx_retries_total",
		"Retries of transmits towards the VM whose queue was full (statistics ovs_tx_retries).")
)

// The agent's own health.
var (
	descConnected = prometheus.NewDesc("vhostuser_agent_ovsdb_connected",
		"1 while the agent's OVSDB monitor is connected and its initial state read, else 0.", nil, nil)
	descLastUpdate = prometheus.NewDesc("vhostuser_agent_ovsdb_last_update_timestamp_seconds",
		"When the agent last rebuilt its port state from an OVSDB update (Unix time).", nil, nil)
	descConnects = prometheus.NewDesc("vhostuser_agent_ovsdb_connects_total",
		"OVSDB monitor sessions established.", nil, nil)
	descErrors = prometheus.NewDesc("vhostuser_agent_ovsdb_errors_total",
		"OVSDB monitor failures by kind: connect, monitor (the request was refused), connection_lost.",
		[]string{"kind"}, nil)
	descAPISynced = prometheus.NewDesc("vhostuser_agent_api_synced",
		"1 once the agent's cache of this node's pods is synced with the Kubernetes API, else 0; absent when the agent runs without the API.", nil, nil)
	descPorts = prometheus.NewDesc("vhostuser_agent_ports",
		"Ports of ours in the agent's state (the last known while disconnected).", nil, nil)
)

// Values of the kind label of vhostuser_agent_ovsdb_errors_total.
const (
	errorConnect = "connect"
	errorMonitor = "monitor"
	errorLost    = "connection_lost"
)

var allDescs = func() []*prometheus.Desc {
	d := []*prometheus.Desc{descInfo, descLinkUp, descConnectedVhost, descError, descMTU, descQueues,
		descOVSDrops, descTxRetries, descConnected, descLastUpdate, descConnects, descErrors, descPorts, descAPISynced}
	for _, s := range trafficStats {
		d = append(d, s.desc)
	}
	return d
}()
