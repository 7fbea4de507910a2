package ovsstate

import (
	"cmp"
	"slices"

	"github.com/ovn-org/libovsdb/model"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

// The libovsdb models of the two tables monitored, with only the columns
// the agent reads: libovsdb checks them against the server's schema on
// connect, and the monitor asks for these columns alone.

const (
	database       = "Open_vSwitch"
	tablePort      = "Port"
	tableInterface = "Interface"

	// optionServerPath is the Interface option naming QEMU's socket.
	optionServerPath = "vhost-server-path"
)

// portRow is a row of the Port table.
type portRow struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// interfaceRow is a row of the Interface table.
type interfaceRow struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Type        string            `ovsdb:"type"`
	Options     map[string]string `ovsdb:"options"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
	LinkState   *string           `ovsdb:"link_state"`
	AdminState  *string           `ovsdb:"admin_state"`
	MTU         *int              `ovsdb:"mtu"`
	Error       *string           `ovsdb:"error"`
	Status      map[string]string `ovsdb:"status"`
	Statistics  map[string]int    `ovsdb:"statistics"`
}

// clientModel is the database model the monitor's client uses.
func clientModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel(database, map[string]model.Model{
		tablePort:      &portRow{},
		tableInterface: &interfaceRow{},
	})
}

// ours tells whether external_ids carry the plugin's owner mark. The
// monitor's condition already asks the server for such rows only; this
// keeps a row that lost its mark in an update out all the same.
func ours(ids map[string]string) bool { return ids[ovsdb.KeyOwner] == ovsdb.Owner }

// buildPorts joins the cached rows into the ports of ours, sorted by name.
// A port whose Interface row is not cached (yet: the two tables of one
// transaction reach the cache one after the other) is left out; the update
// that brings the row rebuilds the state again.
func buildPorts(ports map[string]*portRow, ifaces map[string]*interfaceRow) []Port {
	out := make([]Port, 0, len(ports))
	for _, p := range ports {
		if !ours(p.ExternalIDs) {
			continue
		}
		for _, uuid := range p.Interfaces {
			i, ok := ifaces[uuid]
			if !ok || !ours(i.ExternalIDs) {
				continue
			}
			out = append(out, newPort(p, i))
			break // ours have one interface per port
		}
	}
	slices.SortFunc(out, func(a, b Port) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func newPort(p *portRow, i *interfaceRow) Port {
	ids := p.ExternalIDs
	return Port{
		Name:        p.Name,
		Namespace:   ids[ovsdb.KeyNamespace],
		Pod:         ids[ovsdb.KeyPodName],
		PodUID:      ids[ovsdb.KeyPodUID],
		ContainerID: ids[ovsdb.KeyContainerID],
		IfName:      ids[ovsdb.KeyIfName],
		Network:     ids[ovsdb.KeyNetwork],
		Interface: Interface{
			Type:       i.Type,
			LinkState:  deref(i.LinkState),
			AdminState: deref(i.AdminState),
			MTU:        deref(i.MTU),
			Error:      deref(i.Error),
			ServerPath: i.Options[optionServerPath],
			Status:     i.Status,
			Statistics: i.Statistics,
		},
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
