package ovsenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (o *OVS) ctl(daemon string) string     { return filepath.Join(o.Dir, daemon+".ctl") }
func (o *OVS) pidfile(daemon string) string { return filepath.Join(o.Dir, daemon+".pid") }

// Pid returns the pid of a running daemon, or 0.
func (o *OVS) Pid(daemon string) int {
	b, err := os.ReadFile(o.pidfile(daemon))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0
	}
	return pid
}

// alive tells whether any thread of process pid still runs.
//
// A daemon nobody reaps (its parent is the init of a container without a
// reaper) stays a zombie after it exited, so a zombie counts as gone. But
// the thread-group leader turns zombie as soon as ITS thread exits, while
// the other threads may still be running or tearing down: ovs-vswitchd's
// DPDK threads hold the locks on the runtime files under
// /var/run/dpdk/<file-prefix> until the last thread is gone, and an
// ovs-vswitchd started on the same prefix before that fails with "EAL:
// Cannot allocate memzone list". So the process is gone only when every
// task of it is a zombie or dead.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		// /proc/<pid> vanished between the two looks: reaped.
		return !errors.Is(err, os.ErrNotExist)
	}
	for _, t := range tasks {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue // the thread is gone
		}
		if !zombieOrDead(st) {
			return true
		}
	}
	return false
}

// zombieOrDead reads the state field of a /proc/.../stat line: the first
// field after the ")" that ends the command name.
func zombieOrDead(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	switch stat[i+2] {
	case 'Z', 'X', 'x':
		return true
	}
	return false
}

func (o *OVS) waitFor(ctx context.Context, daemon string, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, o.opts.StartTimeout)
	defer cancel()
	for {
		if ready() {
			return nil
		}
		if o.Pid(daemon) == 0 {
			return fmt.Errorf("ovsenv: %s exited during start; log tail:\n%s", daemon, o.LogTail(daemon, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovsenv: %s not ready: %w; log tail:\n%s", daemon, ctx.Err(), o.LogTail(daemon, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (o *OVS) stopDaemon(ctx context.Context, daemon string, cmd ...string) error {
	pid := o.Pid(daemon)
	if pid == 0 {
		return nil
	}
	_, err := o.Appctl(ctx, daemon, cmd...)
	// Wait on the pid, not on the pid file: the daemon removes its pid file
	// while exiting, before all of its threads are gone.
	if waitGone(pid, 10*time.Second) {
		_ = os.Remove(o.pidfile(daemon))
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if !waitGone(pid, 5*time.Second) {
		return fmt.Errorf("ovsenv: %s (pid %d) does not stop (appctl: %v)", daemon, pid, err)
	}
	_ = os.Remove(o.pidfile(daemon))
	return nil
}

// waitGone polls until no thread of pid runs, at most timeout.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
