package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kubevirt-vhostuser/vhostuser/cni/ovsdb"
	"github.com/kubevirt-vhostuser/vhostuser/cni/sockdir"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// client returns the deleting OVSDB connection, connecting when there is
// none (the previous one failed).
func (r *Reconciler) client(ctx context.Context) (*ovsdb.Client, error) {
	if r.ovs != nil {
		return r.ovs, nil
	}
	c, err := ovsdb.Connect(ctx, r.cfg.Endpoint, r.cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("connect to OVSDB at %s: %w", r.cfg.Endpoint, err)
	}
	r.ovs = c
	return c, nil
}

// dropClient closes the connection after an error: the next removal
// reconnects.
func (r *Reconciler) dropClient() {
	if r.ovs != nil {
		r.ovs.Close()
		r.ovs = nil
	}
}

// execute removes one confirmed candidate and reports every removal.
func (r *Reconciler) execute(ctx context.Context, c Candidate) []Removal {
	switch c.Kind {
	case KindPort:
		return r.removePort(ctx, c)
	case KindLink:
		return r.removeLink(c)
	case KindTempLink:
		err := sockdir.RemoveTemp(c.Name)
		return []Removal{{Kind: KindTempLink, Name: c.Name, Err: err}}
	}
	return nil
}

// removePort re-reads the attachment's ports fresh from OVSDB by its marks
// and deletes only rows that are still ours and still the same pod's: the
// monitor's copy may be stale, and a row without our owner mark is never
// ours to delete whatever else it carries. Then the attachment's short link
// and socket directory go.
func (r *Reconciler) removePort(ctx context.Context, c Candidate) []Removal {
	base := Removal{Kind: KindPort, Name: c.Name, PodUID: c.PodUID, Namespace: c.Namespace, Pod: c.Pod, IfName: c.IfName}
	cl, err := r.client(ctx)
	if err != nil {
		base.Err = err
		return []Removal{base}
	}
	ids := map[string]string{ovsdb.KeyOwner: ovsdb.Owner, ovsdb.KeyPodUID: c.PodUID, ovsdb.KeyIfName: c.IfName}
	if c.IfName == "" {
		delete(ids, ovsdb.KeyIfName)
	}
	rows, err := cl.PortsByExternalIDs(ctx, ids)
	if err != nil {
		r.dropClient()
		base.Err = fmt.Errorf("read ports of pod %s interface %s: %w", c.PodUID, c.IfName, err)
		return []Removal{base}
	}
	var uuids []string
	for _, p := range rows {
		if p.ExternalIDs[ovsdb.KeyOwner] != ovsdb.Owner || p.ExternalIDs[ovsdb.KeyPodUID] != c.PodUID ||
			(c.IfName != "" && p.ExternalIDs[ovsdb.KeyIfName] != c.IfName) {
			continue // belt and braces: the select already required these
		}
		uuids = append(uuids, p.UUID)
	}
	var out []Removal
	if len(uuids) > 0 {
		if err := cl.DeletePorts(ctx, uuids...); err != nil {
			r.dropClient()
			base.Err = err
			return []Removal{base} // keep the files while the port may still use them
		}
		out = append(out, base)
	}
	if c.IfName == "" {
		return out
	}
	p, err := r.cfg.Layout.For(socketpath.Attachment{PodUID: c.PodUID, IfName: c.IfName})
	if err != nil {
		return append(out, Removal{Kind: KindLink, Name: c.Name, PodUID: c.PodUID, IfName: c.IfName, Err: err})
	}
	return append(out, r.removeFiles(p, c)...)
}

// removeLink removes a short link of a gone pod (no port left) and the
// socket directory it points at.
func (r *Reconciler) removeLink(c Candidate) []Removal {
	if _, err := os.Lstat(c.Name); errors.Is(err, os.ErrNotExist) {
		return nil // went with its port this pass
	}
	p, err := r.cfg.Layout.For(socketpath.Attachment{PodUID: c.PodUID, IfName: c.IfName})
	if err != nil {
		return []Removal{{Kind: KindLink, Name: c.Name, PodUID: c.PodUID, IfName: c.IfName, Err: err}}
	}
	p.ShortLink = c.Name // this name, whichever release named it
	return r.removeFiles(p, c)
}

// removeFiles removes the short links (this release's name and the legacy
// one, each only if it points at p.HostDir) and the socket directory,
// reporting what existed.
func (r *Reconciler) removeFiles(p socketpath.Paths, c Candidate) []Removal {
	var out []Removal
	links := []socketpath.Paths{p}
	if legacy := sockdir.LegacyLink(p); legacy.ShortLink != p.ShortLink {
		links = append(links, legacy)
	}
	for _, lp := range links {
		if _, err := os.Lstat(lp.ShortLink); errors.Is(err, os.ErrNotExist) {
			continue
		}
		out = append(out, Removal{Kind: KindLink, Name: lp.ShortLink, PodUID: c.PodUID, Namespace: c.Namespace, Pod: c.Pod, IfName: c.IfName,
			Err: sockdir.RemoveLink(lp)})
	}
	if _, err := os.Lstat(p.HostDir); err == nil {
		out = append(out, Removal{Kind: KindSocketDir, Name: p.HostDir, PodUID: c.PodUID, Namespace: c.Namespace, Pod: c.Pod, IfName: c.IfName,
			Err: sockdir.RemoveHostDir(p)})
	}
	return out
}
