package ovsdb

import (
	"encoding/json"
	"reflect"
	"testing"

	lovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

func TestRowDecoding(t *testing.T) {
	var row lovsdb.Row
	raw := `{"_uuid":["uuid","2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],"name":"vhu1",
		"interfaces":["uuid","3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"],
		"tag":["set",[]],"trunks":["set",[10,20]],"ofport":5,"error":["set",["boom"]],
		"external_ids":["map",[["k","v"]]]}`
	if err := json.Unmarshal([]byte(raw), &row); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"uuid", uuidOf(row["_uuid"]), "2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"},
		{"single-element set", uuids(row["interfaces"]), []string{"3d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"}},
		{"string", str(row["name"]), "vhu1"},
		{"map", strMap(row["external_ids"]), map[string]string{"k": "v"}},
		{"missing map", strMap(row["nothing"]), map[string]string{}},
		{"set len", len(setOf(row["trunks"])), 2},
		{"empty optional", func() bool { _, ok := optInt(row["tag"]); return ok }(), false},
		{"atom int", func() int { v, _ := optInt(row["ofport"]); return v }(), 5},
		{"error column", setOf(row["error"]), []interface{}{"boom"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	ports := portsFromRows([]lovsdb.Row{row})
	if len(ports) != 1 || ports[0].Tag != nil || !reflect.DeepEqual(ports[0].Trunks, []int{10, 20}) || ports[0].Name != "vhu1" {
		t.Fatalf("portsFromRows: %+v", ports)
	}
}

func TestValueEncoding(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"map", ovsMap(map[string]string{"k": "v"}), `["map",[["k","v"]]]`},
		{"empty map", ovsMap(nil), `["map",[]]`},
		{"named row", uuidSet("port"), `["named-uuid","port"]`},
		{"row by UUID", uuidSet("2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"), `["uuid","2d3c2a7b-6d4f-4d9c-8d2a-1c1e5f0b9a11"]`},
		{"two rows", uuidSet("port", "brport"), `["set",[["named-uuid","port"],["named-uuid","brport"]]]`},
		{"name condition", nameIs("br0"), `["name","==","br0"]`},
		{"every row", allRows(), `[["_uuid","!=",["uuid","00000000-0000-0000-0000-000000000000"]]]`},
	} {
		if got := wire(t, tt.v); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestInts(t *testing.T) {
	for _, tt := range []struct {
		name string
		raw  string
		want []int
	}{
		{"set", `["set",[10,20]]`, []int{10, 20}},
		{"atom", `7`, []int{7}},
		{"empty", `["set",[]]`, nil},
	} {
		var row lovsdb.Row
		if err := json.Unmarshal([]byte(`{"v":`+tt.raw+`}`), &row); err != nil {
			t.Fatal(err)
		}
		if got := ints(row["v"]); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
