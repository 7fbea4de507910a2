package ovsenv

import (
	"os"
	"time"
)

// Options tune Start. The zero value is a good default.
type Options struct {
	// Dir is the parent of the instance directory (default: os.TempDir()).
	// Keep it short: the database socket path must fit in 108 bytes.
	Dir string
	// Name makes the instance recognisable in the netns and DPDK prefix
	// (default "ovsenv"); a random suffix is always added.
	Name string
	// Schema is the Open_vSwitch schema file (default DefaultSchema).
	Schema string
	// Hugepages: "auto" (default, use them when at least 128 free 2 MiB
	// pages exist), "on" or "off".
	Hugepages string
	// OtherConfig is added to Open_vSwitch other_config before ovs-vswitchd starts.
	OtherConfig map[string]string
	// NoVswitchd starts only ovsdb-server.
	NoVswitchd bool
	// StartTimeout bounds each daemon's start (default 60 s).
	StartTimeout time.Duration
	// KeepDir leaves the instance directory (logs) after Stop.
	KeepDir bool
}

// withDefaults fills in the defaults documented on the fields.
func (opts Options) withDefaults() Options {
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	if opts.Name == "" {
		opts.Name = "ovsenv"
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	return opts
}
