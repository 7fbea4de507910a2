package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// GC is the CNI GC command. It removes every port of this network owned by
// the plugin whose (container id, ifname) is not in cni.dev/valid-attachments,
// with its socket directory and short link, short links whose target is
// gone (the pod's volume was deleted without a DEL), and temporary short link
// names a killed run left.
func GC(args *skel.CmdArgs) error {
	c, done, err := setup(args)
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
		if valid[[2]string{ids[ovsdb.KeyContainerID], ids[ovsdb.KeyIfName]}] {
			continue
		}
		stale = append(stale, p.UUID)
		c.log.Info("GC: stale port", "port", p.Name, "container", ids[ovsdb.KeyContainerID], "ifname", ids[ovsdb.KeyIfName])
		if sp, err := c.conf.Layout.For(socketpath.Attachment{PodUID: ids[ovsdb.KeyPodUID], IfName: ids[ovsdb.KeyIfName]}); err == nil {
			paths = append(paths, sp)
		}
	}
	if err := cl.DeletePorts(c.ctx, stale...); err != nil {
		errs = append(errs, err)
	}
	for _, sp := range paths {
		errs = append(errs, sockdir.RemoveLink(sp), sockdir.RemoveHostDir(sp))
	}
	errs = append(errs, c.gcDanglingLinks())
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

// gcDanglingLinks removes short links named like ours whose target, a socket
// directory under kubeletRoot, no longer exists.
func (c *call) gcDanglingLinks() error {
	dir := c.conf.Layout.ShortDir
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	podsDir := filepath.Join(c.conf.Layout.KubeletRoot, "pods") + "/"
	var errs []error
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 || !isID(e.Name()) {
			continue
		}
		link := filepath.Join(dir, e.Name())
		t, err := os.Readlink(link)
		if err != nil || !strings.HasPrefix(t, podsDir) || !strings.Contains(t, "/"+socketpath.SocketsDir+"/") {
			continue
		}
		if _, err := os.Lstat(t); errors.Is(err, os.ErrNotExist) {
			c.log.Info("GC: dangling short link", "link", link, "target", t)
			if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func isID(s string) bool {
	if len(s) != socketpath.IDLen {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
