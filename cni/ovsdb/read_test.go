package ovsdb

import (
	"encoding/json"
	"reflect"
	"testing"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

func TestRowsToModel(t *testing.T) {
	row := func(raw string) lovsdb.Row {
		var r lovsdb.Row
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	br := bridgeFromRow(row(`{"_uuid":["uuid","2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],"name":"br0","datapath_type":"netdev",
		"ports":["set",[["uuid","3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],["uuid","4d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"]]],
		"external_ids":["map",[["vhostuser.kubevirt.io/owner","vhostuser-cni"]]]}`))
	if want := (&Bridge{UUID: "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", Name: "br0", DatapathType: "netdev",
		Ports:       []string{"3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", "4d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"},
		ExternalIDs: map[string]string{KeyOwner: Owner}}); !reflect.DeepEqual(br, want) {
		t.Errorf("bridgeFromRow: %+v, want %+v", br, want)
	}

	mtu, boom := 9000, "boom"
	for _, tt := range []struct {
		name string
		raw  string
		want *Interface
	}{
		{"all columns", `{"_uuid":["uuid","2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],"name":"vhu0","type":"dpdkvhostuserclient",
			"options":["map",[["vhost-server-path","/p"]]],"mtu_request":9000,"error":"boom","external_ids":["map",[]]}`,
			&Interface{UUID: "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11", Name: "vhu0", Type: InterfaceType,
				Options: map[string]string{OptionServerPth: "/p"}, MTURequest: &mtu, Error: &boom, ExternalIDs: map[string]string{}}},
		{"optional columns empty", `{"name":"vhu0","mtu_request":["set",[]],"error":["set",[]]}`,
			&Interface{Name: "vhu0", Options: map[string]string{}, ExternalIDs: map[string]string{}}},
	} {
		if got := interfaceFromRow(row(tt.raw)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
