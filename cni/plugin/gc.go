package plugin

import (
	"errors"
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// GC is the CNI GC command. It may remove:
//
//   - a port of this network owned by the plugin, with its short link, only
//     when its (container id, ifname) is not in cni.dev/valid-attachments
//     AND its pod's volume is gone from the node;
//   - short links named like ours whose target, a socket directory under
//     kubeletRoot, is gone (the pod's volume was deleted without a DEL);
//   - every temporary short link name a killed run left;
//   - what IPAM GC removes.
//
// It never removes a port of another owner or another network, a port whose
// pod volume still exists, any port when the list is absent or empty, a
// bridge, or anything inside a pod's volume. A network name is not unique
// across namespaces (the NAD's namespace and name never reach the plugin),
// and some Multus versions forward lists that would make live attachments
// look stale, so the list alone never condemns a live pod. A sandbox
// re-created while the pod lives is handled by its ADD, which replaces the
// port.
func GC(args *skel.CmdArgs) error {
	c, done, err := setup(args, true)
	defer done()
	if err != nil {
		return err
	}
	valid := map[[2]string]bool{}
	for _, a := range c.conf.ValidAttachments {
		valid[[2]string{a.ContainerID, a.IfName}] = true
	}
	var errs []error
	cl, err := c.connect()
	if err != nil {
		return err
	}
	defer cl.Close()
	ports, err := cl.PortsByExternalIDs(c.ctx, map[string]string{ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyNetwork: c.conf.Name})
	if err != nil {
		return err
	}
	var stale []string
	var paths []socketpath.Paths
	for _, p := range ports {
		ids := p.ExternalIDs
		if len(valid) == 0 {
			c.log.Info("GC: no valid-attachments list; no port removed")
			break
		}
		if valid[[2]string{ids[ovsdb.KeyContainerID], ids[ovsdb.KeyIfName]}] {
			continue
		}
		sp, err := c.conf.Layout.For(socketpath.Attachment{PodUID: ids[ovsdb.KeyPodUID], IfName: ids[ovsdb.KeyIfName]})
		if err == nil {
			if _, serr := os.Lstat(sp.VolumeDir); serr == nil || !errors.Is(serr, os.ErrNotExist) {
				c.log.Info("GC: port not in the list but its pod's volume exists; kept", "port", p.Name, "pod-uid", ids[ovsdb.KeyPodUID])
				continue
			}
			paths = append(paths, sp)
		}
		stale = append(stale, p.UUID)
		c.log.Info("GC: stale port", "port", p.Name, "container", ids[ovsdb.KeyContainerID], "ifname", ids[ovsdb.KeyIfName])
	}
	if err := cl.DeletePorts(c.ctx, stale...); err != nil {
		errs = append(errs, err)
	}
	for _, sp := range paths {
		if err := sockdir.RemoveLink(sp); err != nil && !errors.Is(err, sockdir.ErrNotOurs) {
			errs = append(errs, err)
		}
	}
	dangling, err := sockdir.RemoveDanglingLinks(c.conf.Layout)
	for _, d := range dangling {
		c.log.Info("GC: dangling short link", "link", d.Link, "target", d.Target)
	}
	errs = append(errs, err)
	// Temporary short link names are never live state: whichever attachment
	// a killed ADD left one for, it is garbage (a concurrent ADD retries).
	removed, err := sockdir.RemoveAllTemps(c.conf.Layout.ShortDir)
	for _, name := range removed {
		c.log.Info("GC: temporary short link", "link", name)
	}
	errs = append(errs, err)
	if c.conf.HasIPAM() {
		errs = append(errs, ipamGC(c))
	}
	return errors.Join(errs...)
}
