package ovsenv

import (
	"context"
	"path/filepath"
)

// StartDB starts ovsdb-server on the existing database.
func (o *OVS) StartDB(ctx context.Context) error {
	if o.Pid("ovsdb-server") != 0 {
		return nil
	}
	_, err := o.run(ctx, "ovsdb-server", filepath.Join(o.Dir, "conf.db"),
		"--remote=punix:"+o.DBSocket, "--pidfile="+o.pidfile("ovsdb-server"),
		"--unixctl="+o.ctl("ovsdb-server"), "--log-file="+o.LogFile("ovsdb-server"), "--detach")
	if err != nil {
		return err
	}
	return o.waitFor(ctx, "ovsdb-server", func() bool {
		_, err := o.Vsctl(ctx, "--no-wait", "show")
		return err == nil
	})
}

// StopDB stops ovsdb-server, simulating an OVSDB outage. The database file
// stays, so StartDB brings back the same state.
func (o *OVS) StopDB(ctx context.Context) error {
	return o.stopDaemon(ctx, "ovsdb-server", "exit")
}
