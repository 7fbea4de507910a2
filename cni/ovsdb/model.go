package ovsdb

// The rows below carry only the columns this plugin reads. Transactions are
// built as raw RFC 7047 operations, so the client needs no schema, monitor or
// cache: a plugin run is one short connection, and ovsdb-server checks every
// operation against its schema.

// Bridge is a row of the Bridge table.
type Bridge struct {
	UUID         string
	Name         string
	Ports        []string
	DatapathType string
	ExternalIDs  map[string]string
}

// Port is a row of the Port table.
type Port struct {
	UUID        string
	Name        string
	Interfaces  []string
	Tag         *int
	Trunks      []int
	ExternalIDs map[string]string
}

// Interface is a row of the Interface table.
type Interface struct {
	UUID        string
	Name        string
	Type        string
	Options     map[string]string
	MTURequest  *int
	Error       *string
	ExternalIDs map[string]string
}

// Values of the schema the plugin's ports are made of.
const (
	InterfaceType   = "dpdkvhostuserclient"
	OptionServerPth = "vhost-server-path"
	// datapathNetdev is the userspace datapath DPDK ports need.
	datapathNetdev = "netdev"
)

// database is the one database the plugin uses.
const database = "Open_vSwitch"

const (
	tableOpenvSwitch = "Open_vSwitch"
	tableBridge      = "Bridge"
	tablePort        = "Port"
	tableInterface   = "Interface"
)
