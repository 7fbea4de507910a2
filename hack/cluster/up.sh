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
# cluster-up and cluster-down never run at the same time.
mkdir -p "$CLUSTER_CACHE"
exec 9>"$CLUSTER_LOCK"
flock 9
if [ -e "$CLUSTER_STATE/up-started" ]; then
	echo "$CLUSTER_STATE exists: a cluster is up or was not torn down; run make cluster-down first" >&2
	exit 1
fi
# Debian packages beyond make deps: the default network's CNI plugins,
# iptables (kubelet, kube-proxy), etcd is unpacked by build.sh.
missing=()
for p in containernetworking-plugins iptables curl bc; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
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
# The node OVS's database socket is at the stock path, and the node
# configuration is our installer's: another OVS or installation on this
# machine would be taken over, and cluster-down would remove its files.
for f in "$OVS_DB_SOCK" "$NODE_CONFIG" "${KUBEVIRT_HOST_PATHS[@]}"; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		echo "$f exists: another OVS or vhostuser installation uses this machine, or a cluster was not torn down (make cluster-down)" >&2
		exit 1
	fi
done

on_exit() {
	[ -e "$CLUSTER_STATE/up-complete" ] ||
		echo "cluster-up failed; logs in $LOGS; make cluster-down removes what it started" >&2
}
trap on_exit EXIT

t0=$(date +%s.%N)
since() { printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)"; }

bin="$(bash "$here/build.sh" | tail -1)"
log "binaries in $bin ($(since) s)"
# KubeVirt's images, operator manifest and virtctl (kubevirt.sh).
kv="$(bash "$here/kubevirt.sh" | tail -1)"
ln -sf "$kv/virtctl" "$bin/virtctl"
log "KubeVirt images in $kv ($(since) s)"

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
# Node preparation (docs/install.md, prerequisites): our plugin refuses ADD
# unless fs.protected_symlinks is 1. Restored by cluster-down.
sysctl -qw fs.protected_symlinks=1

# start NAME BINARY ARGS...: a daemon in its own session, its pid recorded.
start() {
	local name="$1"
	shift
	setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 9>&- &
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
# init binds (with super-admin.conf, system:masters, as kubeadm does).
"$bin/kubectl" --kubeconfig "$KUBECONFIGS/super-admin.conf" create clusterrolebinding kubeadm:cluster-admins --clusterrole cluster-admin \
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

# The default pod network (Debian's bridge + host-local), delegated to by
# Multus (thin plugin), which containerd calls for every pod. containerd's
# bin_dir is ours: Multus and links to Debian's plugins; Multus also looks in
# /opt/cni/bin, where our installer DaemonSet puts the vhostuser plugin.
mkdir -p "$CLUSTER_STATE/cni/net.d" "$CLUSTER_STATE/cni/ipam" "$CLUSTER_STATE/cni/bin" "$CLUSTER_STATE/cni/multus"
for p in bridge host-local loopback; do ln -sf "/usr/lib/cni/$p" "$CLUSTER_STATE/cni/bin/$p"; done
ln -sf "$bin/multus" "$CLUSTER_STATE/cni/bin/multus"
"$bin/kubeadm" kubeconfig user --config "$CLUSTER_STATE/kubeadm.yaml" \
	--client-name multus >"$KUBECONFIGS/multus.conf" 2>>"$LOGS/kubeadm.log"
chmod 600 "$KUBECONFIGS/multus.conf"
cat >"$CLUSTER_STATE/cni/net.d/00-multus.conf" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "multus-cni-network",
  "type": "multus",
  "kubeconfig": "$KUBECONFIGS/multus.conf",
  "binDir": "/opt/cni/bin",
  "cniDir": "$CLUSTER_STATE/cni/multus",
  "confDir": "$CLUSTER_STATE/cni/multus/net.d",
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
            "dataDir": "$CLUSTER_STATE/cni/ipam",
            "ranges": [[{"subnet": "$POD_SUBNET"}]],
            "routes": [{"dst": "0.0.0.0/0"}]
          }
        }
      ]
    }
  ]
}
EOF
# Multus' NetworkAttachmentDefinition CRD and ClusterRole, from its module.
multus_dir="$(cd "$here/multus" && go list -m -f '{{.Dir}}' gopkg.in/k8snetworkplumbingwg/multus-cni.v4)"
awk 'BEGIN { RS = "\n---\n" } /(^|\n)kind: (CustomResourceDefinition|ClusterRole)\n/ { print "---"; print }' \
	"$multus_dir/deployments/multus-daemonset.yml" >"$CLUSTER_STATE/multus-crd-rbac.yaml"

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
    bin_dir = "$CLUSTER_STATE/cni/bin"
    conf_dir = "$CLUSTER_STATE/cni/net.d"
    max_conf_num = 1
EOF
# containerd is PID 1 of its own PID namespace, which its containers and
# the hostPID pods (virt-handler) share: this machine's PID 1 (the sandbox's
# init) does not let even root open /proc/1/root or /proc/1/ns/mnt, through
# which virt-handler reaches the node's files and mount namespace (device
# plugins for /dev/net/tun and /dev/kvm, virt-chroot). Its mount namespace
# is the node's / as a shared peer (mounts propagate both ways, as if it
# were the node's own) with a /proc of its PID namespace (containerd reads
# /proc/<its pid>/task/...); so its /proc/1/root is the node's /.
# The kubelet needs / shared too (Bidirectional mount propagation).
mount --make-shared /
start containerd-unshare unshare --pid --fork --kill-child --mount --propagation unchanged --mount-proc \
	containerd --config "$CLUSTER_STATE/containerd/config.toml"
containerd_child() { pgrep -P "$(cat "$PIDS/containerd-unshare.pid")" -x containerd >"$PIDS/containerd.pid"; }
wait_for "containerd started in its PID namespace" 10 containerd_child
ctr() { command ctr --address "$CONTAINERD_SOCK" "$@"; }
wait_for "containerd up" 60 ctr version

# The sandbox and test image: static busybox in an OCI archive.
(cd "$repo/functests" && go run ./cluster/cmd/busybox-image -ref "$NODE_IMAGE" \
	-out "$CLUSTER_STATE/busybox.tar") >"$LOGS/busybox-image.log" 2>&1
ctr -n k8s.io images import "$CLUSTER_STATE/busybox.tar" >>"$LOGS/busybox-image.log"
log "node image imported ($(since) s)"

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
# Service addresses that kube-proxy has not (yet) translated are refused
# instead of reaching the outer network, which answers on any address: a
# client that connects before kube-proxy's rules exist (kube-apiserver
# checking virt-api's APIService right after its creation) would otherwise
# keep a connection to a stranger alive (HTTP 404s, APIService unavailable,
# virtctl console 503). The filter table runs after kube-proxy's DNAT.
# A TCP reset, not an ICMP error, so an already established connection
# (which TCP would keep retrying) ends at once and its client reconnects.
iptables -I OUTPUT -d "$SERVICE_CIDR" -m comment --comment vhostuser-cluster-services -j REJECT
iptables -I OUTPUT -d "$SERVICE_CIDR" -p tcp -m comment --comment vhostuser-cluster-services -j REJECT --reject-with tcp-reset

wait_for "node $NODE_NAME Ready" 180 kubectl wait --timeout 2s --for condition=Ready "node/$NODE_NAME"
wait_for "default service account" 60 kubectl -n default get serviceaccount default
log "node Ready, Kubernetes up ($(since) s)"

# Multus' API objects, and its kubeconfig user bound to its ClusterRole.
kubectl apply -f "$CLUSTER_STATE/multus-crd-rbac.yaml" >/dev/null
kubectl create clusterrolebinding vhostuser-cluster-multus --clusterrole multus --user multus >/dev/null
wait_for "NetworkAttachmentDefinition CRD established" 60 \
	kubectl wait --timeout 2s --for condition=Established crd/network-attachment-definitions.k8s.cni.cncf.io

# The node's OVS-DPDK: bridge br-dpdk, netdev datapath.
bash "$here/ovs.sh" start >"$LOGS/ovs.log" 2>&1 9>&- || { echo "OVS-DPDK did not start: $LOGS/ovs.log" >&2; exit 1; }
log "OVS-DPDK with bridge $OVS_BRIDGE up ($(since) s)"

# Our images, loaded as on any containerd node, then what the README tells
# users to apply.
make -C "$repo" --no-print-directory images VERSION=dev >"$LOGS/images.log" 2>&1 ||
	{ echo "make images failed: $LOGS/images.log" >&2; exit 1; }
for img in "$repo"/bin/images/*.tar; do
	ctr -n k8s.io images import "$img" >>"$LOGS/images.log"
done
log "our images imported ($(since) s)"
kubectl apply -k "$repo/manifests/overlays/default" >"$LOGS/apply-default.log"
wait_for "vhostuser-cni-installer rolled out" 120 \
	kubectl -n vhostuser-system rollout status daemonset/vhostuser-cni-installer --timeout 2s

# KubeVirt, installed the way operators do: the operator manifest (CRDs,
# RBAC, the virt-operator Deployment) rendered by KubeVirt's own tools, then
# the KubeVirt CR; then our binding registered in it by manifests/binding, as
# docs/install.md tells users. Images are imported, never pulled.
for img in "$kv"/images/*.tar; do
	ctr -n k8s.io images import "$img" >>"$LOGS/kubevirt-images.log"
done
log "KubeVirt images imported ($(since) s)"
# The single node runs the control plane: say so, as kubeadm would
# (virt-operator's Deployment requires a control-plane node).
kubectl label --overwrite node "$NODE_NAME" node-role.kubernetes.io/control-plane= >/dev/null
kubectl apply -f "$kv/kubevirt-operator.yaml" >"$LOGS/apply-kubevirt.log"
wait_for "virt-operator rolled out" 300 \
	kubectl -n "$KUBEVIRT_NAMESPACE" rollout status deployment/virt-operator --timeout 2s
# create, as KubeVirt's install instructions do: a CR made by kubectl apply
# would lose every field manifests/binding does not repeat when that is
# applied (kubectl's three-way merge prunes them from last-applied).
kubectl create -f "$here/kubevirt-cr.yaml" >>"$LOGS/apply-kubevirt.log"
kubectl apply -k "$repo/manifests/binding" >>"$LOGS/apply-kubevirt.log"
wait_for "KubeVirt Available" 900 \
	kubectl -n "$KUBEVIRT_NAMESPACE" wait --timeout 2s --for condition=Available kubevirt/kubevirt

touch "$CLUSTER_STATE/up-complete"
log "up in $(since) s; KUBECONFIG=$ADMIN_KUBECONFIG PATH=$CLUSTER_STATE/bin:\$PATH"
