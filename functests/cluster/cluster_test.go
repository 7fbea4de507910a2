// The functional tests against a real cluster with KubeVirt, Multus and
// OVS-DPDK nodes drive kubectl and virtctl from PATH and skip, saying why,
// when KUBECONFIG is not set.
//
// Environment:
//
//	KUBECONFIG                 the cluster (required, else the tests skip)
//	VHOSTUSER_VM_IMAGE         a KubeVirt container disk with cloud-init (required)
//	VHOSTUSER_MANIFESTS        the manifests/ directory (default ../../manifests)
//	VHOSTUSER_BRIDGE           the nodes' OVS-DPDK bridge (default br-dpdk)
//	VHOSTUSER_NODE_EXEC        command prefix that runs a shell command on node {node}
//	                           (for example "kubectl -n ovs exec ds/ovs-{node} -- sh -c");
//	                           used for the leak check of OVS ports and sockets (required)
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1 "kubevirt.io/api/core/v1"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
	"github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
)

const nadName = "vhostuser-functest"

type cluster struct {
	t         *testing.T
	namespace string
	manifests string
	image     string
	bridge    string
	nodeExec  string
}

func setup(t *testing.T) *cluster {
	if os.Getenv("KUBECONFIG") == "" {
		t.Skip("KUBECONFIG is not set: cluster functests need a cluster with KubeVirt, Multus and OVS-DPDK nodes")
	}
	for _, bin := range []string{"kubectl", "virtctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not in PATH: the cluster functests drive it: %v", bin, err)
		}
	}
	c := &cluster{
		t:         t,
		namespace: fmt.Sprintf("vhostuser-functest-%d", time.Now().Unix()%100000),
		manifests: envOr("VHOSTUSER_MANIFESTS", "../../manifests"),
		image:     os.Getenv("VHOSTUSER_VM_IMAGE"),
		bridge:    envOr("VHOSTUSER_BRIDGE", "br-dpdk"),
		nodeExec:  os.Getenv("VHOSTUSER_NODE_EXEC"),
	}
	if c.image == "" {
		t.Fatal("VHOSTUSER_VM_IMAGE is not set: give a KubeVirt container disk image with cloud-init")
	}
	if c.nodeExec == "" {
		t.Fatal("VHOSTUSER_NODE_EXEC is not set: the leak check needs a way to run ovs-vsctl on the nodes")
	}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *cluster) run(ctx context.Context, name string, args ...string) string {
	c.t.Helper()
	out, err := c.try(ctx, name, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *cluster) try(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// TestClusterPingMigrateDelete deploys our manifests, starts two VMs on the
// vhostuser network, checks they ping each other (their cloud-init pings the
// peer forever and reports on the serial console, which KubeVirt's
// guest-console-log container exposes), live-migrates one, checks ping again,
// deletes both and checks that no OVS port or socket of ours is left.
func TestClusterPingMigrateDelete(t *testing.T) {
	c := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()

	c.run(ctx, "kubectl", "apply", "-k", filepath.Join(c.manifests, "overlays", "default"))
	c.run(ctx, "kubectl", "apply", "-k", filepath.Join(c.manifests, "binding"))
	ds := c.run(ctx, "kubectl", "get", "-k", filepath.Join(c.manifests, "overlays", "default"),
		"-o", `jsonpath={range .items[?(@.kind=="DaemonSet")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
	for _, d := range strings.Fields(ds) {
		ns, name, _ := strings.Cut(d, "/")
		c.run(ctx, "kubectl", "-n", ns, "rollout", "status", "daemonset/"+name, "--timeout=5m")
	}

	c.run(ctx, "kubectl", "create", "namespace", c.namespace)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c.try(ctx, "kubectl", "delete", "namespace", c.namespace, "--wait=true", "--timeout=10m")
	})
	c.apply(ctx, nad(c.bridge))

	ips := map[string]string{"vm-a": "192.0.2.11", "vm-b": "192.0.2.12"}
	peers := map[string]string{"vm-a": "vm-b", "vm-b": "vm-a"}
	for name, ip := range ips {
		c.apply(ctx, c.vm(name, ip, ips[peers[name]]))
	}
	for name := range ips {
		c.run(ctx, "kubectl", "-n", c.namespace, "wait", "vmi/"+name, "--for=condition=Ready", "--timeout=10m")
	}
	for name := range ips {
		c.waitPing(ctx, name, 0)
	}

	c.run(ctx, "virtctl", "-n", c.namespace, "migrate", "vm-a")
	c.run(ctx, "kubectl", "-n", c.namespace, "wait", "vmi/vm-a",
		"--for=jsonpath={.status.migrationState.completed}=true", "--timeout=10m")
	if failed, _ := c.try(ctx, "kubectl", "-n", c.namespace, "get", "vmi/vm-a", "-o", "jsonpath={.status.migrationState.failed}"); strings.TrimSpace(failed) == "true" {
		t.Fatal("live migration of vm-a failed")
	}
	// The target pod's console log starts empty: any ping there is after the migration.
	c.waitPing(ctx, "vm-a", 0)
	c.waitPing(ctx, "vm-b", 10) // and the peer still reaches the migrated VM

	nodes := c.run(ctx, "kubectl", "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")
	for name := range ips {
		c.run(ctx, "kubectl", "-n", c.namespace, "delete", "vm", name, "--wait=true", "--timeout=5m")
	}
	// Errors when no pod is left to wait for, which is the goal.
	c.try(ctx, "kubectl", "-n", c.namespace, "wait", "pod", "-l", "kubevirt.io=virt-launcher", "--for=delete", "--timeout=5m")
	for _, node := range strings.Fields(nodes) {
		c.checkNoLeak(ctx, node)
	}
}

func (c *cluster) apply(ctx context.Context, obj any) {
	c.t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "kubectl", "-n", c.namespace, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(string(data))
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

func nad(bridge string) map[string]any {
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": nadName, "type": "vhostuser", "bridge": bridge,
	})
	return map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1",
		"kind":       "NetworkAttachmentDefinition",
		"metadata":   map[string]any{"name": nadName},
		"spec":       map[string]any{"config": string(conf)},
	}
}

// vm is a VirtualMachine with hugepages (OVS-DPDK maps guest memory), the pod
// network and a vhostuser NIC whose cloud-init pings peerIP forever and
// reports each result on the serial console.
func (c *cluster) vm(name, ip, peerIP string) *v1.VirtualMachine {
	mac := "02:00:00:00:10:" + strings.TrimPrefix(ip[len(ip)-2:], ".")
	spec := vmi.New(name, "", vmi.WithVhostUser("dpdk", nadName, mac), vmi.WithHugepages("2Mi"), vmi.WithMemory("1Gi")).Spec
	spec.Domain.Devices.Disks = []v1.Disk{
		{Name: "containerdisk", DiskDevice: v1.DiskDevice{Disk: &v1.DiskTarget{Bus: v1.DiskBusVirtio}}},
		{Name: "cloudinitdisk", DiskDevice: v1.DiskDevice{Disk: &v1.DiskTarget{Bus: v1.DiskBusVirtio}}},
	}
	spec.Domain.Machine = nil // let the cluster default it
	spec.Domain.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
	network := fmt.Sprintf(`version: 2
ethernets:
  dpdk0:
    match:
      macaddress: "%s"
    addresses: ["%s/24"]
`, mac, ip)
	user := fmt.Sprintf(`#cloud-config
runcmd:
  - [sh, -c, 'while true; do if ping -c 1 -W 2 %[1]s; then echo "%[2]s $(date +%%s)"; else echo "%[3]s"; fi; sleep 1; done > /dev/ttyS0 2>&1 &']
`, peerIP, guest.MarkerPingOK, guest.MarkerPingFail)
	spec.Volumes = []v1.Volume{
		{Name: "containerdisk", VolumeSource: v1.VolumeSource{ContainerDisk: &v1.ContainerDiskSource{Image: c.image}}},
		{Name: "cloudinitdisk", VolumeSource: v1.VolumeSource{CloudInitNoCloud: &v1.CloudInitNoCloudSource{UserData: user, NetworkData: network}}},
	}
	always := v1.RunStrategyAlways
	return &v1.VirtualMachine{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.VirtualMachineSpec{
			RunStrategy: &always,
			Template: &v1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"kubevirt.io/vm": name}},
				Spec:       spec,
			},
		},
	}
}

// waitPing waits until the running launcher pod of vm shows more than skip
// successful pings on its serial console log.
func (c *cluster) waitPing(ctx context.Context, vm string, skip int) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		pod, _ := c.try(ctx, "kubectl", "-n", c.namespace, "get", "pod", "-l", "vm.kubevirt.io/name="+vm,
			"--field-selector=status.phase=Running", "-o", "jsonpath={.items[-1:].metadata.name}")
		pod = strings.TrimSpace(pod)
		if pod != "" {
			logs, _ := c.try(ctx, "kubectl", "-n", c.namespace, "logs", pod, "-c", "guest-console-log")
			if strings.Count(logs, guest.MarkerPingOK) > skip {
				c.t.Logf("%s pings its peer (pod %s)", vm, pod)
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no ping on the serial console within 10 minutes (pod %q)", vm, pod)
		}
		time.Sleep(5 * time.Second)
	}
}

// checkNoLeak asserts that no OVS port of our plugin and no short socket
// link is left on node.
func (c *cluster) checkNoLeak(ctx context.Context, node string) {
	c.t.Helper()
	prefix := strings.Fields(strings.ReplaceAll(c.nodeExec, "{node}", node))
	script := `ovs-vsctl --columns=name --format=csv --no-headings find Port external_ids:"vhostuser.kubevirt.io/owner"="vhostuser-cni"; ls -A /var/run/vhostuser 2>/dev/null`
	out, err := c.try(ctx, prefix[0], append(prefix[1:], script)...)
	if err != nil {
		c.t.Fatalf("leak check on %s: %v", node, err)
	}
	if s := strings.TrimSpace(out); s != "" {
		c.t.Errorf("node %s: left after deleting the VMs: %s", node, s)
	}
}

// TestVMObject checks the VirtualMachine the cluster test submits, without a cluster.
func TestVMObject(t *testing.T) {
	c := &cluster{image: "example/containerdisk:latest", namespace: "ns"}
	vm := c.vm("vm-a", "192.0.2.11", "192.0.2.12")
	spec := vm.Spec.Template.Spec
	var vu *v1.Interface
	for i := range spec.Domain.Devices.Interfaces {
		if b := spec.Domain.Devices.Interfaces[i].Binding; b != nil && b.Name == vmi.BindingName {
			vu = &spec.Domain.Devices.Interfaces[i]
		}
	}
	if vu == nil || vu.MacAddress != "02:00:00:00:10:11" {
		t.Fatalf("vhostuser interface %+v, want binding %s with MAC 02:00:00:00:10:11", vu, vmi.BindingName)
	}
	if spec.Domain.Memory == nil || spec.Domain.Memory.Hugepages == nil {
		t.Error("no hugepages: OVS-DPDK needs them to map guest memory")
	}
	var ci *v1.CloudInitNoCloudSource
	for _, v := range spec.Volumes {
		if v.CloudInitNoCloud != nil {
			ci = v.CloudInitNoCloud
		}
	}
	if ci == nil || !strings.Contains(ci.UserData, "ping -c 1 -W 2 192.0.2.12") || !strings.Contains(ci.UserData, guest.MarkerPingOK) ||
		!strings.Contains(ci.NetworkData, "192.0.2.11/24") || !strings.Contains(ci.NetworkData, vu.MacAddress) {
		t.Errorf("cloud-init %+v does not configure the NIC and ping the peer", ci)
	}
	if _, err := json.Marshal(vm); err != nil {
		t.Fatal(err)
	}
	n, _ := json.Marshal(nad("br-dpdk"))
	if !strings.Contains(string(n), `\"type\":\"vhostuser\"`) || !strings.Contains(string(n), nadName) {
		t.Errorf("NAD %s", n)
	}
}
