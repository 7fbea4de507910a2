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
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/functests/filelock"
	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/kubevirtbin"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcher"
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

// Run executes the chain. It needs root.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the dataplane chain needs root (network and mount namespaces, OVS)")
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 4 * time.Minute
	}
	log := cfg.Log
	for _, b := range []string{"vhostuser", "vhostuser-sidecar"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			return nil, fmt.Errorf("binary %s missing in %s (make build; VHOSTUSER_BIN=<dir>): %w", b, cfg.BinDir, err)
		}
	}
	res = &Result{}
	var cleanups []func()
	defer func() {
		log.Info("== clean up: launcher pods, notify server, OVS, pods, work directory")
		start := time.Now()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		res.Steps = append(res.Steps, Step{Name: "clean up", Took: time.Since(start)})
	}()
	step := func(name string, fn func() error) error {
		log.Info("== " + name)
		start := time.Now()
		err := fn()
		res.Steps = append(res.Steps, Step{Name: name, Took: time.Since(start)})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}

	// Short and world-traversable: QEMU runs as uid 107 and binds through
	// the short links in here.
	work, err := os.MkdirTemp("", "vhu-e2e-")
	if err != nil {
		return res, fmt.Errorf("create work directory: %w", err)
	}
	res.WorkDir = work
	if err := os.Chmod(work, 0o755); err != nil {
		return res, err
	}
	if !cfg.KeepWorkDir {
		cleanups = append(cleanups, func() { os.RemoveAll(work) })
	}
	layout := socketpath.Layout{
		KubeletRoot: filepath.Join(work, "kubelet"),
		Volume:      socketpath.DefaultVolume,
		ShortDir:    filepath.Join(work, "s"),
	}
	kvLog, err := os.Create(filepath.Join(work, "kubevirt.log"))
	if err != nil {
		return res, err
	}
	launcher.LogKubeVirtTo(kvLog)
	cleanups = append(cleanups, func() { launcher.LogKubeVirtTo(os.Stderr); kvLog.Close() })

	var img guest.Image
	if err := step("prepare guest kernel and initramfs", func() error {
		var err error
		img, res.ImageCached, err = guest.Prepare(ctx, cfg.CacheDir, log)
		if err == nil {
			log.Info("guest image", "kernel", img.Kernel, "initrd", img.Initrd, "cached", res.ImageCached)
		}
		return err
	}); err != nil {
		return res, err
	}

	var ovs *ovsenv.OVS
	if err := step("start private OVS-DPDK", func() error {
		var err error
		// Per-port mempools: without hugepages DPDK has 512 MiB, and the
		// shared pool OVS sizes for 262144 mbufs does not fit a second time
		// when a vhost port moves NUMA socket on connect (ENOBUFS, no retry).
		ovs, err = ovsenv.Start(ctx, ovsenv.Options{Dir: work, Name: "vhu-e2e", KeepDir: cfg.KeepWorkDir,
			OtherConfig: map[string]string{"per-port-memory": "true"}})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() {
			if err := ovs.Stop(); err != nil {
				log.Warn("stop OVS", "err", err)
			}
		})
		if _, err := ovs.Vsctl(ctx, "add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev"); err != nil {
			return err
		}
		res.Netns = append(res.Netns, ovs.Netns)
		log.Info("OVS-DPDK running", "dir", ovs.Dir, "db", ovs.DBSocket, "netns", ovs.Netns, "hugepages", ovs.Hugepages, "bridge", bridge)
		return nil
	}); err != nil {
		return res, err
	}

	var kv kubevirtbin.Paths
	if err := step("build KubeVirt's virt-launcher, virt-launcher-monitor, sidecar-shim", func() error {
		dir := filepath.Join(cfg.CacheDir, "kubevirt-"+KubeVirtVersion)
		unlock, err := filelock.Lock(dir + ".lock")
		if err != nil {
			return err
		}
		defer unlock()
		var took time.Duration
		kv, took, err = kubevirtbin.Build(ctx, dir)
		if err == nil {
			log.Info("KubeVirt binaries", "dir", kv.Dir, "took", took.Round(time.Millisecond))
		}
		return err
	}); err != nil {
		return res, err
	}

	var handler *launcherpod.Handler
	if err := step("start the notify server (virt-handler's side)", func() error {
		var err error
		handler, err = launcherpod.StartHandler(filepath.Join(work, "handler"))
		if err != nil {
			return err
		}
		cleanups = append(cleanups, handler.Stop)
		return nil
	}); err != nil {
		return res, err
	}

	if err := step("prepare the node (node configuration, fs.protected_symlinks=1)", func() error {
		restore, err := prepareNode(work, ovs, layout)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, restore)
		return nil
	}); err != nil {
		return res, err
	}
	// What a user's NetworkAttachmentDefinition holds: nothing of the node's.
	confList, err := ConfList(netName, map[string]any{
		"bridge":   bridge,
		"logLevel": "debug",
	})
	if err != nil {
		return res, err
	}
	cni, err := NewCNI(cfg.BinDir, filepath.Join(work, "cni-cache"), confList)
	if err != nil {
		return res, err
	}

	suffix := filepath.Base(work)[len("vhu-e2e-"):]
	guests := []*guestRun{
		{rep: GuestReport{Name: "vm-a", IP: subnet + "1"}},
		{rep: GuestReport{Name: "vm-b", IP: subnet + "2"}},
	}
	for i, g := range guests {
		uid := fmt.Sprintf("7e57%04d-0000-4000-8000-%012d", i, os.Getpid())
		g.containerID = fmt.Sprintf("sandbox-%s-%d", suffix, i)
		if err := step("CNI ADD for pod virt-launcher-"+g.rep.Name, func() error {
			pod, err := NewPod(ctx, layout, "default", "virt-launcher-"+g.rep.Name, uid, "vhu-pod-"+suffix+fmt.Sprint(i))
			if err != nil {
				return err
			}
			res.Netns = append(res.Netns, pod.Netns)
			g.pod = pod
			cleanups = append(cleanups, func() { pod.Remove() })
			r, err := cni.Add(ctx, pod, g.containerID, vmiNetwork)
			if err != nil {
				return err
			}
			// Best effort DEL if the chain stops before its own DEL.
			cleanups = append(cleanups, func() { cni.Del(context.Background(), pod, g.containerID, vmiNetwork) })
			g.paths, err = layout.For(socketpath.Attachment{PodUID: uid, IfName: socketpath.PodInterfaceName(vmiNetwork)})
			if err != nil {
				return err
			}
			if len(r.Interfaces) != 1 || r.Interfaces[0].SocketPath != g.paths.HostSocket {
				return fmt.Errorf("CNI result interfaces %+v: want one with socketPath %s", r.Interfaces, g.paths.HostSocket)
			}
			g.rep.Port = config.PortName(g.paths.ID)
			g.rep.HostSocket = g.paths.HostSocket
			g.rep.ComputeSocket = g.paths.ComputeSocket
			log.Info("pod attached", "pod", pod.Name, "uid", uid, "ifname", r.Interfaces[0].Name,
				"ovsPort", g.rep.Port, "hostSocket", g.paths.HostSocket, "ovsSocket", g.paths.OVSSocket)
			return nil
		}); err != nil {
			return res, err
		}
	}

	for i, g := range guests {
		peer := guests[1-i].rep.IP
		if err := step("start virt-launcher pod "+g.pod.Name+" (compute, our sidecar, test-only sidecar)", func() error {
			g.vmi = vmi.New(g.rep.Name, g.pod.UID,
				vmi.WithoutPodNetwork(),
				vmi.WithVhostUser(vmiNetwork, netName, fmt.Sprintf("02:00:00:00:00:%02x", i+1)),
				vmi.WithKernelBoot(guest.Cmdline(g.rep.Name, g.rep.IP+"/24", peer)),
				vmi.WithTerminationGracePeriod(5),
				vmi.WithFirmwareUUID())
			lp, err := launcherpod.Start(ctx, launcherpod.Config{
				Dir: filepath.Join(work, fmt.Sprintf("p%d", i)), Netns: g.pod.NetnsPath(), HookVolume: g.pod.VolumeDir,
				Bins: kv, SidecarBin: filepath.Join(cfg.BinDir, "vhostuser-sidecar"),
				Kernel: img.Kernel, Initrd: img.Initrd,
				VMI: g.vmi, Handler: handler,
				Out: func(container string) (io.Writer, error) {
					f, err := os.Create(filepath.Join(work, g.rep.Name+"-"+container+".log"))
					if err == nil {
						cleanups = append(cleanups, func() { f.Close() })
					}
					return f, err
				},
			})
			if err != nil {
				return fmt.Errorf("%w\n%s", err, tails(work, g.rep.Name))
			}
			g.launcher = lp
			cleanups = append(cleanups, lp.Kill)
			g.console = guest.Console{Path: filepath.Join(lp.Private, g.pod.UID, "virt-serial0-log")}
			g.rep.Console = g.console.Path
			log.Info("virt-launcher ready", "pod", g.pod.Name, "launcherSocket", filepath.Join(lp.Sockets, "launcher-sock"))
			return nil
		}); err != nil {
			return res, err
		}
	}

	if err := step("SyncVirtualMachine (cmd-client) and wait for Running domain events", func() error {
		for _, g := range guests {
			if err := g.launcher.Sync(); err != nil {
				return fmt.Errorf("%w\n%s", err, tails(work, g.rep.Name))
			}
			log.Info("SyncVirtualMachine returned", "vmi", g.rep.Name)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		for _, g := range guests {
			e, err := handler.WaitFor(rctx, g.rep.Name, 0, func(e launcherpod.DomainEvent) bool { return e.Status == api.Running })
			if err != nil {
				return fmt.Errorf("%w\n%s", err, tails(work, g.rep.Name))
			}
			log.Info("domain event", "vmi", g.rep.Name, "type", e.Type, "status", e.Status, "reason", e.Reason)
		}
		return nil
	}); err != nil {
		return res, err
	}

	if err := step("check QEMU bound the compute-view socket path", func() error {
		for _, g := range guests {
			if err := checkQEMUSocket(g); err != nil {
				return err
			}
			log.Info("QEMU listens on the compute-view path", "vmi", g.rep.Name, "qemuPid", g.qemuPid,
				"path", g.paths.ComputeSocket, "ovsConnectsVia", g.paths.OVSSocket)
		}
		return nil
	}); err != nil {
		return res, err
	}

	if err := step("wait for OVS ports connected", func() error {
		return waitConnected(ctx, ovs, guests, 2*time.Minute, log)
	}); err != nil {
		return res, err
	}

	if err := step("wait for guest-to-guest ping", func() error {
		bctx, cancel := context.WithTimeout(ctx, cfg.BootTimeout)
		defer cancel()
		for _, g := range guests {
			line, err := g.console.WaitFor(bctx, 0, guest.MarkerPingOK)
			if err != nil {
				return fmt.Errorf("%s: %w\nconsole:\n%s\nOVS log:\n%s", g.rep.Name, err, g.console.Tail(15), ovs.LogTail("ovs-vswitchd", 10))
			}
			g.rep.FirstPing = line
			if g.rep.FirstRTT, err = guest.RTT(line); err != nil {
				return err
			}
			log.Info("ping", "from", g.rep.Name, "line", line)
		}
		// The guests ping once a second: a few more give a steady RTT.
		for _, g := range guests {
			lines, err := g.console.Collect(bctx, 0, guest.MarkerPingOK, pingSamples+1)
			if err != nil {
				return fmt.Errorf("%s: %w", g.rep.Name, err)
			}
			if g.rep.RTT, err = guest.MedianRTT(lines[1:]); err != nil {
				return err
			}
			log.Info("ping RTT", "from", g.rep.Name, "median", g.rep.RTT, "samples", pingSamples)
		}
		return nil
	}); err != nil {
		return res, err
	}

	if err := step("restart ovs-vswitchd and wait for ping to resume", func() error {
		logOffset := fileSize(ovs.LogFile("ovs-vswitchd"))
		start := time.Now()
		if err := ovs.RestartVswitchd(ctx); err != nil {
			return err
		}
		// Only pings printed after ovs-vswitchd is back count, and several
		// of them, so a reply that arrived just before the stop cannot pass.
		offsets := make([]int64, len(guests))
		for i, g := range guests {
			offsets[i] = g.console.Offset()
		}
		log.Info("ovs-vswitchd restarted", "took", time.Since(start).Round(time.Millisecond))
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		for i, g := range guests {
			lines, err := g.console.Collect(rctx, offsets[i], guest.MarkerPingOK, 3)
			if err != nil {
				return fmt.Errorf("%s: %w\nOVS log:\n%s", g.rep.Name, err, ovs.LogTail("ovs-vswitchd", 15))
			}
			g.rep.PingAfterRestart = lines[0]
			log.Info("ping after restart", "from", g.rep.Name, "line", lines[0])
		}
		res.ResumedAfter = time.Since(start)
		res.StaleStatus, err = waitReconnected(ctx, ovs, guests, logOffset, log)
		return err
	}); err != nil {
		return res, err
	}

	if err := step("check our interface in every define (virt-launcher redefines)", func() error {
		for _, g := range guests {
			// virt-handler syncs again on every VMI update: one more here.
			if err := g.launcher.Sync(); err != nil {
				return err
			}
			n, err := checkDefines(filepath.Join(work, g.rep.Name+"-"+launcherpod.TestOnlySidecar+".log"), g.paths.ComputeSocket)
			if err != nil {
				return fmt.Errorf("%s: %w", g.rep.Name, err)
			}
			g.rep.Defines = n
			log.Info("every define carried our interface", "vmi", g.rep.Name, "defines", n, "path", g.paths.ComputeSocket)
		}
		return nil
	}); err != nil {
		return res, err
	}

	if err := step("shut down: virt-handler's shutdown, virt-launcher exits by itself, CNI DEL twice, nothing left", func() error {
		for _, g := range guests {
			if err := shutdown(ctx, handler, g, log); err != nil {
				return fmt.Errorf("%s: %w\n%s", g.rep.Name, err, tails(work, g.rep.Name))
			}
		}
		for _, g := range guests {
			// DEL twice: the second must succeed with nothing left to do.
			for n := 0; n < 2; n++ {
				if err := cni.Del(ctx, g.pod, g.containerID, vmiNetwork); err != nil {
					return err
				}
			}
		}
		res.Leftovers = leftovers(ctx, ovs, layout, guests)
		if len(res.Leftovers) > 0 {
			return fmt.Errorf("left after CNI DEL: %s", strings.Join(res.Leftovers, "; "))
		}
		log.Info("nothing left", "ports", 0, "shortLinks", 0)
		return nil
	}); err != nil {
		return res, err
	}
	for _, g := range guests {
		g.rep.Events = handler.Events(g.rep.Name)
		res.Guests = append(res.Guests, g.rep)
	}
	return res, nil
}

// SidecarArgs are the sidecar's flags for a socket directory, as in the
// sidecar container of a virt-launcher pod (socket dir = its volume subPath).
func SidecarArgs(socketDir string) []string {
	return []string{"-socket-dir", socketDir, "-binding", vmi.BindingName}
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

// leftovers lists anything of ours that survived CNI DEL: OVS ports of the
// plugin, short links, per-interface socket directories.
func leftovers(ctx context.Context, ovs *ovsenv.OVS, layout socketpath.Layout, guests []*guestRun) []string {
	var left []string
	out, err := ovs.Vsctl(ctx, "--columns=name", "--format=csv", "--no-headings", "find", "Port",
		`external_ids:"vhostuser.kubevirt.io/owner"="vhostuser-cni"`)
	if err != nil {
		left = append(left, "cannot list OVS ports: "+err.Error())
	} else if s := strings.TrimSpace(out); s != "" {
		left = append(left, "OVS ports "+strings.ReplaceAll(s, "\n", ","))
	}
	if out, err := ovs.Vsctl(ctx, "list-ports", bridge); err == nil && strings.TrimSpace(out) != "" {
		left = append(left, "ports on "+bridge+": "+strings.TrimSpace(out))
	}
	if entries, err := os.ReadDir(layout.ShortDir); err == nil && len(entries) > 0 {
		for _, e := range entries {
			left = append(left, "short link "+filepath.Join(layout.ShortDir, e.Name()))
		}
	}
	for _, g := range guests {
		if _, err := os.Lstat(g.paths.HostDir); err == nil {
			left = append(left, "socket directory "+g.paths.HostDir)
		}
	}
	return left
}
