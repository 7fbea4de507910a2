package domain

const (
	// DefaultBindingName is the network binding name of the plugin in the KubeVirt CR.
	DefaultBindingName = "vhostuser"
	// DefaultMaxQueues caps the queue pairs of a multiqueue interface.
	DefaultMaxQueues = 8
	// QueueSize is the rx and tx virtqueue size: the largest QEMU allows for
	// vhost-user, which absorbs bursts from the vswitch without drops.
	QueueSize = 1024
	// AliasPrefix is KubeVirt's prefix for user aliases: ua-<interface name>.
	AliasPrefix = "ua-"

	modelVirtio             = "virtio"
	modelVirtioTransitional = "virtio-transitional"
)

// Options configure Rewrite.
type Options struct {
	// BindingName selects the VMI interfaces to serve (binding.name); empty means DefaultBindingName.
	BindingName string
	// MaxQueues caps multiqueue; 0 means DefaultMaxQueues.
	MaxQueues uint
	// MTU per VMI network name, from network-info; absent or 0 means no <mtu>.
	MTU map[string]uint
}

func (o Options) withDefaults() Options {
	if o.BindingName == "" {
		o.BindingName = DefaultBindingName
	}
	if o.MaxQueues == 0 {
		o.MaxQueues = DefaultMaxQueues
	}
	return o
}
