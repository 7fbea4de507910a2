// Package plugin implements the CNI commands of the vhostuser plugin, one
// file per verb (add.go, del.go, check.go, gc.go, status.go), each stating
// in its doc comment what the verb guarantees. It wires the configuration
// (cni/config), the socket directory and short link (cni/sockdir), the OVS
// port (cni/ovsdb) and the IPAM plugin (ipam.go, through cni/delegate).
//
// One attachment (container id, ifname) of a pod is: the socket directory
// <volume>/vhostuser/<ifname> in the pod's emptyDir, the short symlink
// <shortSocketDir>/<id> to it, the OVS port "vhu<id>" whose interface OVS
// connects through that link, the IPAM allocation, and the device-info file.
// The port and interface carry external_ids vhostuser.kubevirt.io/{owner=
// vhostuser-cni, pod-namespace, pod-name, pod-uid, container-id, ifname,
// network}: they are how DEL, CHECK and GC recognise what is theirs. Bridges
// are never deleted, except that a failed ADD removes a bridge it created
// itself while it is still empty.
package plugin

import (
	"context"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

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

// setup parses the node and network configuration and opens the log. For
// cleanup commands (DEL, GC) node settings in the network configuration are
// ignored rather than refused.
func setup(args *skel.CmdArgs, cleanup bool) (*call, context.CancelFunc, error) {
	node, err := config.LoadNode(config.NodeConfigFile())
	if err != nil {
		return nil, func() {}, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "fix the node configuration the installer DaemonSet writes")
	}
	parse := config.ParseWithNode
	if cleanup {
		parse = config.ParseForCleanup
	}
	conf, err := parse(args.StdinData, node)
	if err != nil {
		return nil, func() {}, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	cargs, err := config.ParseArgs(args.Args)
	if err != nil {
		return nil, func() {}, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	c := &call{args: args, conf: conf, cargs: cargs}
	// No log file: a handler that is never enabled, so no record is built
	// (a text handler on io.Discard would format every one).
	var h slog.Handler = slog.DiscardHandler
	if conf.Node.LogFile != "" {
		f, err := os.OpenFile(conf.Node.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			c.logf = f
			h = slog.NewTextHandler(f, &slog.HandlerOptions{Level: conf.Level})
		} // a log that cannot be opened must not fail the network setup
	}
	c.log = slog.New(h).With(
		"pid", os.Getpid(), "container", args.ContainerID, "ifname", args.IfName,
		"pod", string(cargs.K8S_POD_NAMESPACE)+"/"+string(cargs.K8S_POD_NAME))
	if len(conf.Repeated) > 0 {
		c.log.Warn("the network configuration repeats node settings (same value: accepted); remove them from the NetworkAttachmentDefinition", "fields", conf.Repeated)
	}
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
	// The directory is root's (the plugin's): see cni/sockdir.
	return sockdir.Perms{UID: os.Geteuid(), GID: c.conf.Node.Group(), Mode: c.conf.Node.Mode()}
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
	return ovsdb.Connect(c.ctx, c.conf.Node.Endpoint(), c.log)
}
