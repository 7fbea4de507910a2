// Package ovsenv starts a private, real Open vSwitch with DPDK (ovsdb-server
// and the DPDK build of ovs-vswitchd) for integration tests, benchmarks and
// demos, and stops it again.
//
// Private means nothing is shared with a system OVS or with another OVS
// started by this package at the same time:
//
//   - database, sockets, pid files and logs live in one temporary directory
//     (OVS_RUNDIR, OVS_LOGDIR, OVS_DBDIR and OVS_SYSCONFDIR point there);
//   - ovs-vswitchd runs in its own network namespace, so the tap devices of
//     netdev bridges never collide with another instance's;
//   - DPDK gets a unique --file-prefix, and --no-huge --legacy-mem -m 512 when
//     no free 2 MiB hugepages exist (with them, dpdk-socket-mem=256).
//
// The PMD thread busy-polls a core; other_config:pmd-maxsleep=10000 keeps an
// idle instance near 1 % CPU. Always call Stop (ovs-vswitchd is stopped with
// "exit --cleanup" so no datapath state survives), also on failure paths.
//
// Typical use from a TestMain:
//
//	o, err := ovsenv.Start(ctx, ovsenv.Options{})
//	if err != nil { ... }
//	defer o.Stop()
//	o.Vsctl(ctx, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
//	// connect an OVSDB client to o.Endpoint() ("unix:<dir>/db.sock")
//
// The package needs root (network namespaces), the ovsdb-tool, ovsdb-server,
// ovs-vswitchd (DPDK build), ovs-vsctl, ovs-appctl and ip binaries, and does
// not import testing.
package ovsenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultSchema is where Debian installs the Open_vSwitch database schema.
const DefaultSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// DPDKRuntimeDir is where DPDK keeps the runtime files (config, fbarrays)
// of each --file-prefix when run as root.
const DPDKRuntimeDir = "/var/run/dpdk"

// Options tune Start. The zero value is a good default.
type Options struct {
	// Dir is the parent of the instance directory (default: os.TempDir()).
	// Keep it short: the database socket path must fit in 108 bytes.
	Dir string
	// Name makes the instance recognisable in the netns and DPDK prefix
	// (default "ovsenv"); a random suffix is always added.
	Name string
	// Schema is the Open_vSwitch schema file (default DefaultSchema).
	Schema string
	// Hugepages: "auto" (default, use them when at least 128 free 2 MiB
	// pages exist), "on" or "off".
	Hugepages string
	// OtherConfig is added to Open_vSwitch other_config before ovs-vswitchd starts.
	OtherConfig map[string]string
	// NoVswitchd starts only ovsdb-server.
	NoVswitchd bool
	// StartTimeout bounds each daemon's start (default 60 s).
	StartTimeout time.Duration
	// KeepDir leaves the instance directory (logs) after Stop.
	KeepDir bool
}

// OVS is one running private instance.
type OVS struct {
	// Dir holds everything of this instance: conf.db, db.sock, pid files, logs.
	Dir string
	// DBSocket is the path of ovsdb-server's unix socket.
	DBSocket string
	// Netns is the network namespace ovs-vswitchd runs in.
	Netns string
	// FilePrefix is DPDK's --file-prefix of this instance.
	FilePrefix string
	// Hugepages tells whether DPDK uses hugepages (false: --no-huge).
	Hugepages bool

	opts Options
}

// Start creates the database and starts ovsdb-server and (unless
// Options.NoVswitchd) ovs-vswitchd with DPDK initialised. On error,
// everything already started is stopped again.
func Start(ctx context.Context, opts Options) (*OVS, error) {
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	if opts.Name == "" {
		opts.Name = "ovsenv"
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	for _, b := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("ovsenv: %s not found (install openvswitch-switch-dpdk and iproute2: bash hack/install-deps.sh): %w", b, err)
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	dir, err := os.MkdirTemp(opts.Dir, opts.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("ovsenv: %w", err)
	}
	o := &OVS{
		Dir:        dir,
		DBSocket:   filepath.Join(dir, "db.sock"),
		Netns:      opts.Name + "-" + suffix,
		FilePrefix: opts.Name + "-" + suffix,
		opts:       opts,
	}
	if len(o.DBSocket) > 107 {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("ovsenv: socket path %s is too long for a unix socket: use a shorter Options.Dir", o.DBSocket)
	}
	if err := o.start(ctx); err != nil {
		_ = o.Stop()
		return nil, err
	}
	return o, nil
}

func (o *OVS) start(ctx context.Context) error {
	if _, err := o.run(ctx, "ovsdb-tool", "create", filepath.Join(o.Dir, "conf.db"), o.opts.Schema); err != nil {
		return err
	}
	if err := o.StartDB(ctx); err != nil {
		return err
	}
	if _, err := o.Vsctl(ctx, "--no-wait", "init"); err != nil {
		return err
	}
	o.Hugepages = useHugepages(o.opts.Hugepages)
	extra := "--file-prefix=" + o.FilePrefix
	cfg := map[string]string{
		"dpdk-init":    "true",
		"pmd-maxsleep": "10000",
	}
	if o.Hugepages {
		cfg["dpdk-socket-mem"] = "256"
	} else {
		extra += " --no-huge --legacy-mem -m 512"
	}
	cfg["dpdk-extra"] = extra
	for k, v := range o.opts.OtherConfig {
		cfg[k] = v
	}
	args := []string{"--no-wait", "set", "Open_vSwitch", "."}
	for k, v := range cfg {
		args = append(args, fmt.Sprintf("other_config:%s=%q", k, v))
	}
	if _, err := o.Vsctl(ctx, args...); err != nil {
		return err
	}
	if o.opts.NoVswitchd {
		return nil
	}
	if _, err := o.run(ctx, "ip", "netns", "add", o.Netns); err != nil {
		o.Netns = ""
		return err
	}
	return o.StartVswitchd(ctx)
}

func useHugepages(mode string) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
	if err != nil {
		return false
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if n < 128 {
		return false
	}
	m, err := os.ReadFile("/proc/mounts")
	return err == nil && bytes.Contains(m, []byte(" hugetlbfs "))
}

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

// StartVswitchd starts ovs-vswitchd in the instance's network namespace and
// waits until DPDK is initialised and it answers on its control socket.
func (o *OVS) StartVswitchd(ctx context.Context) error {
	if o.Netns == "" {
		return errors.New("ovsenv: no network namespace (instance started with NoVswitchd?)")
	}
	if o.Pid("ovs-vswitchd") != 0 {
		return nil
	}
	// A fresh start must not trust a dpdk_initialized left by the previous run.
	_, _ = o.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "dpdk_initialized=false")
	_, err := o.run(ctx, "ip", "netns", "exec", o.Netns, "ovs-vswitchd", o.Endpoint(),
		"--pidfile="+o.pidfile("ovs-vswitchd"), "--unixctl="+o.ctl("ovs-vswitchd"),
		"--log-file="+o.LogFile("ovs-vswitchd"), "--detach")
	if err != nil {
		return fmt.Errorf("%w\n%s", err, o.LogTail("ovs-vswitchd", 20))
	}
	return o.waitFor(ctx, "ovs-vswitchd", func() bool {
		if _, err := o.Appctl(ctx, "ovs-vswitchd", "version"); err != nil {
			return false
		}
		out, err := o.Vsctl(ctx, "--no-wait", "get", "Open_vSwitch", ".", "dpdk_initialized")
		return err == nil && strings.TrimSpace(out) == "true"
	})
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

// StopVswitchd stops ovs-vswitchd (exit --cleanup), simulating a dataplane
// outage; the database keeps answering.
func (o *OVS) StopVswitchd(ctx context.Context) error {
	return o.stopDaemon(ctx, "ovs-vswitchd", "exit", "--cleanup")
}

// StopDB stops ovsdb-server, simulating an OVSDB outage. The database file
// stays, so StartDB brings back the same state.
func (o *OVS) StopDB(ctx context.Context) error {
	return o.stopDaemon(ctx, "ovsdb-server", "exit")
}

// RestartVswitchd stops and starts ovs-vswitchd.
func (o *OVS) RestartVswitchd(ctx context.Context) error {
	if err := o.StopVswitchd(ctx); err != nil {
		return err
	}
	return o.StartVswitchd(ctx)
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

// Stop stops both daemons, deletes the network namespace and (unless
// Options.KeepDir) the instance directory. It is safe to call twice.
func (o *OVS) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	errs = append(errs, o.StopVswitchd(ctx), o.StopDB(ctx))
	if o.FilePrefix != "" && o.Pid("ovs-vswitchd") == 0 {
		// DPDK's runtime files of this instance's unique prefix.
		errs = append(errs, os.RemoveAll(filepath.Join(DPDKRuntimeDir, o.FilePrefix)))
	}
	if o.Netns != "" {
		if _, err := o.run(ctx, "ip", "netns", "del", o.Netns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		o.Netns = ""
	}
	if !o.opts.KeepDir && o.Dir != "" {
		errs = append(errs, os.RemoveAll(o.Dir))
	}
	return errors.Join(errs...)
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
