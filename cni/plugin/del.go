package plugin

import (
	"errors"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
)

// Del is the CNI DEL command. It releases IPAM, removes the ports of this
// container id and ifname (found by external_ids and by the derived name),
// the short link (and the link name of releases with the 48-bit ID), the
// socket directory and the device-info file.
//
// DEL is idempotent: what is already gone counts as removed, so a repeated
// DEL succeeds. It never removes what is not ours: a port of that name with
// another owner, container or ifname, a link that is not a symlink to this
// attachment's directory, a directory holding the pod's own files (kubelet
// removes those with the volume). When a newer sandbox of the same pod owns
// the port, or OVSDB cannot tell (unreachable, or the ports could not be
// read or removed), the socket directory and short link are kept: they are
// the newer sandbox's too (delplan.go decides). DEL is never stuck: a
// network configuration that does not parse (ADD refused it) and a socket
// directory it cannot remove do not fail it. It fails only while something
// of ours may remain (OVSDB unreachable; a port, link, IPAM or device-info
// removal that failed), and the runtime's retry cleans up.
func Del(args *skel.CmdArgs) error {
	start := time.Now()
	c, done, err := setup(args, true)
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
	cl, err := c.connect()
	reached := err == nil
	var ports portPlan
	var portsErr error
	if !reached {
		errs = append(errs, fmt.Errorf("OVSDB unreachable, the port of container %s ifname %s may remain: %w", args.ContainerID, args.IfName, err))
	} else {
		defer cl.Close()
		ports, portsErr = c.deletePorts(cl)
		if portsErr != nil {
			errs = append(errs, portsErr)
		}
	}
	uid, why := diskOwner(string(c.cargs.K8S_POD_UID), reached, portsErr, ports)
	if uid != "" {
		if p, err := c.paths(uid); err != nil {
			// ADD refuses such input, so there is nothing on disk to clean.
			c.log.Info("no socket paths for this attachment; nothing to clean on disk", "err", err)
		} else {
			if err := sockdir.RemoveLink(p); errors.Is(err, sockdir.ErrNotOurs) {
				c.log.Warn("short link not ours; left in place", "err", err)
			} else if err != nil {
				errs = append(errs, err)
			}
			// Releases before the 128-bit ID named the link with its first
			// 48 bits: an attachment made by one of them is cleaned too.
			if err := sockdir.RemoveLink(sockdir.LegacyLink(p)); err != nil && !errors.Is(err, sockdir.ErrNotOurs) {
				errs = append(errs, err)
			}
			// Whatever the pod left in its volume is the pod's: kubelet
			// removes the volume, and OVS no longer reaches it once the
			// short link is gone. It must never keep the pod Terminating.
			if err := sockdir.RemoveHostDir(p); err != nil {
				c.log.Warn("socket directory in the pod volume not removed; kubelet removes it with the volume", "err", err)
			}
			if f := c.conf.RuntimeConfig.CNIDeviceInfoFile; f != "" {
				if err := removeDeviceInfo(c.conf.Node.DeviceInfoDir, f, p.ComputeSocket); err != nil {
					errs = append(errs, err)
				}
			}
		}
	} else {
		c.log.Info(why, "err", portsErr)
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
// external_ids and by the derived name (planPorts decides which are ours).
// The usual case is one round trip: the port ADD inserted under the
// attachment's derived UUID is detached in the transaction that reads the
// rest; only ports of ours under other UUIDs (a replaced port, an older
// release's) need a second one.
func (c *call) deletePorts(cl *ovsdb.Client) (portPlan, error) {
	t := delTarget{
		containerID: c.args.ContainerID, ifName: c.args.IfName, podUID: string(c.cargs.K8S_POD_UID),
		derived: ovsdb.PortUUID(c.args.ContainerID, c.args.IfName),
	}
	name := ""
	if t.podUID != "" {
		if p, perr := c.paths(t.podUID); perr == nil {
			name = ovsdb.PortName(p.ID)
		}
	}
	found, err := cl.DetachAttachment(c.ctx, map[string]string{
		ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyContainerID: t.containerID, ovsdb.KeyIfName: t.ifName,
	}, name, t.derived)
	if err != nil {
		return portPlan{}, err
	}
	pl := planPorts(t, found)
	for _, v := range pl.verdicts {
		switch ids := v.port.ExternalIDs; v.fate {
		case portDetached:
			c.log.Info("port deleted", "port", v.port.Name, "uuid", v.port.UUID)
		case portDelete:
			c.log.Info("deleting port", "port", v.port.Name, "uuid", v.port.UUID)
		case portKeep:
			c.log.Info("port of that name belongs to someone else; kept", "port", v.port.Name, "owner", ids[ovsdb.KeyOwner], "container", ids[ovsdb.KeyContainerID])
		}
	}
	return pl, cl.DeletePorts(c.ctx, pl.delete...)
}
