package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcherpod"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
)

// waitRunning syncs each VMI through virt-launcher's cmd-client, as
// virt-handler does, and waits for its Running domain event.
func (c *chain) waitRunning(ctx context.Context) error {
	for _, g := range c.guests {
		if err := g.launcher.Sync(); err != nil {
			return fmt.Errorf("%w\n%s", err, tails(c.work, g.rep.Name))
		}
		c.log.Info("SyncVirtualMachine returned", "vmi", g.rep.Name)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, g := range c.guests {
		e, err := c.handler.WaitFor(rctx, g.rep.Name, 0, func(e launcherpod.DomainEvent) bool { return e.Status == api.Running })
		if err != nil {
			return fmt.Errorf("%w\n%s", err, tails(c.work, g.rep.Name))
		}
		c.log.Info("domain event", "vmi", g.rep.Name, "type", e.Type, "status", e.Status, "reason", e.Reason)
	}
	return nil
}

func (c *chain) checkSockets(context.Context) error {
	for _, g := range c.guests {
		if err := checkQEMUSocket(g); err != nil {
			return err
		}
		c.log.Info("QEMU listens on the compute-view path", "vmi", g.rep.Name, "qemuPid", g.qemuPid,
			"path", g.paths.ComputeSocket, "ovsConnectsVia", g.paths.OVSSocket)
	}
	return nil
}

func (c *chain) waitPortsConnected(ctx context.Context) error {
	return waitConnected(ctx, c.ovs, c.guests, 2*time.Minute, c.log)
}

// ping waits for each guest's first ping of the other, then takes the
// median RTT of the next pingSamples.
func (c *chain) ping(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, c.cfg.BootTimeout)
	defer cancel()
	for _, g := range c.guests {
		line, err := g.console.WaitFor(bctx, 0, guest.MarkerPingOK)
		if err != nil {
			return fmt.Errorf("%s: %w\nconsole:\n%s\nOVS log:\n%s", g.rep.Name, err, g.console.Tail(15), c.ovs.LogTail("ovs-vswitchd", 10))
		}
		g.rep.FirstPing = line
		if g.rep.FirstRTT, err = guest.RTT(line); err != nil {
			return err
		}
		c.log.Info("ping", "from", g.rep.Name, "line", line)
	}
	// The guests ping once a second: a few more give a steady RTT.
	for _, g := range c.guests {
		lines, err := g.console.Collect(bctx, 0, guest.MarkerPingOK, pingSamples+1)
		if err != nil {
			return fmt.Errorf("%s: %w", g.rep.Name, err)
		}
		if g.rep.RTT, err = guest.MedianRTT(lines[1:]); err != nil {
			return err
		}
		c.log.Info("ping RTT", "from", g.rep.Name, "median", g.rep.RTT, "samples", pingSamples)
	}
	return nil
}

// restartVswitchd restarts ovs-vswitchd under the running guests and waits
// for their pings to resume and their ports to reconnect.
func (c *chain) restartVswitchd(ctx context.Context) error {
	logOffset := fileSize(c.ovs.LogFile("ovs-vswitchd"))
	start := time.Now()
	if err := c.ovs.RestartVswitchd(ctx); err != nil {
		return err
	}
	// Only pings printed after ovs-vswitchd is back count, and several
	// of them, so a reply that arrived just before the stop cannot pass.
	offsets := make([]int64, len(c.guests))
	for i, g := range c.guests {
		offsets[i] = g.console.Offset()
	}
	c.log.Info("ovs-vswitchd restarted", "took", time.Since(start).Round(time.Millisecond))
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i, g := range c.guests {
		lines, err := g.console.Collect(rctx, offsets[i], guest.MarkerPingOK, 3)
		if err != nil {
			return fmt.Errorf("%s: %w\nOVS log:\n%s", g.rep.Name, err, c.ovs.LogTail("ovs-vswitchd", 15))
		}
		g.rep.PingAfterRestart = lines[0]
		c.log.Info("ping after restart", "from", g.rep.Name, "line", lines[0])
	}
	c.res.ResumedAfter = time.Since(start)
	var err error
	c.res.StaleStatus, err = waitReconnected(ctx, c.ovs, c.guests, logOffset, c.log)
	return err
}

// checkEveryDefine checks, after one more sync, that every domain define
// virt-launcher made through the hooks carried our interface.
func (c *chain) checkEveryDefine(context.Context) error {
	for _, g := range c.guests {
		// virt-handler syncs again on every VMI update: one more here.
		if err := g.launcher.Sync(); err != nil {
			return err
		}
		n, err := checkDefines(filepath.Join(c.work, g.rep.Name+"-"+launcherpod.TestOnlySidecar+".log"), g.paths.ComputeSocket)
		if err != nil {
			return fmt.Errorf("%s: %w", g.rep.Name, err)
		}
		g.rep.Defines = n
		c.log.Info("every define carried our interface", "vmi", g.rep.Name, "defines", n, "path", g.paths.ComputeSocket)
	}
	return nil
}

func waitConnected(ctx context.Context, ovs *ovsenv.OVS, guests []*guestRun, timeout time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(timeout)
	for _, g := range guests {
		status, ok, err := pollConnected(ctx, ovs, g.rep.Port, deadline, log)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !ok {
			return fmt.Errorf("port %s not connected after %s: status %s %v\nOVS log:\n%s", g.rep.Port, timeout, status, err, ovs.LogTail("ovs-vswitchd", 15))
		}
	}
	return nil
}

// pollConnected reads the port's OVSDB status every 500 ms until it says
// connected (ok) or deadline passes; then it returns the last status read
// and the error of that read.
func pollConnected(ctx context.Context, ovs *ovsenv.OVS, port string, deadline time.Time, log *slog.Logger) (status string, ok bool, err error) {
	for {
		out, err := ovs.Vsctl(ctx, "get", "Interface", port, "status")
		status = strings.TrimSpace(out)
		if err == nil && strings.Contains(out, "status=connected") {
			log.Info("OVS port connected", "port", port, "status", status)
			return status, true, nil
		}
		if time.Now().After(deadline) {
			return status, false, err
		}
		select {
		case <-ctx.Done():
			return status, false, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
