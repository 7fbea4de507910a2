// Package dataplane is the local end-to-end chain shared by the dataplane
// functional test and `make demo`: a private OVS-DPDK, two pods laid out like
// kubelet lays out virt-launcher pods, our CNI plugin through libcni, and in
// each pod KubeVirt's real virt-launcher (v1.8.4) with our sidecar and a
// test-only hook sidecar (package launcherpod), driven like virt-handler
// drives it: KubeVirt's cmd-client (SyncVirtualMachine, shutdown, kill,
// delete) and KubeVirt's notify server for the domain events. Nothing
// rewrites our sidecar's output: QEMU binds the compute-view socket path,
// OVS connects through the CNI's short link. Then ping between the TCG
// guests, an ovs-vswitchd restart, virt-launcher's own exit, CNI DEL twice
// and a leak check.
//
// Run performs the assertions itself (port status, ping, resumption, nothing
// left) and returns an error naming the step that failed; everything it
// started is stopped and removed before it returns.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "kubevirt.io/api/core/v1"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/kubevirtbin"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcherpod"
	"github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

const (
	bridge     = "br-vhu"
	netName    = "vhostuser-net" // the NetworkAttachmentDefinition / CNI network name
	vmiNetwork = "vhu"           // spec.networks[].name in the VMIs
	subnet     = "10.251.0."     // guest addresses, private to the guests
)

// Config tells Run where things are.
type Config struct {
	BinDir   string       // holds vhostuser and vhostuser-sidecar
	CacheDir string       // guest kernel and initramfs cache
	Log      *slog.Logger // progress, one line per action
	// KeepWorkDir leaves the work directory (logs, consoles) for inspection.
	KeepWorkDir bool
	// BootTimeout bounds guest boot to first ping (default 4 minutes).
	BootTimeout time.Duration
}

// Step is one timed stage of the chain.
type Step struct {
	Name string
	Took time.Duration
}

// GuestReport is what one guest saw.
type GuestReport struct {
	Name, IP, Port, HostSocket, ComputeSocket, Console string
	FirstPing, PingAfterRestart                        string
	// FirstRTT is the first successful ping (it includes ARP resolution);
	// RTT is the median of the pingSamples that follow it.
	FirstRTT, RTT time.Duration
	// Defines is how many domain defines virt-launcher made through the
	// hooks (each carried our interface with the compute-view path).
	Defines int
	// Events are the domain events virt-launcher sent for this VMI.
	Events []launcherpod.DomainEvent
}

// pingSamples is how many pings after the first one give the RTT.
const pingSamples = 5

// Result is the outcome of Run.
type Result struct {
	Steps        []Step
	Guests       []GuestReport
	ImageCached  bool          // the guest image came from the cache
	ResumedAfter time.Duration // from ovs-vswitchd restart to both guests pinging again
	Leftovers    []string      // anything of ours left after CNI DEL (empty on success)
	WorkDir      string
	Netns        []string // network namespaces the chain created (all deleted again)
	// StaleStatus lists ports whose OVSDB status stayed "disconnected" after
	// the ovs-vswitchd restart although ovs-vswitchd logged the vhost device
	// as added again and the pings resumed (see waitReconnected).
	StaleStatus []string
}

type guestRun struct {
	rep         GuestReport
	pod         *Pod
	containerID string
	vmi         *v1.VirtualMachineInstance
	launcher    *launcherpod.Pod
	qemuPid     int
	console     guest.Console
	paths       socketpath.Paths
}

// chain is the state of one Run, filled in step by step.
type chain struct {
	cfg      Config
	log      *slog.Logger
	res      *Result
	cleanups []func() // run in reverse order when Run returns

	work    string
	suffix  string
	layout  socketpath.Layout
	img     guest.Image
	ovs     *ovsenv.OVS
	kv      kubevirtbin.Paths
	handler *launcherpod.Handler
	cni     *CNI
	guests  []*guestRun
}

// stage is one named, timed step of the chain.
type stage struct {
	name string
	do   func(ctx context.Context) error
}

// Run executes the chain. It needs root.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the dataplane chain needs root (network and mount namespaces, OVS)")
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 4 * time.Minute
	}
	for _, b := range []string{"vhostuser", "vhostuser-sidecar"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			return nil, fmt.Errorf("binary %s missing in %s (make build; VHOSTUSER_BIN=<dir>): %w", b, cfg.BinDir, err)
		}
	}
	c := &chain{cfg: cfg, log: cfg.Log, res: &Result{}}
	defer c.cleanUp()
	return c.res, c.run(ctx)
}

// run is the chain in order. The first failing step ends it.
func (c *chain) run(ctx context.Context) error {
	if err := c.makeWorkDir(); err != nil {
		return err
	}
	if err := c.do(ctx,
		stage{"prepare guest kernel and initramfs", c.prepareGuest},
		stage{"start private OVS-DPDK", c.startOVS},
		stage{"build KubeVirt's virt-launcher, virt-launcher-monitor, sidecar-shim", c.buildKubeVirt},
		stage{"start the notify server (virt-handler's side)", c.startHandler},
		stage{"prepare the node (node configuration, fs.protected_symlinks=1)", c.setUpNode},
	); err != nil {
		return err
	}
	if err := c.newCNI(); err != nil {
		return err
	}
	c.layOutPods()
	for i, g := range c.guests {
		if err := c.do(ctx, stage{"CNI ADD for pod virt-launcher-" + g.rep.Name,
			func(ctx context.Context) error { return c.cniAdd(ctx, i, g) }}); err != nil {
			return err
		}
	}
	for i, g := range c.guests {
		// The step is named for the pod, which exists once its CNI ADD ran.
		if err := c.do(ctx, stage{"start virt-launcher pod " + g.pod.Name + " (compute, our sidecar, test-only sidecar)",
			func(ctx context.Context) error { return c.launchVMI(ctx, i, g) }}); err != nil {
			return err
		}
	}
	if err := c.do(ctx,
		stage{"SyncVirtualMachine (cmd-client) and wait for Running domain events", c.waitRunning},
		stage{"check QEMU bound the compute-view socket path", c.checkSockets},
		stage{"wait for OVS ports connected", c.waitPortsConnected},
		stage{"wait for guest-to-guest ping", c.ping},
		stage{"restart ovs-vswitchd and wait for ping to resume", c.restartVswitchd},
		stage{"check our interface in every define (virt-launcher redefines)", c.checkEveryDefine},
		stage{"shut down: virt-handler's shutdown, virt-launcher exits by itself, CNI DEL twice, nothing left", c.shutDown},
	); err != nil {
		return err
	}
	c.report()
	return nil
}

// do runs the stages in order, each logged and timed; the first error ends
// it, prefixed with its stage's name.
func (c *chain) do(ctx context.Context, stages ...stage) error {
	for _, s := range stages {
		c.log.Info("== " + s.name)
		start := time.Now()
		err := s.do(ctx)
		c.res.Steps = append(c.res.Steps, Step{Name: s.name, Took: time.Since(start)})
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// cleanUp undoes, newest first, everything the steps started or changed.
func (c *chain) cleanUp() {
	c.log.Info("== clean up: launcher pods, notify server, OVS, pods, work directory")
	start := time.Now()
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.res.Steps = append(c.res.Steps, Step{Name: "clean up", Took: time.Since(start)})
}

// report collects what each guest saw once the chain has passed.
func (c *chain) report() {
	for _, g := range c.guests {
		g.rep.Events = c.handler.Events(g.rep.Name)
		c.res.Guests = append(c.res.Guests, g.rep)
	}
}

// SidecarArgs are the sidecar's flags for a socket directory, as in the
// sidecar container of a virt-launcher pod (socket dir = its volume subPath).
func SidecarArgs(socketDir string) []string {
	return []string{"-socket-dir", socketDir, "-binding", vmi.BindingName}
}
