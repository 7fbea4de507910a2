package compat

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	k8scorev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/kubevirt/pkg/network/controllers"
	"kubevirt.io/kubevirt/pkg/network/namescheme"
	"libvirt.org/go/libvirtxml"

	"github.com/kubevirt-vhostuser/vhostuser/functests/dataplane"
	"github.com/kubevirt-vhostuser/vhostuser/functests/launcher"
	"github.com/kubevirt-vhostuser/vhostuser/functests/vmi"
	"github.com/kubevirt-vhostuser/vhostuser/pkg/socketpath"
)

// TestSocketPathFollowsKubeVirtPodInterfaceNames checks the socket path
// contract against KubeVirt's own naming of pod interfaces, for a pod with
// hashed names (pod<hash>, every pod KubeVirt creates today) and one with
// ordinal names (net1, net2, ...: pods of VMs started by old KubeVirt and
// their migration targets).
//
// KubeVirt's namescheme names the pod's interfaces (Multus passes the name to
// the CNI as CNI_IFNAME, so the CNI's socket directory follows it); KubeVirt's
// VMI controller fills status.interfaces[].podInterfaceName from the pod's
// Multus network-status; KubeVirt's hooks manager hands that VMI to our
// sidecar binary. The socket path in the resulting domain must be the one
// the CNI derives from CNI_IFNAME.
func TestSocketPathFollowsKubeVirtPodInterfaceNames(t *testing.T) {
	bin := sidecarBinary(t)
	const uid = "c0ffee00-0000-4000-8000-000000000002"
	nets := []string{"vhu-a", "vhu-b", "vhu-c"}
	cases := []struct {
		name       string
		scheme     func([]v1.Network) map[string]string // how KubeVirt named the pod's interfaces
		unreported []string                             // networks the VMI status does not name yet
	}{
		{"hashed pod", namescheme.CreateHashedNetworkNameScheme, nil},
		{"ordinal pod", namescheme.CreateOrdinalNetworkNameScheme, nil},
		{"ordinal pod, only one network reported", namescheme.CreateOrdinalNetworkNameScheme, []string{"vhu-a", "vhu-c"}},
		{"hashed pod, nothing reported yet", namescheme.CreateHashedNetworkNameScheme, nets},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var opts []vmi.Option
			for _, n := range nets {
				opts = append(opts, vmi.WithVhostUser(n, "nad-"+n, ""))
			}
			v := vmi.New("names", uid, opts...)

			podIfaces := tc.scheme(v.Spec.Networks)
			if err := controllers.UpdateVMIStatus(v, podWithNetworkStatus(t, v, podIfaces)); err != nil {
				t.Fatalf("KubeVirt's UpdateVMIStatus: %v", err)
			}
			var reported []string
			for _, st := range v.Status.Interfaces {
				if slices.Contains(nets, st.Name) {
					if st.PodInterfaceName != podIfaces[st.Name] {
						t.Fatalf("test setup: KubeVirt reports %s for network %s, its scheme says %s", st.PodInterfaceName, st.Name, podIfaces[st.Name])
					}
					reported = append(reported, st.Name)
				}
			}
			if len(reported) != len(nets) {
				t.Fatalf("test setup: KubeVirt's status names %v, want all of %v", reported, nets)
			}
			v.Status.Interfaces = slices.DeleteFunc(v.Status.Interfaces, func(st v1.VirtualMachineInstanceNetworkInterface) bool {
				return slices.Contains(tc.unreported, st.Name)
			})

			dom, err := launcher.Convert(v)
			if err != nil {
				t.Fatal(err)
			}
			logFile, err := os.Create(filepath.Join(t.TempDir(), "sidecar.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logFile.Close()
			s, err := launcher.StartSidecar(ctx, bin, dataplane.SidecarArgs, nil, logFile)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.OnDefineDomain(&dom.Spec, v)
			if cerr := s.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("OnDefineDomain: %v\nsidecar log:\n%s", err, readFile(logFile.Name()))
			}

			d := &libvirtxml.Domain{}
			if err := d.Unmarshal(out); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, i := range d.Devices.Interfaces {
				if i.Alias != nil && i.Source != nil && i.Source.VHostUser != nil && i.Source.VHostUser.Chardev != nil && i.Source.VHostUser.Chardev.UNIX != nil {
					got[strings.TrimPrefix(i.Alias.Name, "ua-")] = i.Source.VHostUser.Chardev.UNIX.Path
				}
			}
			for _, n := range nets {
				// The CNI's view: CNI_IFNAME is KubeVirt's pod interface name.
				p, err := socketpath.Defaults().For(socketpath.Attachment{PodUID: uid, IfName: podIfaces[n]})
				if err != nil {
					t.Fatal(err)
				}
				if got[n] != p.ComputeSocket {
					t.Errorf("network %s (pod interface %s): domain socket %q, the CNI makes %q", n, podIfaces[n], got[n], p.ComputeSocket)
				}
				// And the compute path is the CNI's host socket as the
				// compute container mounts the volume.
				rel := strings.TrimPrefix(p.HostSocket, p.VolumeDir)
				if got[n] != socketpath.ComputeHooksDir+rel {
					t.Errorf("network %s: domain socket %q is not the host socket %s seen from the compute container", n, got[n], p.HostSocket)
				}
			}
		})
	}
}

// podWithNetworkStatus is a virt-launcher pod whose Multus network-status
// annotation lists the primary interface and one interface per secondary
// network, named podIfaces, as Multus writes it after the CNI calls.
func podWithNetworkStatus(t *testing.T, v *v1.VirtualMachineInstance, podIfaces map[string]string) *k8scorev1.Pod {
	t.Helper()
	statuses := []map[string]any{{"name": "k8s-pod-network", "interface": "eth0", "default": true}}
	for _, n := range v.Spec.Networks {
		if n.Multus != nil {
			statuses = append(statuses, map[string]any{"name": v.Namespace + "/" + n.Multus.NetworkName, "interface": podIfaces[n.Name]})
		}
	}
	b, err := json.Marshal(statuses)
	if err != nil {
		t.Fatal(err)
	}
	return &k8scorev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "virt-launcher-" + v.Name, Namespace: v.Namespace,
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/network-status": string(b)},
	}}
}
