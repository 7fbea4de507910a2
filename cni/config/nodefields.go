package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// nodeFields are the configuration keys that belong to the node, not to a
// network: they reach host paths or decide who may use the socket directory,
// and a NetworkAttachmentDefinition is not trusted with that (the plugin runs
// as root). socketDirOwner no longer exists (the directory is root's).
var nodeFields = []string{"kubeletRoot", "shortSocketDir", "ovsdbSocket", "socketDirOwner", "socketDirGroup", "socketDirMode", "logFile", "deviceInfoDir"}

// checkNodeFields refuses a node setting in a network configuration's keys,
// naming the field and the fix, unless it repeats the node's value; it
// returns the repeated ones.
func checkNodeFields(keys map[string]json.RawMessage, n NodeConf) ([]string, error) {
	var repeated []string
	for key, raw := range keys {
		for _, k := range nodeFields {
			// encoding/json matches names case-insensitively: so do we.
			if !strings.EqualFold(key, k) {
				continue
			}
			if k == "socketDirOwner" {
				return nil, fmt.Errorf(`"socketDirOwner" is no longer a setting: the socket directory is always root's, so the pod cannot redirect OVS (docs/security.md); remove it`)
			}
			if !n.sameValue(k, raw) {
				return nil, fmt.Errorf(`%q is a node setting, not a network's: remove it from the NetworkAttachmentDefinition and set it on the installer DaemonSet, which writes the node configuration %s (docs/configuration.md)`, k, DefaultNodeConfigFile)
			}
			repeated = append(repeated, k)
		}
	}
	return repeated, nil
}

// sameValue tells whether a node setting repeated in a network configuration
// has the node's value.
func (n NodeConf) sameValue(field string, raw json.RawMessage) bool {
	var s string
	var i int
	switch field {
	case "socketDirGroup":
		return json.Unmarshal(raw, &i) == nil && n.SocketDirGroup != nil && i == *n.SocketDirGroup
	case "socketDirOwner":
		return false
	}
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	switch field {
	case "kubeletRoot":
		return s == n.KubeletRoot
	case "shortSocketDir":
		return s == n.ShortSocketDir
	case "ovsdbSocket":
		ep, err := endpoint(s)
		return err == nil && ep == n.endpoint
	case "socketDirMode":
		m, err := strconv.ParseUint(s, 8, 32)
		return err == nil && uint32(m) == n.mode
	case "logFile":
		return s == n.LogFile
	case "deviceInfoDir":
		return s == n.DeviceInfoDir
	}
	return false
}
