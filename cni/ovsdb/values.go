package ovsdb

import lovsdb "github.com/ovn-org/libovsdb/ovsdb"

// OVSDB values (RFC 7047 section 5.1) to the wire form and back, and the
// conditions built from them. The decoders take what libovsdb's Row
// unmarshalling yields: atoms, OvsSet, OvsMap, UUID, float64 for integers.

func ovsMap(m map[string]string) lovsdb.OvsMap {
	g := make(map[interface{}]interface{}, len(m))
	for k, v := range m {
		g[k] = v
	}
	return lovsdb.OvsMap{GoMap: g}
}

// uuidSet is a set of row references: UUIDs, or the uuid-names of rows
// inserted earlier in the same transaction.
func uuidSet(refs ...string) lovsdb.OvsSet {
	s := make([]interface{}, len(refs))
	for i, n := range refs {
		s[i] = lovsdb.UUID{GoUUID: n}
	}
	return lovsdb.OvsSet{GoSet: s}
}

// nameIs is the condition that selects the row named name.
func nameIs(name string) lovsdb.Condition {
	return lovsdb.NewCondition("name", lovsdb.ConditionEqual, name)
}

// allRows is a condition true for every row: RFC 7047 requires "where" on
// mutate, and an empty list would be dropped from the JSON.
func allRows() []lovsdb.Condition {
	return []lovsdb.Condition{lovsdb.NewCondition("_uuid", lovsdb.ConditionNotEqual,
		lovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"})}
}

// setOf normalises an OVSDB value that may be a set or a single atom.
func setOf(v interface{}) []interface{} {
	switch t := v.(type) {
	case nil:
		return nil
	case lovsdb.OvsSet:
		return t.GoSet
	default:
		return []interface{}{t}
	}
}

func uuids(v interface{}) []string {
	var out []string
	for _, e := range setOf(v) {
		if u := uuidOf(e); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func uuidOf(v interface{}) string {
	if u, ok := v.(lovsdb.UUID); ok {
		return u.GoUUID
	}
	return ""
}

func str(v interface{}) string {
	s, _ := v.(string)
	return s
}

// optInt decodes an optional integer (a set of zero or one).
func optInt(v interface{}) (int, bool) {
	s := setOf(v)
	if len(s) != 1 {
		return 0, false
	}
	f, ok := s[0].(float64)
	return int(f), ok
}

func ints(v interface{}) []int {
	var out []int
	for _, e := range setOf(v) {
		if f, ok := e.(float64); ok {
			out = append(out, int(f))
		}
	}
	return out
}

func strMap(v interface{}) map[string]string {
	m, ok := v.(lovsdb.OvsMap)
	if !ok {
		return map[string]string{}
	}
	out := make(map[string]string, len(m.GoMap))
	for k, val := range m.GoMap {
		ks, _ := k.(string)
		vs, _ := val.(string)
		out[ks] = vs
	}
	return out
}
