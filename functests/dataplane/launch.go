package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/functests/launcherpod"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"
)

// KubeVirtVersion is the kubevirt.io/kubevirt version of go.mod, whose
// virt-launcher the chain runs.
const KubeVirtVersion = "v1.8.4"

// checkQEMUSocket checks that the pod's QEMU runs as 107:107 without
// /dev/kvm in its view, and reads, from the host, which unix socket paths it
// listens on (/proc/<pid>/net/unix of its network namespace) and what
// its command line says: both must name exactly the compute-view path our
// sidecar wrote, and OVS's short link must lead to the same socket file.
func checkQEMUSocket(g *guestRun) error {
	pid, err := g.launcher.QEMUPid()
	if err != nil {
		return err
	}
	g.qemuPid = pid
	// QEMU runs as KubeVirt's qemu user and group, in a view without /dev/kvm.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	for _, want := range []string{"\nUid:\t107\t107\t107\t107\n", "\nGid:\t107\t107\t107\t107\n"} {
		if !strings.Contains(string(status), want) {
			return fmt.Errorf("%s: QEMU (pid %d) does not run as 107:107:\n%s", g.rep.Name, pid, status)
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/dev/kvm", pid)); !os.IsNotExist(err) {
		return fmt.Errorf("%s: /dev/kvm is visible to QEMU (pid %d): %v", g.rep.Name, pid, err)
	}
	unix, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/unix", pid))
	if err != nil {
		return err
	}
	var listening bool
	for _, line := range strings.Split(string(unix), "\n") {
		f := strings.Fields(line)
		// Num RefCount Protocol Flags Type St Inode Path; flag 00010000 = listening.
		if len(f) == 8 && f[7] == g.paths.ComputeSocket && f[3] == "00010000" {
			listening = true
		}
	}
	if !listening {
		return fmt.Errorf("%s: QEMU (pid %d) has no listening socket %s in /proc/%d/net/unix", g.rep.Name, pid, g.paths.ComputeSocket, pid)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return err
	}
	if !strings.Contains(string(cmdline), `"path":"`+g.paths.ComputeSocket+`"`) && !strings.Contains(string(cmdline), "path="+g.paths.ComputeSocket) {
		return fmt.Errorf("%s: QEMU's command line does not name %s:\n%s", g.rep.Name, g.paths.ComputeSocket, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	a, err := os.Stat(g.paths.HostSocket)
	if err != nil {
		return fmt.Errorf("%s: socket in the pod volume: %w", g.rep.Name, err)
	}
	b, err := os.Stat(g.paths.OVSSocket)
	if err != nil {
		return fmt.Errorf("%s: socket through the short link: %w", g.rep.Name, err)
	}
	if a.Mode()&os.ModeSocket == 0 || !os.SameFile(a, b) {
		return fmt.Errorf("%s: %s (%v) and %s are not the same socket", g.rep.Name, g.paths.HostSocket, a.Mode(), g.paths.OVSSocket)
	}
	return nil
}

// checkDefines reads the test-only hook's log lines (it runs after our
// sidecar on every define virt-launcher makes): every define must have
// carried exactly our interface with the compute-view path, in server mode,
// and virt-launcher must have defined more than once (it re-parses the
// domain into its own schema between defines). The hook logs a define's
// interfaces before its "define with" line, so interface lines after the
// last "define with" are a define still in progress: checked, not counted.
func checkDefines(logFile, computeSocket string) (int, error) {
	f, err := os.Open(logFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	defines, pending := 0, 0 // pending: interface lines of the define being logged
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.Contains(l, "test-only-msix-vectors0: define with "):
			defines++
			if !strings.Contains(l, "define with 1 vhostuser interfaces") || pending != 1 {
				return defines, fmt.Errorf("define %d (%d interface lines): %s", defines, pending, l)
			}
			pending = 0
		case strings.Contains(l, "test-only-msix-vectors0: vhostuser "):
			pending++
			if !strings.Contains(l, "path="+computeSocket+" ") || !strings.Contains(l, "mode=server") {
				return defines, fmt.Errorf("define %d carried %s, want path=%s mode=server", defines+1, l, computeSocket)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return defines, err
	}
	if defines < 2 {
		return defines, fmt.Errorf("%d complete defines seen by the test-only hook, want at least 2 (virt-launcher redefines)", defines)
	}
	return defines, nil
}

// shutdown stops a VMI the way virt-handler does when it is deleted: ACPI
// shutdown, after the grace period a kill, then the domain's deletion; then
// virt-launcher must exit by itself with status 0, and the sidecars too
// (virt-launcher calls the hooks' Shutdown).
func shutdown(ctx context.Context, h *launcherpod.Handler, g *guestRun, log *slog.Logger) error {
	c := g.launcher.Client
	since := len(h.Events(g.rep.Name))
	if err := c.ShutdownVirtualMachine(g.vmi); err != nil {
		return fmt.Errorf("ShutdownVirtualMachine: %w", err)
	}
	off := func(e launcherpod.DomainEvent) bool { return e.Status == api.Shutoff || e.Status == api.Crashed }
	grace := time.Duration(*g.vmi.Spec.TerminationGracePeriodSeconds) * time.Second
	gctx, cancel := context.WithTimeout(ctx, grace)
	_, err := h.WaitFor(gctx, g.rep.Name, since, off)
	cancel()
	if err != nil {
		// The test guest has no ACPI daemon: virt-handler kills after the grace period.
		log.Info("grace period over, killing", "vmi", g.rep.Name)
		if err := c.KillVirtualMachine(g.vmi); err != nil {
			return fmt.Errorf("KillVirtualMachine: %w", err)
		}
		kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := h.WaitFor(kctx, g.rep.Name, since, off); err != nil {
			return err
		}
	}
	// virt-handler deletes the stopped domain; virt-launcher may be faster:
	// once QEMU is gone it sends the final notification and exits, and a
	// Delete then finds no server, which virt-handler tolerates too.
	if err := c.DeleteDomain(g.vmi); err != nil {
		select {
		case <-g.launcher.Containers["compute"].Done():
		case <-time.After(10 * time.Second):
			return fmt.Errorf("DeleteDomain: %w", err)
		}
	}
	ectx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := g.launcher.WaitExit(ectx); err != nil {
		return err
	}
	log.Info("virt-launcher pod exited by itself", "vmi", g.rep.Name, "events", len(h.Events(g.rep.Name)))
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", g.qemuPid)); err == nil {
		return fmt.Errorf("QEMU pid %d still exists", g.qemuPid)
	}
	return nil
}

// tails returns the last lines of the pod's container logs for an error.
func tails(work, vm string) string {
	var b strings.Builder
	for _, c := range []string{"compute", launcherpod.OurSidecar, launcherpod.TestOnlySidecar} {
		data, err := os.ReadFile(filepath.Join(work, vm+"-"+c+".log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(&b, "--- %s %s (last %d lines)\n%s\n", vm, c, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// waitReconnected checks, after an ovs-vswitchd restart, that every port is
// connected again. Usually Interface.status says so within a second. Often
// OVS 3.1 leaves that column at "disconnected" although the vhost device is
// back and carries the pings (6 of 18 runs here; the port's status is only
// rewritten on its next change, so a status update lost right after the
// restart is never repeated). Then the
// authority is ovs-vswitchd itself: its log, since the restart, must say
// "vHost Device '<socket>' has been added" and not "removed" after that.
// Such ports are returned so the caller can report them.
func waitReconnected(ctx context.Context, ovs *ovsenv.OVS, guests []*guestRun, logOffset int64, log *slog.Logger) ([]string, error) {
	var stale []string
	deadline := time.Now().Add(15 * time.Second)
	for _, g := range guests {
		status, ok, err := pollConnected(ctx, ovs, g.rep.Port, deadline, log)
		if ctx.Err() != nil {
			return stale, ctx.Err()
		}
		if ok {
			continue
		}
		since := logSince(ovs.LogFile("ovs-vswitchd"), logOffset)
		added := strings.LastIndex(since, "vHost Device '"+g.paths.OVSSocket+"' has been added")
		removed := strings.LastIndex(since, "vHost Device '"+g.paths.OVSSocket+"' has been removed")
		if added < 0 || removed > added {
			return stale, fmt.Errorf("port %s not connected 15s after the restart: status %s %v, and ovs-vswitchd did not log the device as added\nOVS log:\n%s",
				g.rep.Port, status, err, ovs.LogTail("ovs-vswitchd", 15))
		}
		log.Warn("OVSDB status of the port is stale; ovs-vswitchd logged the vhost device as added again", "port", g.rep.Port, "status", status)
		stale = append(stale, g.rep.Port)
	}
	return stale, nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}
