// Package plugin implements the CNI commands of the vhostuser plugin: ADD,
// DEL, CHECK, GC and STATUS. It wires the configuration (cni/config), the
// socket directory and short link (cni/sockdir) and the OVS port (cni/ovsdb).
//
// ADD needs K8S_POD_UID in CNI_ARGS and the pod's emptyDir. It creates
// <volume>/vhostuser/<ifname> (socketDirOwner:socketDirGroup, socketDirMode),
// the short symlink <shortSocketDir>/<id> to it, and in one OVSDB transaction
// the Interface (type dpdkvhostuserclient, options:vhost-server-path =
// <shortSocketDir>/<id>/vhost.sock), the Port "vhu<id>" and its insertion into
// the bridge; then IPAM, then the device-info file. external_ids on Port and
// Interface: vhostuser.kubevirt.io/{owner=vhostuser-cni, pod-namespace,
// pod-name, pod-uid, container-id, ifname, network}. A bridge made because of
// createBridge carries vhostuser.kubevirt.io/created-bridge=true. Any failure
// undoes what this ADD made, and only that. The result's interface has the
// host socket path as socketPath (CNI 1.1.0, the first version that has it).
//
// DEL removes the ports carrying this container id and ifname (found by
// external_ids and by name), the short link and the socket directory, the
// device-info file, and releases IPAM. It succeeds when everything is already
// gone, and fails only while something of ours may remain (OVSDB down: then
// it also keeps the directory and link, which a newer sandbox may use).
// Bridges are never deleted, except that a failed ADD removes a bridge it
// created itself while it is still empty.
//
// CHECK verifies the port (owner marks, bridge, type, vhost-server-path,
// options, mtu, vlan/trunk, no error), the socket directory's owner and mode,
// the short link, and IPAM. GC removes this network's ports, directories and
// links whose attachment is not in cni.dev/valid-attachments, and short links
// whose pod volume is gone. STATUS fails with code 50 when OVSDB is
// unreachable or the bridge is missing and createBridge is false.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Timeout bounds one plugin command; kubelet's own CNI timeout is longer.
const Timeout = 30 * time.Second

// call is the per-invocation state.
type call struct {
	args  *skel.CmdArgs
	conf  *config.NetConf
	cargs *config.Args
	log   *slog.Logger
	ctx   context.Context
	logf  io.Closer
}

func setup(args *skel.CmdArgs) (*call, context.CancelFunc, error) {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return nil, func() {}, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	cargs, err := config.ParseArgs(args.Args)
	if err != nil {
		return nil, func() {}, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	c := &call{args: args, conf: conf, cargs: cargs}
	var w io.Writer = io.Discard
	if conf.LogFile != "" {
		f, err := os.OpenFile(conf.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			w, c.logf = f, f
		} // a log that cannot be opened must not fail the network setup
	}
	c.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: conf.Level})).With(
		"pid", os.Getpid(), "container", args.ContainerID, "ifname", args.IfName,
		"pod", string(cargs.K8S_POD_NAMESPACE)+"/"+string(cargs.K8S_POD_NAME))
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	c.ctx = ctx
	return c, func() {
		cancel()
		if c.logf != nil {
			_ = c.logf.Close()
		}
	}, nil
}

func (c *call) paths(podUID string) (socketpath.Paths, error) {
	p, err := c.conf.Layout.For(socketpath.Attachment{PodUID: podUID, IfName: c.args.IfName})
	if err != nil {
		return p, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	return p, nil
}

func (c *call) perms() sockdir.Perms {
	return sockdir.Perms{UID: c.conf.Owner(), GID: c.conf.Group(), Mode: c.conf.Mode}
}

func (c *call) marks(podUID string) map[string]string {
	return map[string]string{
		ovsdb.KeyOwner:       ovsdb.Owner,
		ovsdb.KeyNamespace:   string(c.cargs.K8S_POD_NAMESPACE),
		ovsdb.KeyPodName:     string(c.cargs.K8S_POD_NAME),
		ovsdb.KeyPodUID:      podUID,
		ovsdb.KeyContainerID: c.args.ContainerID,
		ovsdb.KeyIfName:      c.args.IfName,
		ovsdb.KeyNetwork:     c.conf.Name,
	}
}

func (c *call) connect() (*ovsdb.Client, error) {
	return ovsdb.Connect(c.ctx, c.conf.Endpoint, c.log)
}

// Add is the CNI ADD command.
func Add(args *skel.CmdArgs) (err error) {
	start := time.Now()
	c, done, err := setup(args)
	defer done()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.log.Error("ADD failed", "err", err, "took", time.Since(start))
		} else {
			c.log.Info("ADD done", "took", time.Since(start))
		}
	}()
	uid := string(c.cargs.K8S_POD_UID)
	if uid == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			"K8S_POD_UID is missing from CNI_ARGS: the plugin must be called by Multus (or with K8S_POD_UID set)", "")
	}
	p, err := c.paths(uid)
	if err != nil {
		return err
	}

	// Deferred first so it runs last: the rollback below still needs the connection.
	var cl *ovsdb.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	created, err := sockdir.Create(p, c.perms())
	undo = append(undo, func() {
		if uerr := sockdir.Undo(p, created); uerr != nil {
			c.log.Warn("rollback of socket directory", "err", uerr)
		}
	})
	if err != nil {
		return fmt.Errorf("prepare socket directory for %s: %w", p.HostDir, err)
	}

	cl, err = c.connect()
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	name := config.PortName(p.ID)
	res, err := cl.AddPort(c.ctx, ovsdb.PortSpec{
		Bridge: c.conf.Bridge, CreateBridge: c.conf.CreateBridge, Name: name, ServerPath: p.OVSSocket,
		Options: c.conf.Options, MTU: c.conf.MTU, VLAN: c.conf.VLAN, Trunk: c.conf.Trunk, ExternalIDs: c.marks(uid),
	})
	if err != nil {
		return err
	}
	if res.Replaced != "" {
		c.log.Warn("replaced a stale port of ours with the same name", "port", name, "uuid", res.Replaced)
	}
	undo = append(undo, func() {
		// A fresh context: the command's own may be what ran out.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if uerr := cl.DeletePorts(ctx, res.PortUUID); uerr != nil {
			c.log.Warn("rollback of port", "port", name, "err", uerr)
		}
		if res.BridgeCreated {
			if _, uerr := cl.DeleteBridgeIfUnused(ctx, c.conf.Bridge); uerr != nil {
				c.log.Warn("rollback of bridge", "bridge", c.conf.Bridge, "err", uerr)
			}
		}
	})
	c.log.Info("port added", "port", name, "bridge", c.conf.Bridge, "path", p.OVSSocket, "bridgeCreated", res.BridgeCreated)

	result := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if c.conf.HasIPAM() {
		r, ierr := ipamAdd(c)
		if ierr != nil {
			return ierr
		}
		undo = append(undo, func() {
			if uerr := ipamDel(c); uerr != nil {
				c.log.Warn("rollback of IPAM", "err", uerr)
			}
		})
		result.IPs, result.Routes, result.DNS = r.IPs, r.Routes, r.DNS
		for _, ip := range result.IPs {
			ip.Interface = current.Int(0)
		}
	}
	result.Interfaces = []*current.Interface{{Name: c.args.IfName, Mac: c.conf.RuntimeConfig.Mac, Sandbox: c.args.Netns}}
	// socketPath exists in results from spec 1.1.0 on; 0.x results drop it in conversion.
	if ok, _ := version.GreaterThanOrEqualTo(c.conf.CNIVersion, "1.1.0"); ok {
		result.Interfaces[0].SocketPath = p.HostSocket
	}
	if c.conf.MTU > 0 {
		result.Interfaces[0].Mtu = c.conf.MTU
	}
	if f := c.conf.RuntimeConfig.CNIDeviceInfoFile; f != "" {
		if err := writeDeviceInfo(f, p.ComputeSocket); err != nil {
			return err
		}
		undo = append(undo, func() { _ = os.Remove(f) })
	}
	return types.PrintResult(result, c.conf.CNIVersion)
}

// Del is the CNI DEL command: best effort, idempotent, and it reports an
// error only while something of ours could not be removed.
func Del(args *skel.CmdArgs) error {
	start := time.Now()
	c, done, err := setup(args)
	defer done()
	if err != nil {
		// The runtime passes DEL the configuration ADD had: an invalid one
		// never created anything, and failing would block the pod's deletion.
		var e *types.Error
		if errors.As(err, &e) && e.Code == types.ErrDecodingFailure {
			return nil
		}
		return err
	}
	var errs []error
	if c.conf.HasIPAM() {
		if err := ipamDel(c); err != nil {
			errs = append(errs, err)
		}
	}
	uid := string(c.cargs.K8S_POD_UID)
	cl, err := c.connect()
	if err != nil {
		errs = append(errs, fmt.Errorf("OVSDB unreachable, the port of container %s ifname %s may remain: %w", args.ContainerID, args.IfName, err))
		// Without OVSDB we cannot tell whether a newer sandbox of the pod
		// owns the socket directory and short link (same pod UID and
		// ifname): keep them. This DEL fails anyway and is retried.
		c.log.Info("OVSDB unreachable: socket directory and link kept until a DEL that can see the ports")
		uid = ""
	} else {
		defer cl.Close()
		portUID, newer, err := c.deletePorts(cl, uid)
		if err != nil {
			errs = append(errs, err)
		}
		if uid == "" {
			uid = portUID
		}
		if newer {
			// A newer sandbox of the pod owns the port, and with it the same
			// socket directory and short link: a late DEL must leave them.
			c.log.Info("a newer sandbox owns this attachment; socket directory and link kept")
			uid = ""
		}
	}
	if uid != "" {
		if p, err := c.paths(uid); err != nil {
			// ADD refuses such input, so there is nothing on disk to clean.
			c.log.Info("no socket paths for this attachment; nothing to clean on disk", "err", err)
		} else {
			if err := sockdir.RemoveLink(p); err != nil {
				errs = append(errs, err)
			}
			if err := sockdir.RemoveHostDir(p); err != nil {
				errs = append(errs, err)
			}
			if f := c.conf.RuntimeConfig.CNIDeviceInfoFile; f != "" {
				if err := removeDeviceInfo(f, p.ComputeSocket); err != nil {
					errs = append(errs, err)
				}
			}
		}
	} else if len(errs) == 0 {
		c.log.Info("no K8S_POD_UID and no port found: no socket directory to clean")
	}
	err = errors.Join(errs...)
	if err != nil {
		c.log.Error("DEL incomplete", "err", err, "took", time.Since(start))
	} else {
		c.log.Info("DEL done", "took", time.Since(start))
	}
	return err
}

// deletePorts removes the ports of this container and ifname, found by
// external_ids and by the derived name, and returns the pod UID recorded on
// them (for a DEL without K8S_POD_UID) and whether a port of that name was
// kept because another sandbox of the same pod owns it.
func (c *call) deletePorts(cl *ovsdb.Client, uid string) (podUID string, newer bool, err error) {
	name := ""
	if uid != "" {
		if p, perr := c.paths(uid); perr == nil {
			name = config.PortName(p.ID)
		}
	}
	found, err := cl.PortsForDelete(c.ctx, map[string]string{
		ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyContainerID: c.args.ContainerID, ovsdb.KeyIfName: c.args.IfName,
	}, name)
	if err != nil {
		return "", false, err
	}
	var del []string
	seen := map[string]bool{}
	for _, pt := range found {
		if seen[pt.UUID] {
			continue
		}
		seen[pt.UUID] = true
		ids := pt.ExternalIDs
		if ids[ovsdb.KeyOwner] != ovsdb.Owner || ids[ovsdb.KeyContainerID] != c.args.ContainerID || ids[ovsdb.KeyIfName] != c.args.IfName {
			// Same name, another owner or a newer sandbox of the pod: not ours to delete.
			c.log.Info("port of that name belongs to someone else; kept", "port", pt.Name, "owner", ids[ovsdb.KeyOwner], "container", ids[ovsdb.KeyContainerID])
			if ids[ovsdb.KeyOwner] == ovsdb.Owner && uid != "" && ids[ovsdb.KeyPodUID] == uid && ids[ovsdb.KeyIfName] == c.args.IfName {
				newer = true
			}
			continue
		}
		del = append(del, pt.UUID)
		podUID = ids[ovsdb.KeyPodUID]
		c.log.Info("deleting port", "port", pt.Name, "uuid", pt.UUID)
	}
	return podUID, newer, cl.DeletePorts(c.ctx, del...)
}

// Check is the CNI CHECK command.
func Check(args *skel.CmdArgs) error {
	c, done, err := setup(args)
	defer done()
	if err != nil {
		return err
	}
	uid := string(c.cargs.K8S_POD_UID)
	if uid == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "K8S_POD_UID is missing from CNI_ARGS", "")
	}
	p, err := c.paths(uid)
	if err != nil {
		return err
	}
	if err := checkPrevResult(c, p); err != nil {
		return err
	}
	cl, err := c.connect()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkPort(c, cl, p); err != nil {
		return err
	}
	if err := sockdir.Check(p, c.perms()); err != nil {
		return err
	}
	if c.conf.HasIPAM() {
		if err := ipamCheck(c); err != nil {
			return err
		}
	}
	return nil
}

func checkPrevResult(c *call, p socketpath.Paths) error {
	if c.conf.RawPrevResult == nil {
		return fmt.Errorf("CHECK needs prevResult in the configuration (the result of ADD)")
	}
	if err := parsePrevResult(c.conf); err != nil {
		return err
	}
	prev, err := current.NewResultFromResult(c.conf.PrevResult)
	if err != nil {
		return fmt.Errorf("prevResult: %w", err)
	}
	for _, i := range prev.Interfaces {
		if i.Name == c.args.IfName {
			if i.SocketPath != "" && i.SocketPath != p.HostSocket {
				return fmt.Errorf("prevResult interface %s has socketPath %s, expected %s", i.Name, i.SocketPath, p.HostSocket)
			}
			return nil
		}
	}
	return fmt.Errorf("prevResult has no interface %s", c.args.IfName)
}

func checkPort(c *call, cl *ovsdb.Client, p socketpath.Paths) error {
	name := config.PortName(p.ID)
	pt, err := cl.PortByName(c.ctx, name)
	if err != nil {
		return err
	}
	if pt == nil {
		return fmt.Errorf("OVS port %s is missing", name)
	}
	for k, v := range c.marks(string(c.cargs.K8S_POD_UID)) {
		if pt.ExternalIDs[k] != v {
			return fmt.Errorf("OVS port %s: external_ids %s is %q, want %q (not this attachment's port)", name, k, pt.ExternalIDs[k], v)
		}
	}
	br, err := cl.BridgeOfPort(c.ctx, pt.UUID)
	if err != nil {
		return err
	}
	if br != c.conf.Bridge {
		return fmt.Errorf("OVS port %s is on bridge %q, want %q", name, br, c.conf.Bridge)
	}
	if got := derefInt(pt.Tag); got != c.conf.VLAN {
		return fmt.Errorf("OVS port %s has tag %d, want %d", name, got, c.conf.VLAN)
	}
	if !sameInts(pt.Trunks, c.conf.Trunk) {
		return fmt.Errorf("OVS port %s has trunks %v, want %v", name, pt.Trunks, c.conf.Trunk)
	}
	ifc, err := cl.InterfaceByName(c.ctx, name)
	if err != nil {
		return err
	}
	if ifc == nil {
		return fmt.Errorf("OVS interface %s is missing", name)
	}
	if ifc.Type != ovsdb.InterfaceType {
		return fmt.Errorf("OVS interface %s has type %q, want %q", name, ifc.Type, ovsdb.InterfaceType)
	}
	if got := ifc.Options[ovsdb.OptionServerPth]; got != p.OVSSocket {
		return fmt.Errorf("OVS interface %s has vhost-server-path %q, want %q", name, got, p.OVSSocket)
	}
	for k, v := range c.conf.Options {
		if ifc.Options[k] != v {
			return fmt.Errorf("OVS interface %s has option %s=%q, want %q", name, k, ifc.Options[k], v)
		}
	}
	if got := derefInt(ifc.MTURequest); got != c.conf.MTU {
		return fmt.Errorf("OVS interface %s has mtu_request %d, want %d", name, got, c.conf.MTU)
	}
	if ifc.Error != nil && *ifc.Error != "" {
		return fmt.Errorf("OVS interface %s reports an error: %s", name, *ifc.Error)
	}
	return nil
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[int]int{}
	for _, v := range a {
		m[v]++
	}
	for _, v := range b {
		m[v]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// Status is the CNI STATUS command: error 50 when OVSDB is unreachable or the
// bridge is missing and will not be created.
func Status(args *skel.CmdArgs) error {
	c, done, err := setup(args)
	defer done()
	if err != nil {
		return err
	}
	cl, err := c.connect()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "OVSDB is unreachable", err.Error())
	}
	defer cl.Close()
	if !c.conf.CreateBridge {
		br, err := cl.Bridge(c.ctx, c.conf.Bridge)
		if err != nil {
			return types.NewError(types.ErrPluginNotAvailable, "OVSDB does not answer", err.Error())
		}
		if br == nil {
			return types.NewError(types.ErrPluginNotAvailable,
				fmt.Sprintf("bridge %q does not exist and createBridge is false", c.conf.Bridge), "")
		}
	}
	if c.conf.HasIPAM() {
		if err := ipamStatus(c); err != nil {
			return err
		}
	}
	return nil
}
