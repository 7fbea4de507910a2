package ovsdb

// The model structs below are written by hand and carry only the columns this
// plugin reads (the ovsdb tags name them). Transactions are built as raw RFC
// 7047 operations, so the client needs no schema, monitor or cache: a plugin
// run is one short connection, and ovsdb-server checks every operation
// against its schema.

// OpenvSwitch is the root row of the Open_vSwitch table.
type OpenvSwitch struct {
	UUID            string   `ovsdb:"_uuid"`
	Bridges         []string `ovsdb:"bridges"`
	IfaceTypes      []string `ovsdb:"iface_types"`
	DPDKInitialized bool     `ovsdb:"dpdk_initialized"`
}

// Bridge is a row of the Bridge table.
type Bridge struct {
	UUID         string            `ovsdb:"_uuid"`
	Name         string            `ovsdb:"name"`
	Ports        []string          `ovsdb:"ports"`
	DatapathType string            `ovsdb:"datapath_type"`
	ExternalIDs  map[string]string `ovsdb:"external_ids"`
}

// Port is a row of the Port table.
type Port struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	Tag         *int              `ovsdb:"tag"`
	Trunks      []int             `ovsdb:"trunks"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// Interface is a row of the Interface table.
type Interface struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Type        string            `ovsdb:"type"`
	Options     map[string]string `ovsdb:"options"`
	MTURequest  *int              `ovsdb:"mtu_request"`
	Ofport      *int              `ovsdb:"ofport"`
	Error       *string           `ovsdb:"error"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

const (
	tableOpenvSwitch = "Open_vSwitch"
	tableBridge      = "Bridge"
	tablePort        = "Port"
	tableInterface   = "Interface"
)
