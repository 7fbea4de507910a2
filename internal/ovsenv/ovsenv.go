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
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DefaultSchema is where Debian installs the Open_vSwitch database schema.
const DefaultSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// DPDKRuntimeDir is where DPDK keeps the runtime files (config, fbarrays)
// of each --file-prefix when run as root.
const DPDKRuntimeDir = "/var/run/dpdk"

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
	opts = opts.withDefaults()
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
	args := []string{"--no-wait", "set", "Open_vSwitch", "."}
	for k, v := range o.otherConfig() {
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

// StartWithBridge is Start plus one netdev bridge named bridge, for the test
// packages that share one instance for their whole run. On error nothing is
// left running.
func StartWithBridge(ctx context.Context, opts Options, bridge string) (*OVS, error) {
	o, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	args := []string{"add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev"}
	if opts.NoVswitchd {
		args = append([]string{"--no-wait"}, args...) // nothing would acknowledge it
	}
	if out, err := o.Vsctl(ctx, args...); err != nil {
		_ = o.Stop()
		return nil, fmt.Errorf("ovsenv: add bridge %s: %w: %s", bridge, err, out)
	}
	return o, nil
}
