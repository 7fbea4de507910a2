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

# The node's address: the source address of the default route.
node_ip() { ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }
SERVICE_CIDR=10.96.0.0/16
# Every node's pods; node N has 10.244.(N-1).0/24.
CLUSTER_CIDR=10.244.0.0/16
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
ADMIN_KUBECONFIG="$KUBECONFIGS/admin.conf"

# The node's OVS-DPDK (ovs.sh): its own directory and DPDK file prefix, its
# database socket at the stock path, as on a real node (the plugin's default
# ovsdbSocket, cni/config: unix:/var/run/openvswitch/db.sock), so that the
# installer runs unchanged from manifests/overlays/default; cluster-up refuses
# to start if another OVS serves that path. ovs-vswitchd runs in its own
# network namespace so the netdev bridge's tap device cannot meet another OVS
# instance's on this machine.
OVS_DB_SOCK=/var/run/openvswitch/db.sock
OVS_BRIDGE=br-dpdk

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
# ctr talks to the current node's containerd.
ctr() { command ctr --address "$CONTAINERD_SOCK" "$@"; }
# One clock for up.sh and the node.sh it runs.
export VHOSTUSER_CLUSTER_T0="${VHOSTUSER_CLUSTER_T0:-$(date +%s.%N)}"
t0=$VHOSTUSER_CLUSTER_T0
since() { printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)"; }
# start NAME COMMAND...: a daemon in its own session, its pid recorded in
# the current node's PIDS, its output in its LOGS.
start() {
	local name="$1"
	shift
	setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 9>&- &
	echo $! >"$PIDS/$name.pid"
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# stop NAME...: TERM to the processes of the pid files that are still the
# ones started (their command line names the binary), KILL after 15 s.
stop() {
	local name pid pids=() names=()
	for name in "$@"; do
		[ -f "$PIDS/$name.pid" ] || continue
		pid="$(cat "$PIDS/$name.pid")"
		if alive "$pid" && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$name"; then
			kill -TERM "$pid" && pids+=("$pid") && names+=("$name")
		fi
		rm -f "$PIDS/$name.pid"
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 150); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && kill -KILL "$pid"
		for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
	done
	((${#names[@]} == 0)) || log "stopped ${names[*]} ($(since) s)"
}

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local what="$1" secs="$2"
	shift 2
	local end=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$end" ]; then
			echo "timed out after ${secs}s waiting for $what; logs in $LOGS" >&2
			return 1
		fi
		sleep 0.2
	done
	log "$what ($(since) s)"
}

# KubeVirt (kubevirt.sh builds, up.sh installs): image names of the operator
# install, the test-only hook sidecar and the test guest's kernelBoot image,
# all imported into containerd, never pulled.
KUBEVIRT_NAMESPACE=kubevirt
KUBEVIRT_IMAGE_PREFIX=localhost/vhostuser-kubevirt
TEST_HOOK_IMAGE=localhost/vhostuser-cluster/test-only-msix-hook:1
GUEST_IMAGE=localhost/vhostuser-cluster/test-guest:1

# The second node (node.sh) runs in its own mount, UTS and network
# namespaces, held by one process (its pid in NODE2_HOLDER); its containerd
# has its own PID namespace, as node 1's. It reaches node 1 (and the API
# server) over a veth pair: NODE2_HOST_IF on this machine, eth0 inside.
NODE2_HOLDER="$CLUSTER_STATE/pid/node2/holder.pid"
NODE2_HOST_IF=vhu-node2
NODE2_HOST_ADDR=198.18.0.1
NODE2_ADDR=198.18.0.2
# The "physical" link between the nodes' br-dpdk bridges: a veth pair whose
# ends are DPDK af_packet ports, LINK_IF of each node.
LINK_PORT=dpdk-link
# Node-local paths: the second node sees its own directory at each (a bind
# mount in its mount namespace), the first node the machine's.
NODE_LOCAL_PATHS=("$KUBELET_ROOT" /var/log/pods /var/log/containers /opt/cni/bin /run/containerd /var/lib/cni
	/run/vhostuser /run/k8s.cni.cncf.io /etc/vhostuser /run/openvswitch "${KUBEVIRT_HOST_PATHS[@]}")

# node_env N: the settings of node N (1 or 2). Node 1 runs in this machine's
# namespaces; its files stay where a single-node cluster had them.
node_env() {
	NODE="$1"
	case "$NODE" in
	1)
		NODE_NAME=vhostuser-node
		NODE_DIR="$CLUSTER_STATE"
		PIDS="$CLUSTER_STATE/pid"
		LOGS="$CLUSTER_STATE/log"
		POD_SUBNET=10.244.0.0/24
		# The kubelet's cgroup root (cgroupfs driver): each node its own.
		CGROUP_ROOT=/
		# ovs-vswitchd runs in its own network namespace so the netdev
		# bridge's tap device cannot meet another OVS instance's on this
		# machine.
		OVS_NETNS=vhostuser-cluster-ovs
		OVS_FILE_PREFIX=vhostuser-cluster
		LINK_IF=vhu-link1
		NODE_EXEC=()
		;;
	2)
		NODE_NAME=vhostuser-node2
		NODE_DIR="$CLUSTER_STATE/node2"
		PIDS="$CLUSTER_STATE/pid/node2"
		LOGS="$CLUSTER_STATE/log/node2"
		POD_SUBNET=10.244.1.0/24
		CGROUP_ROOT=/vhostuser-node2
		# The node's own network namespace holds ovs-vswitchd.
		OVS_NETNS=
		OVS_FILE_PREFIX=vhostuser-cluster-node2
		LINK_IF=vhu-link2
		# A command in the node's namespaces (from this machine's).
		NODE_EXEC=(nsenter --target "$(cat "$NODE2_HOLDER" 2>/dev/null || :)" --mount --uts --net --)
		;;
	*) echo "no node $NODE: 1 or 2" >&2; return 1 ;;
	esac
	CONTAINERD_SOCK="$NODE_DIR/containerd/containerd.sock"
	OVS_DIR="$NODE_DIR/ovs"
}
node_env "${VHOSTUSER_NODE:-1}"
