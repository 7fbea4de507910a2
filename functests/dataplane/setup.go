package dataplane

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/functests/filelock"
	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/kubevirtbin"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcher"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcherpod"
	"github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// makeWorkDir creates the work directory, the node layout inside it and
// the log KubeVirt's code writes to.
func (c *chain) makeWorkDir() error {
	// Short and world-traversable: QEMU runs as uid 107 and binds through
	// the short links in here.
	work, err := os.MkdirTemp("", "vhu-e2e-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	c.work = work
	c.suffix = filepath.Base(work)[len("vhu-e2e-"):] // names the pods' sandboxes and netns
	c.res.WorkDir = work
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	if !c.cfg.KeepWorkDir {
		c.cleanups = append(c.cleanups, func() { os.RemoveAll(work) })
	}
	c.layout = socketpath.Layout{
		KubeletRoot: filepath.Join(work, "kubelet"),
		Volume:      socketpath.DefaultVolume,
		ShortDir:    filepath.Join(work, "s"),
	}
	kvLog, err := os.Create(filepath.Join(work, "kubevirt.log"))
	if err != nil {
		return err
	}
	launcher.LogKubeVirtTo(kvLog)
	c.cleanups = append(c.cleanups, func() { launcher.LogKubeVirtTo(os.Stderr); kvLog.Close() })
	return nil
}

func (c *chain) prepareGuest(ctx context.Context) error {
	var err error
	c.img, c.res.ImageCached, err = guest.Prepare(ctx, c.cfg.CacheDir, c.log)
	if err == nil {
		c.log.Info("guest image", "kernel", c.img.Kernel, "initrd", c.img.Initrd, "cached", c.res.ImageCached)
	}
	return err
}

func (c *chain) startOVS(ctx context.Context) error {
	// Per-port mempools: without hugepages DPDK has 512 MiB, and the
	// shared pool OVS sizes for 262144 mbufs does not fit a second time
	// when a vhost port moves NUMA socket on connect (ENOBUFS, no retry).
	ovs, err := ovsenv.Start(ctx, ovsenv.Options{Dir: c.work, Name: "vhu-e2e", KeepDir: c.cfg.KeepWorkDir,
		OtherConfig: map[string]string{"per-port-memory": "true"}})
	if err != nil {
		return err
	}
	c.ovs = ovs
	c.cleanups = append(c.cleanups, func() {
		if err := ovs.Stop(); err != nil {
			c.log.Warn("stop OVS", "err", err)
		}
	})
	if _, err := ovs.Vsctl(ctx, "add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev"); err != nil {
		return err
	}
	c.res.Netns = append(c.res.Netns, ovs.Netns)
	c.log.Info("OVS-DPDK running", "dir", ovs.Dir, "db", ovs.DBSocket, "netns", ovs.Netns, "hugepages", ovs.Hugepages, "bridge", bridge)
	return nil
}

func (c *chain) buildKubeVirt(ctx context.Context) error {
	dir := filepath.Join(c.cfg.CacheDir, "kubevirt-"+KubeVirtVersion)
	unlock, err := filelock.Lock(dir + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	var took time.Duration
	c.kv, took, err = kubevirtbin.Build(ctx, dir)
	if err == nil {
		c.log.Info("KubeVirt binaries", "dir", c.kv.Dir, "took", took.Round(time.Millisecond))
	}
	return err
}

func (c *chain) startHandler(context.Context) error {
	handler, err := launcherpod.StartHandler(filepath.Join(c.work, "handler"))
	if err != nil {
		return err
	}
	c.handler = handler
	c.cleanups = append(c.cleanups, handler.Stop)
	return nil
}

func (c *chain) setUpNode(context.Context) error {
	restore, err := prepareNode(c.work, c.ovs, c.layout)
	if err != nil {
		return err
	}
	c.cleanups = append(c.cleanups, restore)
	return nil
}

func (c *chain) newCNI() error {
	// What a user's NetworkAttachmentDefinition holds: nothing of the node's.
	confList, err := ConfList(netName, map[string]any{
		"bridge":   bridge,
		"logLevel": "debug",
	})
	if err != nil {
		return err
	}
	c.cni, err = NewCNI(c.cfg.BinDir, filepath.Join(c.work, "cni-cache"), confList)
	return err
}

// layOutPods names the two guests and their pods' sandboxes.
func (c *chain) layOutPods() {
	c.guests = []*guestRun{
		{rep: GuestReport{Name: "vm-a", IP: subnet + "1"}},
		{rep: GuestReport{Name: "vm-b", IP: subnet + "2"}},
	}
	for i, g := range c.guests {
		g.containerID = fmt.Sprintf("sandbox-%s-%d", c.suffix, i)
	}
}

// cniAdd creates guest i's pod and attaches it through the plugin.
func (c *chain) cniAdd(ctx context.Context, i int, g *guestRun) error {
	uid := fmt.Sprintf("7e57%04d-0000-4000-8000-%012d", i, os.Getpid())
	pod, err := NewPod(ctx, c.layout, "default", "virt-launcher-"+g.rep.Name, uid, "vhu-pod-"+c.suffix+fmt.Sprint(i))
	if err != nil {
		return err
	}
	c.res.Netns = append(c.res.Netns, pod.Netns)
	g.pod = pod
	c.cleanups = append(c.cleanups, func() { pod.Remove() })
	r, err := c.cni.Add(ctx, pod, g.containerID, vmiNetwork)
	if err != nil {
		return err
	}
	// Best effort DEL if the chain stops before its own DEL.
	c.cleanups = append(c.cleanups, func() { c.cni.Del(context.Background(), pod, g.containerID, vmiNetwork) })
	g.paths, err = c.layout.For(socketpath.Attachment{PodUID: uid, IfName: socketpath.PodInterfaceName(vmiNetwork)})
	if err != nil {
		return err
	}
	if len(r.Interfaces) != 1 || r.Interfaces[0].SocketPath != g.paths.HostSocket {
		return fmt.Errorf("CNI result interfaces %+v: want one with socketPath %s", r.Interfaces, g.paths.HostSocket)
	}
	g.rep.Port = ovsdb.PortName(g.paths.ID)
	g.rep.HostSocket = g.paths.HostSocket
	g.rep.ComputeSocket = g.paths.ComputeSocket
	c.log.Info("pod attached", "pod", pod.Name, "uid", uid, "ifname", r.Interfaces[0].Name,
		"ovsPort", g.rep.Port, "hostSocket", g.paths.HostSocket, "ovsSocket", g.paths.OVSSocket)
	return nil
}

// launchVMI starts guest i's virt-launcher pod with its VMI.
func (c *chain) launchVMI(ctx context.Context, i int, g *guestRun) error {
	peer := c.guests[1-i].rep.IP
	g.vmi = vmi.New(g.rep.Name, g.pod.UID,
		vmi.WithoutPodNetwork(),
		vmi.WithVhostUser(vmiNetwork, netName, fmt.Sprintf("02:00:00:00:00:%02x", i+1)),
		vmi.WithKernelBoot(guest.Cmdline(g.rep.Name, g.rep.IP+"/24", peer)),
		vmi.WithTerminationGracePeriod(5),
		vmi.WithFirmwareUUID())
	lp, err := launcherpod.Start(ctx, launcherpod.Config{
		Dir: filepath.Join(c.work, fmt.Sprintf("p%d", i)), Netns: g.pod.NetnsPath(), HookVolume: g.pod.VolumeDir,
		Bins: c.kv, SidecarBin: filepath.Join(c.cfg.BinDir, "vhostuser-sidecar"),
		Kernel: c.img.Kernel, Initrd: c.img.Initrd,
		VMI: g.vmi, Handler: c.handler,
		Out: func(container string) (io.Writer, error) {
			f, err := os.Create(filepath.Join(c.work, g.rep.Name+"-"+container+".log"))
			if err == nil {
				c.cleanups = append(c.cleanups, func() { f.Close() })
			}
			return f, err
		},
	})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tails(c.work, g.rep.Name))
	}
	g.launcher = lp
	c.cleanups = append(c.cleanups, lp.Kill)
	g.console = guest.Console{Path: filepath.Join(lp.Private, g.pod.UID, "virt-serial0-log")}
	g.rep.Console = g.console.Path
	c.log.Info("virt-launcher ready", "pod", g.pod.Name, "launcherSocket", filepath.Join(lp.Sockets, "launcher-sock"))
	return nil
}
