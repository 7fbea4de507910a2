package ovsenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Endpoint is the OVSDB endpoint in the usual "unix:<path>" form.
func (o *OVS) Endpoint() string { return "unix:" + o.DBSocket }

// Env is the environment that points OVS tools at this instance.
func (o *OVS) Env() []string {
	return append(os.Environ(),
		"OVS_RUNDIR="+o.Dir, "OVS_LOGDIR="+o.Dir, "OVS_DBDIR="+o.Dir, "OVS_SYSCONFDIR="+o.Dir)
}

// Vsctl runs ovs-vsctl against this instance's database and returns stdout.
func (o *OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	return o.run(ctx, "ovs-vsctl", append([]string{"--db=" + o.Endpoint(), "--timeout=30"}, args...)...)
}

// Appctl runs ovs-appctl against target "ovs-vswitchd" or "ovsdb-server" of
// this instance.
func (o *OVS) Appctl(ctx context.Context, target string, args ...string) (string, error) {
	return o.run(ctx, "ovs-appctl", append([]string{"-t", o.ctl(target), "--timeout=30"}, args...)...)
}

// LogFile is the path of the log of "ovs-vswitchd" or "ovsdb-server".
func (o *OVS) LogFile(daemon string) string { return filepath.Join(o.Dir, daemon+".log") }

// LogTail returns the last n lines of a daemon's log, for error reports.
func (o *OVS) LogTail(daemon string, n int) string {
	b, _ := os.ReadFile(o.LogFile(daemon))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (o *OVS) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = o.Env()
	cmd.Dir = o.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A --detach daemon could keep the output pipes open; never hang on them.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ovsenv: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
