package images

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// The project's images. The kustomize base (manifests/base) refers to these
// repository names; TestOverlays checks that they agree.
const (
	DefaultRegistryPrefix = "localhost/vhostuser"
	InstallerName         = "vhostuser-cni-installer"
	SidecarName           = "vhostuser-sidecar"
	AgentName             = "vhostuser-agent"

	// SidecarUser is the qemu uid/gid of virt-launcher: the sidecar shares
	// the hook-sidecar-sockets volume (fsGroup 107) with QEMU.
	SidecarUser = "107:107"

	InstallerEntrypoint = "/usr/local/bin/vhostuser-installer"
	InstallerCNIBinary  = "/opt/vhostuser/bin/vhostuser"
	SidecarEntrypoint   = "/usr/local/bin/vhostuser-sidecar"
	AgentEntrypoint     = "/usr/local/bin/vhostuser-agent"
)

// Env is the environment of both images: there is no shell, PATH is for
// humans using kubectl exec with the binaries' absolute names in mind.
var Env = []string{"PATH=/usr/local/bin"}

// Project returns the specs of the installer, sidecar and agent images from the
// static binaries in binDir (make build's output).
func Project(binDir string) []Spec {
	return []Spec{
		{
			Name:        InstallerName,
			Title:       "vhostuser CNI installer",
			Description: "Installs the vhostuser CNI plugin into the node's CNI bin directory",
			Files: []File{
				{Path: InstallerEntrypoint, Source: filepath.Join(binDir, "vhostuser-installer"), Mode: 0o755, Static: true},
				{Path: InstallerCNIBinary, Source: filepath.Join(binDir, "vhostuser"), Mode: 0o755, Static: true},
			},
			Entrypoint: []string{InstallerEntrypoint},
			// Root: it writes the host's root-owned CNI bin directory.
			User: "0:0",
			Env:  Env,
		},
		{
			Name:        SidecarName,
			Title:       "vhostuser KubeVirt hook sidecar",
			Description: "KubeVirt network binding sidecar: QEMU serves a vhost-user socket for OVS-DPDK",
			Files: []File{
				{Path: SidecarEntrypoint, Source: filepath.Join(binDir, "vhostuser-sidecar"), Mode: 0o755, Static: true},
			},
			Entrypoint: []string{SidecarEntrypoint},
			User:       SidecarUser,
			Env:        Env,
		},
		{
			Name:        AgentName,
			Title:       "vhostuser node agent",
			Description: "Per-VM metrics, Events and leak reconciliation for vhostuser ports on OVS-DPDK",
			Files: []File{
				{Path: AgentEntrypoint, Source: filepath.Join(binDir, "vhostuser-agent"), Mode: 0o755, Static: true},
			},
			Entrypoint: []string{AgentEntrypoint},
			// Root: the OVS database socket and the short links are root's.
			User: "0:0",
			Env:  Env,
		},
	}
}

var badTagChar = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag turns a version such as "v1.2.0+dirty" into a valid image tag.
func Tag(version string) (string, error) {
	t := badTagChar.ReplaceAllString(version, "-")
	t = strings.TrimLeft(t, ".-")
	if t == "" {
		return "", fmt.Errorf("version %q gives an empty image tag: set -tag", version)
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return t, nil
}
