#!/usr/bin/env bash
# make cluster-up: a single-node Kubernetes on this machine, as root, without
# Docker or a registry. etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd (private config), kubelet and kube-proxy run from
# $CLUSTER_STATE; the default pod network is Debian's bridge + host-local.
# cluster-down (down.sh) undoes all of it; on failure, run it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$here/env.sh"

[ "$(id -u)" = 0 ] || { echo "cluster-up runs as root" >&2; exit 1; }
if [ -e "$CLUSTER_STATE/up-started" ]; then
	echo "$CLUSTER_STATE exists: a cluster is up or was not torn down; run make cluster-down first" >&2
	exit 1
fi
for bin in containerd containerd-shim-runc-v2 runc ctr iptables ip6tables; do
	command -v "$bin" >/dev/null || { echo "$bin missing: run make deps (Debian packages containerd, runc, iptables)" >&2; exit 1; }
done
for p in bridge host-local loopback; do
	[ -x "/usr/lib/cni/$p" ] || { echo "/usr/lib/cni/$p missing: apt-get install containernetworking-plugins" >&2; exit 1; }
done
for port in $ETCD_PORT $((ETCD_PORT + 1)) $APISERVER_PORT 10248 10249 10250 10256 10257 10259; do
	if ss -Htln "sport = :$port" | grep -q .; then
		echo "TCP port $port is in use: the cluster needs it (ss -tlnp 'sport = :$port')" >&2
		exit 1
	fi
done
if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
	echo "link $CNI_BRIDGE exists: a cluster was not torn down; run make cluster-down" >&2
	exit 1
fi

t0=$(date +%s.%N)
since() { printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)"; }

bin="$(bash "$here/build.sh" | tail -1)"
log "binaries in $bin ($(since) s)"

mkdir -p "$CLUSTER_STATE" "$PKI" "$KUBECONFIGS" "$PIDS" "$LOGS"
touch "$CLUSTER_STATE/up-started"
ln -sfn "$bin" "$CLUSTER_STATE/bin"
ip="$(node_ip)"
[ -n "$ip" ] || { echo "no IPv4 default route: the node address comes from it" >&2; exit 1; }
echo "$ip" >"$CLUSTER_STATE/node-ip"

# What cluster-down must restore or remove outside the state directory.
: >"$CLUSTER_STATE/created-paths"
for p in "${OUTSIDE_PATHS[@]}"; do
	[ -e "$p" ] || echo "$p" >>"$CLUSTER_STATE/created-paths"
done
: >"$CLUSTER_STATE/sysctls"
for k in "${SYSCTLS[@]}"; do
	v="$(sysctl -n "$k" 2>/dev/null)" && echo "$k=$v" >>"$CLUSTER_STATE/sysctls"
done
if findmnt -no PROPAGATION / | grep -q private; then
	touch "$CLUSTER_STATE/root-was-private"
fi

# start NAME BINARY ARGS...: a daemon in its own session, its pid recorded.
start() {
	local name="$1"
	shift
	setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
	echo $! >"$PIDS/$name.pid"
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

# PKI and kubeconfigs, by kubeadm's phases (no kubeadm init: it would write
# /etc/kubernetes and start static pods).
cat >"$CLUSTER_STATE/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $ip
  bindPort: $APISERVER_PORT
nodeRegistration:
  name: $NODE_NAME
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $K8S_VERSION
clusterName: vhostuser-cluster
certificatesDir: $PKI
controlPlaneEndpoint: $ip:$APISERVER_PORT
networking:
  serviceSubnet: $SERVICE_CIDR
  podSubnet: $POD_SUBNET
apiServer:
  certSANs: [127.0.0.1, $ip]
etcd:
  external:
    endpoints: [http://127.0.0.1:$ETCD_PORT]
EOF
"$bin/kubeadm" init phase certs all --config "$CLUSTER_STATE/kubeadm.yaml" >"$LOGS/kubeadm.log" 2>&1
"$bin/kubeadm" init phase kubeconfig all --config "$CLUSTER_STATE/kubeadm.yaml" \
	--kubeconfig-dir "$KUBECONFIGS" >>"$LOGS/kubeadm.log" 2>&1
# kube-proxy's identity: bound to system:node-proxier by the default policy.
"$bin/kubeadm" kubeconfig user --config "$CLUSTER_STATE/kubeadm.yaml" \
	--client-name system:kube-proxy >"$KUBECONFIGS/kube-proxy.conf" 2>>"$LOGS/kubeadm.log"
chmod 600 "$KUBECONFIGS"/*.conf
log "PKI and kubeconfigs ($(since) s)"

# etcd: plain HTTP on loopback only.
start etcd "$bin/etcd" --name vhostuser-cluster --data-dir "$CLUSTER_STATE/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
	--initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
	--initial-cluster "vhostuser-cluster=http://127.0.0.1:$((ETCD_PORT + 1))"
wait_for "etcd healthy" 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver "$bin/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
	--bind-address "$ip" --advertise-address "$ip" --secure-port "$APISERVER_PORT" \
	--service-cluster-ip-range "$SERVICE_CIDR" \
	--client-ca-file "$PKI/ca.crt" \
	--tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
	--kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
	--kubelet-preferred-address-types InternalIP \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--allow-privileged=true \
	--requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
	--requestheader-allowed-names front-proxy-client \
	--requestheader-extra-headers-prefix X-Remote-Extra- \
	--requestheader-group-headers X-Remote-Group --requestheader-username-headers X-Remote-User \
	--proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key"
wait_for "kube-apiserver ready" 120 kubectl get --raw /readyz
# admin.conf's user is in kubeadm:cluster-admins, which only a full kubeadm
# init binds.
kubectl create clusterrolebinding kubeadm:cluster-admins --clusterrole cluster-admin \
	--group kubeadm:cluster-admins >/dev/null

start kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig "$KUBECONFIGS/controller-manager.conf" \
	--authentication-kubeconfig "$KUBECONFIGS/controller-manager.conf" \
	--authorization-kubeconfig "$KUBECONFIGS/controller-manager.conf" \
	--bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
	--cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
	--root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
	--service-cluster-ip-range "$SERVICE_CIDR"
start kube-scheduler "$bin/kube-scheduler" \
	--kubeconfig "$KUBECONFIGS/scheduler.conf" \
	--authentication-kubeconfig "$KUBECONFIGS/scheduler.conf" \
	--authorization-kubeconfig "$KUBECONFIGS/scheduler.conf" \
	--bind-address 127.0.0.1 --leader-elect=false

# The default pod network.
mkdir -p "$CLUSTER_STATE/cni/net.d" "$CLUSTER_STATE/cni/ipam"
cat >"$CLUSTER_STATE/cni/net.d/10-default.conflist" <<EOF
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
        "dataDir": "$CLUSTER_STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF

# containerd with its own root, state, socket and runc root.
# restrict_oom_score_adj: CAP_SYS_RESOURCE is not in this machine's bounding
# set, so runc cannot raise a container's oom_score_adj.
mkdir -p "$CLUSTER_STATE/containerd"
cat >"$CLUSTER_STATE/containerd/config.toml" <<EOF
version = 2
root = "$CLUSTER_STATE/containerd/root"
state = "$CLUSTER_STATE/containerd/state"
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
        Root = "$CLUSTER_STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_STATE/cni/net.d"
    max_conf_num = 1
EOF
start containerd containerd --config "$CLUSTER_STATE/containerd/config.toml"
ctr() { command ctr --address "$CONTAINERD_SOCK" "$@"; }
wait_for "containerd up" 60 ctr version

# The sandbox and test image: static busybox in an OCI archive.
(cd "$repo/functests" && go run ./cluster/cmd/busybox-image -ref "$NODE_IMAGE" \
	-out "$CLUSTER_STATE/busybox.tar") >"$LOGS/busybox-image.log" 2>&1
ctr -n k8s.io images import "$CLUSTER_STATE/busybox.tar" >>"$LOGS/busybox-image.log"
log "node image imported ($(since) s)"

# kubelet needs / shared (Bidirectional mount propagation).
mount --make-shared /
mkdir -p /opt/cni/bin
cat >"$CLUSTER_STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# No systemd as PID 1 and cgroup v1 on these machines.
cgroupDriver: cgroupfs
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
start kubelet "$bin/kubelet" --config "$CLUSTER_STATE/kubelet.yaml" \
	--kubeconfig "$KUBECONFIGS/kubelet.conf" --cert-dir "$CLUSTER_STATE/kubelet-pki" \
	--hostname-override "$NODE_NAME" --node-ip "$ip" --root-dir "$KUBELET_ROOT" --v 2

cat >"$CLUSTER_STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $KUBECONFIGS/kube-proxy.conf
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_SUBNET
bindAddress: $ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the machine's conntrack settings alone.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
# kube-proxy is required, not optional: this machine's outer network answers
# TCP on any address, so without it a Service address reaches a stranger.
start kube-proxy "$bin/kube-proxy" --config "$CLUSTER_STATE/kube-proxy.yaml"

wait_for "node $NODE_NAME Ready" 180 kubectl wait --timeout 2s --for condition=Ready "node/$NODE_NAME"
wait_for "default service account" 60 kubectl -n default get serviceaccount default
touch "$CLUSTER_STATE/up-complete"
log "up in $(since) s; KUBECONFIG=$ADMIN_KUBECONFIG PATH=$CLUSTER_STATE/bin:\$PATH"
