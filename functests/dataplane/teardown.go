package dataplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/internal/ovsenv"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// shutDown stops the VMIs as virt-handler does, deletes the attachments
// (twice) and checks that nothing of ours is left.
func (c *chain) shutDown(ctx context.Context) error {
	if err := c.shutDownVMIs(ctx); err != nil {
		return err
	}
	if err := c.cniDel(ctx); err != nil {
		return err
	}
	return c.checkNoLeak(ctx)
}

func (c *chain) shutDownVMIs(ctx context.Context) error {
	for _, g := range c.guests {
		if err := shutdown(ctx, c.handler, g, c.log); err != nil {
			return fmt.Errorf("%s: %w\n%s", g.rep.Name, err, tails(c.work, g.rep.Name))
		}
	}
	return nil
}

func (c *chain) cniDel(ctx context.Context) error {
	for _, g := range c.guests {
		// DEL twice: the second must succeed with nothing left to do.
		for n := 0; n < 2; n++ {
			if err := c.cni.Del(ctx, g.pod, g.containerID, vmiNetwork); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *chain) checkNoLeak(ctx context.Context) error {
	c.res.Leftovers = leftovers(ctx, c.ovs, c.layout, c.guests)
	if len(c.res.Leftovers) > 0 {
		return fmt.Errorf("left after CNI DEL: %s", strings.Join(c.res.Leftovers, "; "))
	}
	c.log.Info("nothing left", "ports", 0, "shortLinks", 0)
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
