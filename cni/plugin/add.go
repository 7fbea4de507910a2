package plugin

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
)

// Add is the CNI ADD command. It needs K8S_POD_UID in CNI_ARGS, the pod's
// emptyDir, and fs.protected_symlinks=1 (else it refuses with code 50: see
// cni/sockdir). Top to bottom it:
//
//   - makes the volume root sticky, creates <volume>/vhostuser (root's, 0755)
//     and <volume>/vhostuser/<ifname> (root:socketDirGroup, socketDirMode),
//     and points the short link <shortSocketDir>/<id> at it;
//   - in one OVSDB transaction creates the Interface (dpdkvhostuserclient,
//     vhost-server-path <shortSocketDir>/<id>/vhost.sock, the configured
//     options and mtu), the Port "vhu<id>" (vlan, trunk) under the UUID
//     derived from (container id, ifname), both with the owner marks, and
//     inserts it into the bridge, which it creates (marked
//     vhostuser.kubevirt.io/created-bridge=true) when createBridge allows;
//     a stale port of ours of the same name is replaced, anyone else's is an
//     error;
//   - runs IPAM ADD, then writes the device-info file.
//
// A failed ADD leaves nothing: every step that succeeded is undone in
// reverse order, and only what this ADD made (a directory or link it found
// is kept; the bridge goes only if this ADD created it and it is still
// empty). The result's interface carries the host socket path as socketPath
// from CNI 1.1.0 on, the first version that has the field.
func Add(args *skel.CmdArgs) (err error) {
	start := time.Now()
	c, done, err := setup(args, false)
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
	if err := sockdir.ProtectedSymlinks(); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "refusing ADD: "+err.Error(), "")
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
	name := ovsdb.PortName(p.ID)
	res, err := cl.AddPort(c.ctx, ovsdb.PortSpec{
		Bridge: c.conf.Bridge, CreateBridge: c.conf.CreateBridge, Name: name, ServerPath: p.OVSSocket,
		UUID:    ovsdb.PortUUID(c.args.ContainerID, c.args.IfName),
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
		if err := writeDeviceInfo(c.conf.Node.DeviceInfoDir, f, p.ComputeSocket); err != nil {
			return err
		}
		undo = append(undo, func() { _ = os.Remove(f) })
	}
	return types.PrintResult(result, c.conf.CNIVersion)
}
