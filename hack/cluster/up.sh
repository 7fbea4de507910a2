#!/usr/bin/env bash
# make cluster-up: a two-node Kubernetes on this machine, as root, without
# Docker or a registry (VHOSTUSER_CLUSTER_NODES=1: one node). etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler run from
# $CLUSTER_STATE; each node (node.sh) has its containerd (private config),
# kubelet, kube-proxy, default pod network (Debian's bridge + host-local) and
# OVS-DPDK; node 2 lives in its own namespaces, and a DPDK link joins the
# nodes' br-dpdk bridges. cluster-down (down.sh) undoes all of it; on
# failure, run it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$here/env.sh"

[ "$(id -u)" = 0 ] || { echo "cluster-up runs as root" >&2; exit 1; }
NODES="${VHOSTUSER_CLUSTER_NODES:-2}"
case "$NODES" in 1 | 2) ;; *) echo "VHOSTUSER_CLUSTER_NODES=$NODES: 1 or 2" >&2; exit 1 ;; esac
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
for l in "$CNI_BRIDGE" "$NODE2_HOST_IF"; do
	if ip link show "$l" >/dev/null 2>&1; then
		echo "link $l exists: a cluster was not torn down; run make cluster-down" >&2
		exit 1
	fi
done
# The second node's DPDK link (librte-net-af-packet23, make deps).
if [ "$NODES" = 2 ] && ! ls /usr/lib/x86_64-linux-gnu/dpdk/pmds-*/librte_net_af_packet.so* >/dev/null 2>&1; then
	echo "DPDK's af_packet driver missing: make deps (Debian package librte-net-af-packet23)" >&2
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
echo "$NODES" >"$CLUSTER_STATE/nodes"

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
  podSubnet: $CLUSTER_CIDR
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
"$bin/kubeadm" kubeconfig user --config "$CLUSTER_STATE/kubeadm.yaml" \
	--client-name multus >"$KUBECONFIGS/multus.conf" 2>>"$LOGS/kubeadm.log"
chmod 600 "$KUBECONFIGS"/*.conf
log "PKI and kubeconfigs ($(since) s)"

# Node 2's namespaces first: its mount namespace starts as a copy of this
# machine's, which then holds no container's mounts yet.
if [ "$NODES" = 2 ]; then
	VHOSTUSER_NODE=2 bash "$here/node.sh" ns 9>&-
fi

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

# Multus' NetworkAttachmentDefinition CRD and ClusterRole, from its module.
multus_dir="$(cd "$here/multus" && go list -m -f '{{.Dir}}' gopkg.in/k8snetworkplumbingwg/multus-cni.v4)"
awk 'BEGIN { RS = "\n---\n" } /(^|\n)kind: (CustomResourceDefinition|ClusterRole)\n/ { print "---"; print }' \
	"$multus_dir/deployments/multus-daemonset.yml" >"$CLUSTER_STATE/multus-crd-rbac.yaml"

# / shared: the kubelet's Bidirectional mounts (virt-handler), and node 1's
# containerd mount namespace is its peer (node.sh).
mount --make-shared /
# The sandbox and test image: static busybox in an OCI archive.
(cd "$repo/functests" && go run ./cluster/cmd/busybox-image -ref "$NODE_IMAGE" \
	-out "$CLUSTER_STATE/busybox.tar") >"$LOGS/busybox-image.log" 2>&1

mkdir -p /opt/cni/bin
for n in $(seq "$NODES"); do
	VHOSTUSER_NODE=$n bash "$here/node.sh" up 9>&-
done
[ "$NODES" = 1 ] || bash "$here/node.sh" link 9>&-
for n in $(seq "$NODES"); do
	node_env "$n"
	wait_for "node $NODE_NAME Ready" 180 kubectl wait --timeout 2s --for condition=Ready "node/$NODE_NAME"
done
node_env 1
wait_for "default service account" 60 kubectl -n default get serviceaccount default
log "$NODES node(s) Ready, Kubernetes up ($(since) s)"

# Multus' API objects, and its kubeconfig user bound to its ClusterRole.
kubectl apply -f "$CLUSTER_STATE/multus-crd-rbac.yaml" >/dev/null
kubectl create clusterrolebinding vhostuser-cluster-multus --clusterrole multus --user multus >/dev/null
wait_for "NetworkAttachmentDefinition CRD established" 60 \
	kubectl wait --timeout 2s --for condition=Established crd/network-attachment-definitions.k8s.cni.cncf.io

# Our images, loaded as on any containerd node, then what the README tells
# users to apply.
make -C "$repo" --no-print-directory images VERSION=dev >"$LOGS/images.log" 2>&1 ||
	{ echo "make images failed: $LOGS/images.log" >&2; exit 1; }
# import_images TAR...: into every node's containerd, each image also
# named by its manifest digest (repo@sha256:...), as a pull from a registry
# names it: the kubelet then reports that name as the container's imageID,
# and KubeVirt renders a migration target pod's container disk and kernel
# boot images by it (pkg/container-disk ExtractImageIDsFromSourcePod), which
# the target node resolves locally.
import_images() {
	local n img name digest
	for n in $(seq "$NODES"); do
		node_env "$n"
		for img in "$@"; do
			ctr -n k8s.io images import "$img" | tee -a "$LOGS/images.log" |
				sed -n 's/^unpacking \([^ ]*\) (\(sha256:[0-9a-f]*\)).*/\1 \2/p' |
				while read -r name digest; do
					ctr -n k8s.io images tag --force "$name" "${name%:*}@$digest" >/dev/null
				done
		done
	done
	node_env 1
}
import_images "$repo"/bin/images/*.tar
log "our images imported ($(since) s)"
kubectl apply -k "$repo/manifests/overlays/default" >"$LOGS/apply-default.log"
wait_for "vhostuser-cni-installer rolled out" 120 \
	kubectl -n vhostuser-system rollout status daemonset/vhostuser-cni-installer --timeout 2s

# KubeVirt, installed the way operators do: the operator manifest (CRDs,
# RBAC, the virt-operator Deployment) rendered by KubeVirt's own tools, then
# the KubeVirt CR; then our binding registered in it by manifests/binding, as
# docs/install.md tells users. Images are imported, never pulled.
import_images "$kv"/images/*.tar
log "KubeVirt images imported ($(since) s)"
# Node 1 runs the control plane: say so, as kubeadm would (virt-operator's
# Deployment requires a control-plane node).
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
