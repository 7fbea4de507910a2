// Package dataplane is the local end-to-end chain shared by the dataplane
// functional test and `make demo`: a private OVS-DPDK, two virt-launcher-like
// pods, our CNI plugin through libcni, KubeVirt's converter and hooks manager
// driving our sidecar, two TCG guests started by a private libvirtd, ping
// between them, an ovs-vswitchd restart, CNI DEL and a leak check.
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
	"strings"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcher"
	"github.com/kubevirt-vhostuser/vhostuser/functests/libvirtd"
	"github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/ovsenv"
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
}

type guestRun struct {
	rep         GuestReport
	pod         *Pod
	containerID string
	domain      string
	console     guest.Console
	paths       socketpath.Paths
}

// Run executes the chain. It needs root.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the dataplane chain needs root (network namespaces, OVS, libvirtd)")
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
		log.Info("== clean up: guests, libvirtd, OVS, pods, work directory")
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
	consoles := filepath.Join(work, "consoles")
	if err := os.MkdirAll(consoles, 0o755); err != nil {
		return res, err
	}
	// QEMU (uid 107) writes the serial console files.
	if err := os.Chown(consoles, libvirtd.QEMUUser, libvirtd.QEMUGroup); err != nil {
		return res, err
	}

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

	var virt *libvirtd.Daemon
	if err := step("start private libvirtd", func() error {
		var err error
		virt, err = libvirtd.Start(ctx, filepath.Join(work, "libvirt"), log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() {
			if err := virt.Stop(); err != nil {
				log.Warn("stop libvirtd", "err", err)
			}
		})
		return nil
	}); err != nil {
		return res, err
	}

	confList, err := ConfList(netName, map[string]any{
		"bridge":         bridge,
		"ovsdbSocket":    ovs.Endpoint(),
		"kubeletRoot":    layout.KubeletRoot,
		"shortSocketDir": layout.ShortDir,
		"logFile":        filepath.Join(work, "cni.log"),
		"logLevel":       "debug",
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
		g.domain = "default_" + g.rep.Name // KubeVirt's name: <namespace>_<vmi>
		g.console = guest.Console{Path: filepath.Join(consoles, g.rep.Name+".log")}
		g.rep.Console = g.console.Path
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
		if err := step("convert VMI and run the sidecar for "+g.rep.Name, func() error {
			v := vmi.New(g.rep.Name, g.pod.UID, vmi.WithVhostUser(vmiNetwork, netName, fmt.Sprintf("02:00:00:00:00:%02x", i+1)))
			dom, err := launcher.Convert(v)
			if err != nil {
				return err
			}
			sidecarLog, err := os.Create(filepath.Join(work, g.rep.Name+"-sidecar.log"))
			if err != nil {
				return err
			}
			defer sidecarLog.Close()
			s, err := launcher.StartSidecar(ctx, filepath.Join(cfg.BinDir, "vhostuser-sidecar"), SidecarArgs, nil, sidecarLog)
			if err != nil {
				return err
			}
			xmlOut, err := s.OnDefineDomain(&dom.Spec, v)
			if cerr := s.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if !strings.Contains(xmlOut, g.paths.ComputeSocket) {
				return fmt.Errorf("sidecar output has no socket %s", g.paths.ComputeSocket)
			}
			runnable, err := MakeRunnableOnThisHost(xmlOut, TestBoot{
				Kernel: img.Kernel, Initrd: img.Initrd,
				Cmdline:    guest.Cmdline(g.rep.Name, g.rep.IP+"/24", peer),
				ConsoleLog: g.console.Path, Layout: layout, PodUID: g.pod.UID,
			})
			if err != nil {
				return err
			}
			xmlFile := filepath.Join(work, g.domain+".xml")
			if err := os.WriteFile(xmlFile, []byte(runnable), 0o644); err != nil {
				return err
			}
			log.Info("domain ready", "vm", g.rep.Name, "computeSocket", g.paths.ComputeSocket, "qemuBindsVia", g.paths.OVSSocket, "xml", xmlFile)
			if _, err := virt.Virsh(ctx, "define", xmlFile); err != nil {
				return err
			}
			return nil
		}); err != nil {
			return res, err
		}
	}

	if err := step("start both guests (QEMU TCG)", func() error {
		for _, g := range guests {
			// virsh start returns once QEMU runs: the OVS port exists, so
			// OVS connects to QEMU's socket at once.
			if _, err := virt.Virsh(ctx, "start", g.domain); err != nil {
				return fmt.Errorf("%w\nQEMU log:\n%s", err, virt.QEMULog(g.domain))
			}
			log.Info("guest started", "domain", g.domain, "console", g.console.Path)
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
				return fmt.Errorf("%s: %w\nQEMU log:\n%s\nOVS log:\n%s", g.rep.Name, err, virt.QEMULog(g.domain), ovs.LogTail("ovs-vswitchd", 10))
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
		return waitConnected(ctx, ovs, guests, time.Minute, log)
	}); err != nil {
		return res, err
	}

	if err := step("stop guests, CNI DEL, check nothing is left", func() error {
		for _, g := range guests {
			if _, err := virt.Virsh(ctx, "destroy", g.domain); err != nil {
				return err
			}
			if _, err := virt.Virsh(ctx, "undefine", g.domain); err != nil {
				return err
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
		for {
			out, err := ovs.Vsctl(ctx, "get", "Interface", g.rep.Port, "status")
			if err == nil && strings.Contains(out, "status=connected") {
				log.Info("OVS port connected", "port", g.rep.Port, "status", strings.TrimSpace(out))
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("port %s not connected after %s: status %s %v\nOVS log:\n%s", g.rep.Port, timeout, strings.TrimSpace(out), err, ovs.LogTail("ovs-vswitchd", 15))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
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
