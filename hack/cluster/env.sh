# shellcheck shell=bash disable=SC2034 # sourced: the variables are used by the scripts
# Shared settings of the hack/cluster scripts (sourced). Every name is
# distinct from what other users of this machine create.
export PATH="/usr/local/go/bin:$PATH"
K8S_VERSION=v1.34.2
MULTUS_VERSION=v4.2.3
# Build products, kept between runs on this machine.
CLUSTER_CACHE="${VHOSTUSER_CLUSTER_CACHE:-/var/cache/vhostuser-cluster}"
# Everything a running cluster owns, removed by cluster-down.
CLUSTER_STATE="${VHOSTUSER_CLUSTER_STATE:-/var/lib/vhostuser-cluster}"
CLUSTER_LOCK="$CLUSTER_CACHE/.lock"

NODE_NAME=vhostuser-node
# The node's address: the source address of the default route.
node_ip() { ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }
SERVICE_CIDR=10.96.0.0/16
POD_SUBNET=10.244.0.0/24
CNI_BRIDGE=cni-vhu0
# containerd's sandbox ("pause") image and the test pods' image: static
# busybox, imported from an archive, never pulled.
NODE_IMAGE=localhost/vhostuser-cluster/busybox:1
KUBELET_ROOT=/var/lib/kubelet
# The plugin's node configuration, written by our installer DaemonSet.
NODE_CONFIG=/etc/vhostuser/node.json

ETCD_PORT=2379
APISERVER_PORT=6443

PKI="$CLUSTER_STATE/pki"
KUBECONFIGS="$CLUSTER_STATE/kubeconfig"
PIDS="$CLUSTER_STATE/pid"
LOGS="$CLUSTER_STATE/log"
CONTAINERD_SOCK="$CLUSTER_STATE/containerd/containerd.sock"
ADMIN_KUBECONFIG="$KUBECONFIGS/admin.conf"

# The node's OVS-DPDK (ovs.sh): its own directory and DPDK file prefix, its
# database socket at the stock path, as on a real node (the plugin's default
# ovsdbSocket, cni/config: unix:/var/run/openvswitch/db.sock), so that the
# installer runs unchanged from manifests/overlays/default; cluster-up refuses
# to start if another OVS serves that path. ovs-vswitchd runs in its own
# network namespace so the netdev bridge's tap device cannot meet another OVS
# instance's on this machine.
OVS_DIR="$CLUSTER_STATE/ovs"
OVS_DB_SOCK=/var/run/openvswitch/db.sock
OVS_BRIDGE=br-dpdk
OVS_NETNS=vhostuser-cluster-ovs
OVS_FILE_PREFIX=vhostuser-cluster

# virt-handler's hostPath volumes (KubeVirt's DaemonSet; /var/run is /run
# here) besides the kubelet root: mounts under them go at cluster-down.
KUBEVIRT_HOST_PATHS=(/run/kubevirt /run/kubevirt-private /run/kubevirt-libvirt-runtimes /var/lib/kubevirt-node-labeller)
# Paths outside the state directory that the cluster writes; cluster-up
# records which of them it created (created-paths) for cluster-down, which
# handles them in this order (files before their directories).
OUTSIDE_PATHS=("$KUBELET_ROOT" /var/log/pods /var/log/containers /opt/cni /opt/cni/bin /run/containerd
	/var/lib/cni /run/vhostuser /run/k8s.cni.cncf.io "$NODE_CONFIG" /etc/vhostuser "$OVS_DB_SOCK" /run/openvswitch
	"${KUBEVIRT_HOST_PATHS[@]}")
# Kernel settings the kubelet, kube-proxy and the bridge plugin change, and
# fs.protected_symlinks, which cluster-up sets to 1 as node preparation (our
# plugin refuses ADD without it, docs/install.md); cluster-up saves them,
# cluster-down restores them.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
	net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
	net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max fs.protected_symlinks)

kubectl() { "$CLUSTER_STATE/bin/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
log() { echo "cluster: $*" >&2; }

# KubeVirt (kubevirt.sh builds, up.sh installs): image names of the operator
# install, the test-only hook sidecar and the test guest's kernelBoot image,
# all imported into containerd, never pulled.
KUBEVIRT_NAMESPACE=kubevirt
KUBEVIRT_IMAGE_PREFIX=localhost/vhostuser-kubevirt
TEST_HOOK_IMAGE=localhost/vhostuser-cluster/test-only-msix-hook:1
GUEST_IMAGE=localhost/vhostuser-cluster/test-guest:1
