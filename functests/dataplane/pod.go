package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// Pod is a virt-launcher pod as far as the node sees it: its UID, a network
// namespace and the hook-sidecar-sockets emptyDir laid out the way kubelet
// lays it out.
type Pod struct {
	Namespace, Name, UID string
	Netns                string // name under /var/run/netns
	VolumeDir            string // <kubeletRoot>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>
	podDir               string
}

// NewPod creates the pod's directories below layout.KubeletRoot and its network namespace.
func NewPod(ctx context.Context, layout socketpath.Layout, namespace, name, uid, netns string) (*Pod, error) {
	p := &Pod{Namespace: namespace, Name: name, UID: uid, Netns: netns,
		podDir: filepath.Join(layout.KubeletRoot, "pods", uid)}
	p.VolumeDir = filepath.Join(p.podDir, "volumes", "kubernetes.io~empty-dir", layout.Volume)
	if err := os.MkdirAll(p.VolumeDir, 0o755); err != nil {
		return nil, fmt.Errorf("create pod volume %s: %w", p.VolumeDir, err)
	}
	// kubelet creates emptyDir volumes world-writable.
	if err := os.Chmod(p.VolumeDir, 0o777); err != nil {
		return nil, fmt.Errorf("chmod pod volume: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", netns).CombinedOutput(); err != nil {
		os.RemoveAll(p.podDir)
		return nil, fmt.Errorf("ip netns add %s: %w: %s", netns, err, strings.TrimSpace(string(out)))
	}
	return p, nil
}

// NetnsPath is the pod sandbox's network namespace as the runtime passes it.
func (p *Pod) NetnsPath() string { return filepath.Join("/var/run/netns", p.Netns) }

// Remove deletes the pod's directories and network namespace, as kubelet
// and the runtime do when the pod goes away.
func (p *Pod) Remove() error {
	var errs []string
	if out, err := exec.Command("ip", "netns", "del", p.Netns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		errs = append(errs, fmt.Sprintf("ip netns del %s: %v: %s", p.Netns, err, strings.TrimSpace(string(out))))
	}
	if err := os.RemoveAll(p.podDir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove pod %s: %s", p.Name, strings.Join(errs, "; "))
	}
	return nil
}

// CNI calls our plugin through libcni, the library container runtimes and
// Multus use.
type CNI struct {
	cfg  *libcni.CNIConfig
	list *libcni.NetworkConfigList
}

// NewCNI loads a configuration list whose plugins are looked up in binDir;
// cacheDir keeps libcni's result cache out of /var/lib/cni.
func NewCNI(binDir, cacheDir string, confList []byte) (*CNI, error) {
	list, err := libcni.ConfListFromBytes(confList)
	if err != nil {
		return nil, fmt.Errorf("parse CNI configuration list: %w", err)
	}
	return &CNI{cfg: libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nil), list: list}, nil
}

// ConfList renders the network configuration list of the vhostuser plugin.
func ConfList(name string, plugin map[string]any) ([]byte, error) {
	plugin["type"] = "vhostuser"
	return json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": name, "plugins": []any{plugin}})
}

// runtimeConf is what Multus passes for a pod's secondary network:
// CNI_IFNAME is KubeVirt's pod interface name for the VMI network.
func (p *Pod) runtimeConf(containerID, vmiNetwork string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: containerID,
		NetNS:       p.NetnsPath(),
		IfName:      socketpath.PodInterfaceName(vmiNetwork),
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", containerID},
			{"K8S_POD_UID", p.UID},
		},
	}
}

// Add is CNI ADD for the pod's interface on vmiNetwork.
func (c *CNI) Add(ctx context.Context, p *Pod, containerID, vmiNetwork string) (*current.Result, error) {
	r, err := c.cfg.AddNetworkList(ctx, c.list, p.runtimeConf(containerID, vmiNetwork))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD pod %s network %s: %w", p.Name, vmiNetwork, err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD pod %s: convert result: %w", p.Name, err)
	}
	return res, nil
}

// Del is CNI DEL for the pod's interface on vmiNetwork.
func (c *CNI) Del(ctx context.Context, p *Pod, containerID, vmiNetwork string) error {
	if err := c.cfg.DelNetworkList(ctx, c.list, p.runtimeConf(containerID, vmiNetwork)); err != nil {
		return fmt.Errorf("CNI DEL pod %s network %s: %w", p.Name, vmiNetwork, err)
	}
	return nil
}
