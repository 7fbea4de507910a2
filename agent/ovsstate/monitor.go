package ovsstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	lovsdb "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
)

// Monitor keeps a State in line with OVSDB.
type Monitor struct {
	// Endpoint is ovsdb-server's address ("unix:/path" or "tcp:host:port").
	Endpoint string
	// State receives the ports and the health.
	State *State
	Log   *slog.Logger
	// Backoff bounds the wait between connection attempts (defaults
	// 500 ms doubling to 30 s, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// Probe is how often a quiet connection is checked with an echo
	// (default 10 s): libovsdb reports a broken connection only to a
	// listener that waits at that very moment, and a unix socket gets no
	// inactivity probe from the server.
	Probe time.Duration
	// ConnectTimeout bounds connect plus the initial monitor reply
	// (default 30 s).
	ConnectTimeout time.Duration
}

func (m *Monitor) withDefaults() Monitor {
	c := *m
	if c.MinBackoff == 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Probe == 0 {
		c.Probe = 10 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Run connects, monitors and reconnects until ctx ends; it returns nil
// then, or an error that retrying cannot fix (a bad client model).
func (m *Monitor) Run(ctx context.Context) error {
	c := m.withDefaults()
	if _, err := clientModel(); err != nil {
		return fmt.Errorf("ovsstate: client model: %w", err)
	}
	wait := c.MinBackoff
	for ctx.Err() == nil {
		started := time.Now()
		err := c.session(ctx)
		c.State.setConnected(false)
		if ctx.Err() != nil {
			break
		}
		if time.Since(started) > c.MaxBackoff {
			wait = c.MinBackoff // the connection was up a while: retry soon
		}
		c.Log.Warn("OVSDB monitor down; retrying", "endpoint", c.Endpoint, "error", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
		case <-time.After(jitter(wait)):
		}
		wait = min(2*wait, c.MaxBackoff)
	}
	return nil
}

// session is one connection: connect, monitor, keep the state current
// until the connection breaks or ctx ends. It always returns an error
// saying why the session ended.
func (c *Monitor) session(ctx context.Context) error {
	dbModel, _ := clientModel()
	lg := logr.FromSlogHandler(c.Log.Handler()).WithName("libovsdb")
	cl, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(c.Endpoint), client.WithLogger(&lg))
	if err != nil {
		c.State.errConnect.Add(1)
		return fmt.Errorf("new OVSDB client: %w", err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	if err := cl.Connect(cctx); err != nil {
		c.State.errConnect.Add(1)
		return fmt.Errorf("connect to OVSDB at %s: %w", c.Endpoint, err)
	}
	// Every cache change only marks the state dirty: the rebuild reads the
	// cache as it is then, so a burst of updates (statistics of every
	// port, each stats-update-interval) costs one rebuild.
	dirty := make(chan struct{}, 1)
	mark := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	cl.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { mark() },
		UpdateFunc: func(string, model.Model, model.Model) { mark() },
		DeleteFunc: func(string, model.Model) { mark() },
	})
	if _, err := cl.Monitor(cctx, newMonitor(cl)); err != nil {
		c.State.errMonitor.Add(1)
		return fmt.Errorf("monitor OVSDB at %s: %w", c.Endpoint, err)
	}
	cancel()
	// The monitor reply is in the cache: this snapshot replaces the one of
	// any earlier session whole.
	if err := c.rebuild(cl); err != nil {
		c.State.errLost.Add(1)
		return err
	}
	c.State.setConnected(true)
	c.Log.Info("OVSDB monitor up", "endpoint", c.Endpoint, "ports", len(c.State.Ports()))
	probe := time.NewTicker(c.Probe)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cl.DisconnectNotify():
			c.State.errLost.Add(1)
			return errors.New("OVSDB connection lost")
		case <-dirty:
			if err := c.rebuild(cl); err != nil {
				c.State.errLost.Add(1)
				return err
			}
		case <-probe.C:
			pctx, pcancel := context.WithTimeout(ctx, c.Probe)
			err := cl.Echo(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				c.State.errLost.Add(1)
				return fmt.Errorf("OVSDB echo: %w", err)
			}
		}
	}
}

// newMonitor asks for our rows of both tables, and only the columns read.
func newMonitor(cl client.Client) *client.Monitor {
	mark := map[string]string{ovsdb.KeyOwner: ovsdb.Owner}
	p := &portRow{}
	i := &interfaceRow{}
	return cl.NewMonitor(
		client.WithConditionalTable(p,
			[]model.Condition{{Field: &p.ExternalIDs, Function: lovsdb.ConditionIncludes, Value: mark}},
			&p.Name, &p.Interfaces, &p.ExternalIDs),
		client.WithConditionalTable(i,
			[]model.Condition{{Field: &i.ExternalIDs, Function: lovsdb.ConditionIncludes, Value: mark}},
			&i.Name, &i.Type, &i.Options, &i.ExternalIDs, &i.LinkState, &i.AdminState, &i.MTU, &i.Error,
			&i.Status, &i.Statistics),
	)
}

// rebuild publishes the ports in the client's cache.
func (c *Monitor) rebuild(cl client.Client) error {
	tc := cl.Cache()
	if tc == nil {
		return errors.New("OVSDB connection lost (cache dropped)")
	}
	pt, it := tc.Table(tablePort), tc.Table(tableInterface)
	if pt == nil || it == nil {
		return errors.New("OVSDB cache has no Port or Interface table")
	}
	ports := make(map[string]*portRow, pt.Len())
	for uuid, r := range pt.RowsShallow() {
		if p, ok := r.(*portRow); ok {
			ports[uuid] = p
		}
	}
	ifaces := make(map[string]*interfaceRow, it.Len())
	for uuid, r := range it.RowsShallow() {
		if i, ok := r.(*interfaceRow); ok {
			ifaces[uuid] = i
		}
	}
	c.State.replace(buildPorts(ports, ifaces), time.Now())
	return nil
}

// jitter draws from [d/2, d], so that retries never run in lockstep with
// whatever else restarts with ovsdb-server.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
