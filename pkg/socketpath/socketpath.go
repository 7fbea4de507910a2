// Package socketpath is the contract between the vhostuser CNI plugin and the
// KubeVirt hook sidecar: where the vhost-user socket of one VMI interface lives.
//
// Three views of the same socket exist:
//
//   - the host view, inside the virt-launcher pod's emptyDir volume
//     <kubeletRoot>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>/vhostuser/<ifname>/vhost.sock;
//   - the OVS view, a short path through a symlink <shortDir>/<id> -> host directory,
//     because a unix socket path must fit in 108 bytes and the host view does not;
//   - the compute view, what QEMU in the compute container is told:
//     /var/run/kubevirt-hooks/vhostuser/<ifname>/vhost.sock.
//
// The compute view depends only on the pod interface name, which KubeVirt derives
// from the VMI network name. It is therefore identical in the source and target
// pods of a live migration, as it must be: the source domain XML is what migrates.
//
// The socket sits two directories below the volume root on purpose: virt-launcher
// dials every file directly inside each sub-directory of /var/run/kubevirt-hooks as
// a hook sidecar, and a QEMU socket there would fail the VM.
package socketpath

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/internal/namecheck"
)

const (
	// DefaultKubeletRoot is kubelet's --root-dir default.
	DefaultKubeletRoot = "/var/lib/kubelet"
	// DefaultVolume is the emptyDir KubeVirt adds to every virt-launcher pod that runs a hook sidecar.
	DefaultVolume = "hook-sidecar-sockets"
	// DefaultShortDir holds the short symlinks OVS connects through.
	DefaultShortDir = "/var/run/vhostuser"

	// ComputeHooksDir is where the compute container mounts the whole DefaultVolume.
	ComputeHooksDir = "/var/run/kubevirt-hooks"
	// SocketsDir is our directory at the volume root. It contains only
	// directories, so virt-launcher's hook discovery never dials anything in it.
	SocketsDir = "vhostuser"
	// SocketName is the socket file QEMU creates in the per-interface directory.
	SocketName = "vhost.sock"

	// MaxSocketPath is the longest unix socket path in bytes: sun_path is 108 bytes including the NUL.
	MaxSocketPath = 107
	// MaxIfNameLen is the kernel's IFNAMSIZ minus the NUL, which CNI applies to CNI_IFNAME.
	MaxIfNameLen = 15
	// MaxPodUIDLen bounds the pod UID; Kubernetes UIDs are 36-character UUIDs.
	MaxPodUIDLen = 64
	// IDLen is the length of the attachment ID in hex characters: 128 bits,
	// so that no tenant can engineer two attachments with one ID (the pod
	// UID is the API server's, but the ifname is the tenant's choice).
	IDLen = 32
	// MaxShortDirLen is the longest shortSocketDir that keeps the OVS socket
	// path <shortDir>/<id>/vhost.sock within MaxSocketPath.
	MaxShortDirLen = MaxSocketPath - (1 + IDLen + 1 + len(SocketName))

	// podIfacePrefix and podIfaceHashLen match KubeVirt's naming of secondary pod interfaces.
	podIfacePrefix  = "pod"
	podIfaceHashLen = 11
)

// Layout is the node-level configuration the paths derive from.
// The zero value is not valid: use Defaults or fill every field.
type Layout struct {
	KubeletRoot string // kubelet --root-dir
	Volume      string // emptyDir volume name in the virt-launcher pod
	ShortDir    string // directory of the short symlinks OVS connects through
}

// Defaults returns the layout of a stock node.
func Defaults() Layout {
	return Layout{KubeletRoot: DefaultKubeletRoot, Volume: DefaultVolume, ShortDir: DefaultShortDir}
}

// Attachment identifies one vhost-user interface of one pod.
type Attachment struct {
	PodUID string // K8S_POD_UID
	IfName string // CNI_IFNAME, e.g. pod + 11 hex chars of sha256(VMI network name)
}

// Paths are every view of one attachment's socket.
type Paths struct {
	ID            string // stable short ID of the attachment (hex)
	VolumeDir     string // host: the pod's emptyDir; must already exist
	HostDir       string // host: per-interface directory QEMU creates the socket in
	HostSocket    string // host: the socket itself
	ShortLink     string // host: symlink to HostDir
	OVSSocket     string // host: the path OVS connects to (vhost-server-path)
	ComputeSocket string // compute container: the path in the domain XML
}

// Validate checks the layout: absolute, clean paths, a plain volume name, and a
// short directory leaving room for the socket path within MaxSocketPath.
func (l Layout) Validate() error {
	if err := checkDir("kubeletRoot", l.KubeletRoot); err != nil {
		return err
	}
	if err := checkDir("shortSocketDir", l.ShortDir); err != nil {
		return err
	}
	if err := checkName("volume", l.Volume, 63); err != nil {
		return err
	}
	if n := len(l.ovsSocket(strings.Repeat("0", IDLen))); n > MaxSocketPath {
		return fmt.Errorf("shortSocketDir %q is too long: the OVS socket path would be %d bytes, the limit is %d (shortSocketDir at most %d bytes); use a shorter directory such as %s",
			l.ShortDir, n, MaxSocketPath, MaxShortDirLen, DefaultShortDir)
	}
	return nil
}

// For derives every path of an attachment. It refuses any input that could
// make a path leave the directories we own or exceed the socket path limit.
func (l Layout) For(a Attachment) (Paths, error) {
	if err := l.Validate(); err != nil {
		return Paths{}, err
	}
	if err := ValidatePodUID(a.PodUID); err != nil {
		return Paths{}, err
	}
	compute, err := ComputeSocket(a.IfName)
	if err != nil {
		return Paths{}, err
	}
	id := AttachmentID(a)
	volumeDir := filepath.Join(l.KubeletRoot, "pods", a.PodUID, "volumes", "kubernetes.io~empty-dir", l.Volume)
	hostDir := filepath.Join(volumeDir, SocketsDir, a.IfName)
	p := Paths{
		ID:            id,
		VolumeDir:     volumeDir,
		HostDir:       hostDir,
		HostSocket:    filepath.Join(hostDir, SocketName),
		ShortLink:     filepath.Join(l.ShortDir, id),
		OVSSocket:     l.ovsSocket(id),
		ComputeSocket: compute,
	}
	if len(p.OVSSocket) > MaxSocketPath { // unreachable after Validate; kept as the invariant's guard
		return Paths{}, fmt.Errorf("OVS socket path %q is %d bytes, over the %d-byte limit", p.OVSSocket, len(p.OVSSocket), MaxSocketPath)
	}
	return p, nil
}

func (l Layout) ovsSocket(id string) string {
	return filepath.Join(l.ShortDir, id, SocketName)
}

// ComputeSocket is the socket path as QEMU sees it in the compute container.
// It depends on the pod interface name only, never on the pod UID, so it is
// the same in the source and target pods of a live migration.
func ComputeSocket(ifName string) (string, error) {
	if err := ValidateIfName(ifName); err != nil {
		return "", err
	}
	return filepath.Join(ComputeHooksDir, SocketsDir, ifName, SocketName), nil
}

// ComputeSocketForNetwork is ComputeSocket for the VMI network name, as the sidecar knows it.
func ComputeSocketForNetwork(networkName string) (string, error) {
	if networkName == "" {
		return "", fmt.Errorf("network name is empty")
	}
	return ComputeSocket(PodInterfaceName(networkName))
}

// PodInterfaceName is the pod interface name KubeVirt gives the secondary
// network networkName (spec.networks[].name of the VMI): "pod" followed by the
// first 11 hex characters of its SHA-256. Multus passes it as CNI_IFNAME.
func PodInterfaceName(networkName string) string {
	sum := sha256.Sum256([]byte(networkName))
	return podIfacePrefix + hex.EncodeToString(sum[:])[:podIfaceHashLen]
}

// AttachmentID is a stable, unique-per-node ID of an attachment: the first
// 128 bits of SHA-256(pod UID, NUL, ifname). It names the short symlink and
// the OVS port; a NUL separates the fields so no two distinct attachments
// hash the same input.
func AttachmentID(a Attachment) string {
	sum := sha256.Sum256([]byte(a.PodUID + "\x00" + a.IfName))
	return hex.EncodeToString(sum[:])[:IDLen]
}

// ValidateIfName applies CNI's interface name rules, which also keep the
// name a single path element.
func ValidateIfName(name string) error {
	if name == "" {
		return fmt.Errorf("interface name (CNI_IFNAME) is empty")
	}
	if len(name) > MaxIfNameLen {
		return fmt.Errorf("interface name (CNI_IFNAME) %q is %d bytes, the limit is %d", name, len(name), MaxIfNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("interface name (CNI_IFNAME) %q is not allowed", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("interface name (CNI_IFNAME) %q contains %q: use letters, digits, '-', '_' or '.'", name, r)
		}
	}
	return nil
}

// ValidatePodUID accepts what Kubernetes generates (UUIDs) and other plain
// tokens of letters, digits, '-' and '_', nothing that could be a path.
func ValidatePodUID(uid string) error {
	if uid == "" {
		return fmt.Errorf("pod UID (K8S_POD_UID in CNI_ARGS) is empty: the plugin must be called by Multus or with K8S_POD_UID set")
	}
	return checkName("pod UID (K8S_POD_UID)", uid, MaxPodUIDLen)
}

func checkName(field, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > max {
		return fmt.Errorf("%s %q is %d bytes, the limit is %d", field, s, len(s), max)
	}
	return namecheck.Charset{Punct: "-_"}.Check(field, s)
}

func checkDir(field, dir string) error {
	return namecheck.Dir(field, dir)
}
