// Package networkinfo reads KubeVirt's network-info downward API file
// (/etc/podinfo/network-info), mounted in the sidecar when the binding is
// registered with `downwardAPI: device-info`. It carries, per VMI network, the
// Multus network-status of the attachment: MTU and device-info.
//
// The vhost-user device-info a CNI may publish ({"type":"vhost-user",
// "vhost-user":{"mode":"client"|"server","path":...}}) is read and checked,
// but the socket path in the domain always comes from pkg/socketpath: the
// contract path wins, because it is the same in every pod of a migration,
// while a device-info path need not be. Both mode words are accepted since
// plugins disagree on whether they describe QEMU's or the vswitch's role.
package networkinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// DefaultPath is where KubeVirt mounts the network-info file.
const DefaultPath = "/etc/podinfo/network-info"

// maxSize bounds what we read: the file holds a few interfaces, not megabytes.
const maxSize = 1 << 20

// Interface is what the file says about one VMI network.
type Interface struct {
	Network       string // VMI spec.networks[].name
	MTU           uint
	VhostUserPath string // device-info vhost-user path, if any
	VhostUserMode string // "client" or "server", as written by the CNI
}

// Info maps VMI network names to their entries.
type Info map[string]Interface

// MTU returns the MTU per network for the entries that have one.
func (i Info) MTU() map[string]uint {
	m := make(map[string]uint, len(i))
	for n, e := range i {
		if e.MTU > 0 {
			m[n] = e.MTU
		}
	}
	return m
}

type file struct {
	Interfaces []struct {
		Network    string      `json:"network"`
		MTU        json.Number `json:"mtu,omitempty"`
		DeviceInfo *struct {
			Type      string `json:"type"`
			Version   string `json:"version"`
			VhostUser *struct {
				Mode string `json:"mode"`
				Path string `json:"path"`
			} `json:"vhost-user,omitempty"`
		} `json:"deviceInfo,omitempty"`
	} `json:"interfaces"`
}

// Parse decodes the file's content.
func Parse(b []byte) (Info, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse network-info: %w", err)
	}
	info := make(Info, len(f.Interfaces))
	for i, fi := range f.Interfaces {
		if fi.Network == "" {
			return nil, fmt.Errorf("network-info: interfaces[%d].network is empty", i)
		}
		e := Interface{Network: fi.Network}
		if fi.MTU != "" {
			mtu, err := fi.MTU.Int64()
			if err != nil || mtu < 0 || mtu > 65535 {
				return nil, fmt.Errorf("network-info: interfaces[%d].mtu %q is not an MTU between 0 and 65535", i, fi.MTU)
			}
			e.MTU = uint(mtu)
		}
		if d := fi.DeviceInfo; d != nil && d.Type == "vhost-user" && d.VhostUser != nil {
			switch d.VhostUser.Mode {
			case "client", "server", "":
			default:
				return nil, fmt.Errorf("network-info: interfaces[%d] (network %q): deviceInfo vhost-user mode %q is neither client nor server", i, fi.Network, d.VhostUser.Mode)
			}
			e.VhostUserPath = d.VhostUser.Path
			e.VhostUserMode = d.VhostUser.Mode
		}
		info[fi.Network] = e
	}
	return info, nil
}

// Read reads and parses path. With wait 0 a missing or empty file is not an
// error (the binding did not ask for device-info, or the pod has no
// kubevirt.io/network-info annotation yet) and gives an empty Info. With
// wait > 0 the content is expected: Read polls until the file exists and is
// not empty, then fails once wait has passed. The kubelet creates a downward
// API file empty while the annotation is absent and fills it in place later
// (KubeVirt's own SR-IOV reader polls for non-empty content the same way).
func Read(path string, wait time.Duration) (Info, error) {
	deadline := time.Now().Add(wait)
	for {
		b, err := readBounded(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read network-info: %w", err)
		}
		if err == nil && len(b) > 0 {
			return Parse(b)
		}
		if wait <= 0 {
			return Info{}, nil
		}
		if time.Now().After(deadline) {
			state := "did not appear"
			if err == nil {
				state = "stayed empty"
			}
			return nil, fmt.Errorf("network-info %s %s within %s: register the binding with downwardAPI: device-info, or start the sidecar without -network-info-wait", path, state, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSize)
	}
	return b, nil
}
