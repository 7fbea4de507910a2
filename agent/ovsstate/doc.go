// Package ovsstate keeps the node agent's view of the vhost-user ports of
// ours in OVSDB: an OVSDB monitor (libovsdb, monitor_cond) on the Port and
// Interface tables, restricted by a server-side condition to rows whose
// external_ids carry the plugin's owner mark, so memory is bounded by the
// number of our ports whatever else the switch holds.
//
// The monitor never polls: every update the server pushes marks the state
// dirty, and the state is then rebuilt from libovsdb's cache as one
// immutable snapshot that scrapes read without locks or copies. A lost
// connection (ovsdb-server restart) is retried with backoff on a fresh
// client, whose initial monitor reply replaces the snapshot whole, so a port
// deleted during the outage disappears too.
package ovsstate
