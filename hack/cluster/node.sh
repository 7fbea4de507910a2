#!/usr/bin/env bash
# One node of the local cluster (env.sh, node_env): its containerd, kubelet,
# kube-proxy, default pod network and OVS-DPDK. up.sh and down.sh call it
# for each node with VHOSTUSER_NODE=N; node 1 runs in this machine's
# namespaces, node 2 in its own mount, UTS and network namespaces.
#   node.sh ns       node 2's namespaces and its link to this machine
#   node.sh up       start the node's daemons (after the control plane)
#   node.sh link     the DPDK link between the nodes' br-dpdk (both up)
#   node.sh down     stop them and remove what they left
#   node.sh exec CMD run CMD in the node's namespaces, e.g.
#                    VHOSTUSER_NODE=2 node.sh exec ovs-vsctl show
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
bin="$CLUSTER_STATE/bin"
in_node() { "${NODE_EXEC[@]}" "$@"; }

# ns: node 2's mount, UTS and network namespaces, held by one process, and
# a veth pair to this machine (which routes node 2's pod subnet to it).
ns() {
	[ "$NODE" = 2 ] || { echo "node.sh ns is for node 2" >&2; exit 2; }
	mkdir -p "$PIDS" "$LOGS" "$NODE_DIR"
	rm -f "$NODE_DIR/ns-ready"
	start holder unshare --mount --uts --net --propagation private bash "$here/node.sh" ns-init
	local i
	for i in $(seq 100); do [ -e "$NODE_DIR/ns-ready" ] && break; sleep 0.1; done
	[ -e "$NODE_DIR/ns-ready" ] || { echo "node 2's namespaces not ready: $LOGS/holder.log" >&2; exit 1; }
	node_env 2 # NODE_EXEC names the holder now
	ip link add "$NODE2_HOST_IF" type veth peer name eth0 netns "$(cat "$NODE2_HOLDER")"
	ip addr add "$NODE2_HOST_ADDR/30" dev "$NODE2_HOST_IF"
	ip link set "$NODE2_HOST_IF" up
	in_node ip addr add "$NODE2_ADDR/30" dev eth0
	in_node ip link set eth0 up
	in_node ip route add default via "$NODE2_HOST_ADDR"
	ip route add "$POD_SUBNET" via "$NODE2_ADDR"
	# Per network namespace: the node forwards its pods' traffic, and the
	# bridge's traffic meets iptables (kube-proxy), as on node 1.
	in_node sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
	log "node 2's namespaces, $NODE2_ADDR ($(since) s)"
}

# ns-init runs inside the new namespaces (unshare, private propagation):
# the node-local paths become the node's own directories, the net class of
# sysfs shows the node's links, then it holds the namespaces.
ns_init() {
	local p m
	# Copies of this machine's mounts under those paths (none when node 2
	# starts first, as up.sh does) would pin them.
	for p in "${NODE_LOCAL_PATHS[@]}" "$CLUSTER_STATE"; do
		while read -r m; do umount -l "$m"; done < <(awk -v r="$p" \
			'$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
	done
	for p in "${NODE_LOCAL_PATHS[@]}"; do
		mkdir -p "$NODE_DIR/root$p" "$p"
		mount --bind "$NODE_DIR/root$p" "$p"
	done
	mkdir -p "$NODE_DIR/sys"
	mount -t sysfs sysfs "$NODE_DIR/sys"
	mount --bind "$NODE_DIR/sys/class/net" /sys/class/net
	mount --bind "$NODE_DIR/sys/devices/virtual/net" /sys/devices/virtual/net
	# The kubelet's Bidirectional mounts (virt-handler) need / shared: a new
	# peer group, this namespace's own.
	mount --make-rshared /
	hostname "$NODE_NAME"
	ip link set lo up
	touch "$NODE_DIR/ns-ready"
	exec -a "vhostuser-cluster-node2-holder $CLUSTER_STATE" sleep infinity
}

up() {
	local ip kubelet_conf
	mkdir -p "$PIDS" "$LOGS" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam" "$NODE_DIR/cni/bin" "$NODE_DIR/cni/multus"
	if [ "$NODE" = 1 ]; then
		ip="$(cat "$CLUSTER_STATE/node-ip")"
		kubelet_conf="$KUBECONFIGS/kubelet.conf"
	else
		ip="$NODE2_ADDR"
		# The node's own identity (the Node authorizer limits a kubelet to its node).
		kubelet_conf="$KUBECONFIGS/kubelet-$NODE_NAME.conf"
		"$bin/kubeadm" kubeconfig user --config "$CLUSTER_STATE/kubeadm.yaml" \
			--client-name "system:node:$NODE_NAME" --org system:nodes >"$kubelet_conf" 2>>"$LOGS/kubeadm.log"
		chmod 600 "$kubelet_conf"
		# The kubelet's cgroup root must exist (cgroupfs driver, cgroup v1);
		# cpuset children start empty.
		local c
		for c in /sys/fs/cgroup/*/; do
			[ -f "$c/cgroup.procs" ] || continue
			mkdir -p "$c${CGROUP_ROOT#/}"
			if [ -f "$c/cpuset.cpus" ]; then
				cat "$c/cpuset.cpus" >"$c${CGROUP_ROOT#/}/cpuset.cpus"
				cat "$c/cpuset.mems" >"$c${CGROUP_ROOT#/}/cpuset.mems"
			fi
		done
	fi

	# The default pod network (Debian's bridge + host-local), delegated to
	# by Multus (thin plugin), which containerd calls for every pod.
	# containerd's bin_dir is ours: Multus and links to Debian's plugins;
	# Multus also looks in /opt/cni/bin, where our installer DaemonSet puts
	# the vhostuser plugin.
	local p
	for p in bridge host-local loopback; do ln -sf "/usr/lib/cni/$p" "$NODE_DIR/cni/bin/$p"; done
	ln -sf "$bin/multus" "$NODE_DIR/cni/bin/multus"
	cat >"$NODE_DIR/cni/net.d/00-multus.conf" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "multus-cni-network",
  "type": "multus",
  "kubeconfig": "$KUBECONFIGS/multus.conf",
  "binDir": "/opt/cni/bin",
  "cniDir": "$NODE_DIR/cni/multus",
  "confDir": "$NODE_DIR/cni/multus/net.d",
  "logFile": "$LOGS/multus.log",
  "logLevel": "verbose",
  "delegates": [
    {
      "cniVersion": "1.0.0",
      "name": "vhostuser-cluster",
      "plugins": [
        {
          "type": "bridge",
          "bridge": "$CNI_BRIDGE",
          "isGateway": true,
          "ipMasq": true,
          "hairpinMode": true,
          "ipam": {
            "type": "host-local",
            "dataDir": "$NODE_DIR/cni/ipam",
            "ranges": [[{"subnet": "$POD_SUBNET"}]],
            "routes": [{"dst": "0.0.0.0/0"}]
          }
        }
      ]
    }
  ]
}
EOF

	# containerd with its own root, state, socket and runc root.
	# restrict_oom_score_adj: CAP_SYS_RESOURCE is not in this machine's
	# bounding set, so runc cannot raise a container's oom_score_adj.
	mkdir -p "$NODE_DIR/containerd"
	cat >"$NODE_DIR/containerd/config.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
# The opt plugin would create /opt/containerd; the others are unused here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$NODE_DIR/cni/bin"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
EOF
	# containerd is PID 1 of its own PID namespace, which its containers and
	# the hostPID pods (virt-handler) share: this machine's PID 1 (the
	# sandbox's init) does not let even root open /proc/1/root or
	# /proc/1/ns/mnt, through which virt-handler reaches the node's files
	# and mount namespace (device plugins for /dev/net/tun and /dev/kvm,
	# virt-chroot). Its mount namespace is the node's / as a shared peer
	# (mounts propagate both ways, as if it were the node's own) with a
	# /proc of its PID namespace (containerd reads /proc/<its pid>/task/...);
	# so its /proc/1/root is the node's /.
	start containerd-unshare "${NODE_EXEC[@]}" unshare --pid --fork --kill-child --mount --propagation unchanged \
		--mount-proc containerd --config "$NODE_DIR/containerd/config.toml"
	containerd_child() { pgrep -P "$(cat "$PIDS/containerd-unshare.pid")" -x containerd >"$PIDS/containerd.pid"; }
	wait_for "node $NODE: containerd started in its PID namespace" 10 containerd_child
	wait_for "node $NODE: containerd up" 60 ctr version
	ctr -n k8s.io images import "$CLUSTER_STATE/busybox.tar" >"$LOGS/node-image.log"

	mkdir -p "$NODE_DIR/kubelet-pki"
	cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# No systemd as PID 1 and cgroup v1 on these machines.
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
# Imported images are never pulled again: keep them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
EOF
	start kubelet "${NODE_EXEC[@]}" "$bin/kubelet" --config "$NODE_DIR/kubelet.yaml" \
		--kubeconfig "$kubelet_conf" --cert-dir "$NODE_DIR/kubelet-pki" \
		--hostname-override "$NODE_NAME" --node-ip "$ip" --root-dir "$KUBELET_ROOT" --v 2

	cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $KUBECONFIGS/kube-proxy.conf
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $CLUSTER_CIDR
bindAddress: $ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the machine's conntrack settings alone.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
	# kube-proxy is required, not optional: this machine's outer network
	# answers TCP on any address, so without it a Service address reaches a
	# stranger.
	start kube-proxy "${NODE_EXEC[@]}" "$bin/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml"
	# Service addresses that kube-proxy has not (yet) translated are refused
	# instead of reaching the outer network, which answers on any address: a
	# client that connects before kube-proxy's rules exist (kube-apiserver
	# checking virt-api's APIService right after its creation) would
	# otherwise keep a connection to a stranger alive (HTTP 404s, APIService
	# unavailable, virtctl console 503). The filter table runs after
	# kube-proxy's DNAT. A TCP reset, not an ICMP error, so an already
	# established connection (which TCP would keep retrying) ends at once and
	# its client reconnects.
	in_node iptables -I OUTPUT -d "$SERVICE_CIDR" -m comment --comment vhostuser-cluster-services -j REJECT
	in_node iptables -I OUTPUT -d "$SERVICE_CIDR" -p tcp -m comment --comment vhostuser-cluster-services -j REJECT --reject-with tcp-reset
	if [ "$NODE" = 2 ]; then
		# Pods forwarded to node 1 before node 2's kube-proxy rules exist.
		in_node iptables -I FORWARD -d "$SERVICE_CIDR" -m comment --comment vhostuser-cluster-services -j REJECT
	fi

	# The node's OVS-DPDK: bridge br-dpdk, netdev datapath.
	bash "$here/ovs.sh" start >"$LOGS/ovs.log" 2>&1 9>&- ||
		{ echo "node $NODE: OVS-DPDK did not start: $LOGS/ovs.log" >&2; exit 1; }
	log "node $NODE: OVS-DPDK with bridge $OVS_BRIDGE up ($(since) s)"
}

# link: a veth pair between the two nodes' OVS network namespaces, each end
# a DPDK port (af_packet PMD) of its node's br-dpdk: to the bridges, a
# cable between two NICs.
link() {
	local ns1 if1 holder
	node_env 1
	ns1="$OVS_NETNS" if1="$LINK_IF"
	node_env 2
	holder="$(cat "$NODE2_HOLDER")"
	ip -n "$ns1" link add "$if1" type veth peer name "$LINK_IF" netns "$holder"
	ip -n "$ns1" link set "$if1" up
	in_node ip link set "$LINK_IF" up
	local n
	for n in 1 2; do
		node_env "$n"
		ovs-vsctl --db "unix:$OVS_DIR/db.sock" --timeout 30 add-port "$OVS_BRIDGE" "$LINK_PORT" -- \
			set Interface "$LINK_PORT" type=dpdk "options:dpdk-devargs=net_af_packet0,iface=$LINK_IF"
	done
	log "DPDK link $LINK_PORT between the nodes' $OVS_BRIDGE ($(since) s)"
}

# down: the node's daemons and containers (pods were deleted through the
# API before), its OVS, cgroups and, for node 2, its namespaces.
down() {
	# Best effort, like down.sh: a step that finds nothing to do (a link
	# already gone with its namespace, a dead pid) must not stop the rest.
	set +e
	local failed=0 pid p ctl
	stop kube-proxy kubelet
	# Whatever containers remain (the kubelet did not remove them): kill
	# their tasks and remove them, so their shims exit. No CNI DEL runs for
	# them: their network namespaces, veths and masquerade rules go below.
	if [ -f "$PIDS/containerd.pid" ] && ctr version >/dev/null 2>&1; then
		c() { ctr -n k8s.io "$@"; }
		for t in $(c tasks ls -q 2>/dev/null); do c tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
		sleep 1
		for t in $(c tasks ls -q 2>/dev/null); do c tasks delete -f "$t" >/dev/null 2>&1; done
		for ct in $(c containers ls -q 2>/dev/null); do c containers rm "$ct" >/dev/null 2>&1; done
	fi
	# containerd is PID 1 of its PID namespace: when it exits, the kernel
	# kills what is left in the namespace, and unshare, which waited for it,
	# exits; it ignores TERM itself.
	stop containerd
	if [ -f "$PIDS/containerd-unshare.pid" ]; then
		pid="$(cat "$PIDS/containerd-unshare.pid")"
		if alive "$pid" && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "unshare --pid"; then
			kill -KILL "$pid"
		fi
		rm -f "$PIDS/containerd-unshare.pid"
	fi
	# containerd-shim-runc-v2 processes outlive containerd: ours carry our
	# socket address in their command line.
	for p in /proc/[0-9]*; do
		if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK "; then
			kill -KILL "${p#/proc/}" 2>/dev/null && log "killed shim ${p#/proc/}"
		fi
	done
	# Container processes whose shim died with them are orphans in our
	# cgroups (node 2's whole cgroup root is ours).
	local mine=kubepods
	[ "$NODE" = 1 ] || mine=
	for ctl in /sys/fs/cgroup/*/; do
		ctl="$ctl${CGROUP_ROOT#/}/$mine"
		[ -d "$ctl" ] || continue
		find "$ctl" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
			kill -KILL "$pid" 2>/dev/null
		done
	done
	bash "$here/ovs.sh" stop || failed=1
	if [ "$NODE" = 2 ]; then
		# The last process in the namespaces: they go with it, and with the
		# network namespace its links (and the DPDK link's other end).
		if [ -f "$NODE2_HOLDER" ]; then
			pid="$(cat "$NODE2_HOLDER")"
			if alive "$pid" && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "node2-holder"; then
				kill -KILL "$pid"
			fi
			rm -f "$NODE2_HOLDER"
		fi
		ip link del "$NODE2_HOST_IF" 2>/dev/null || :
	fi
	# Cgroups, depth first (each controller hierarchy of cgroup v1); node 2's
	# root with them. A killed process leaves its cgroup only once reaped:
	# retry for a while.
	local left
	for _ in $(seq 50); do
		left=()
		for ctl in /sys/fs/cgroup/*/; do
			ctl="$ctl${CGROUP_ROOT#/}/$mine"
			[ -d "$ctl" ] || continue
			find "$ctl" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$ctl" ] && left+=("$ctl")
		done
		((${#left[@]})) || break
		sleep 0.2
	done
	if ((${#left[@]})); then
		log "cgroups remain: ${left[*]}"
		failed=1
	fi
	return "$failed"
}

case "${1:-}" in
ns) ns ;;
ns-init) ns_init ;;
up) up ;;
link) link ;;
down) down ;;
exec)
	shift
	in_node "$@"
	;;
*) echo "usage: VHOSTUSER_NODE=1|2 node.sh ns|up|link|down|exec CMD..." >&2; exit 2 ;;
esac
