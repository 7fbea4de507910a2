#!/usr/bin/env bash
# make cluster-down: stops every process cluster-up started and removes
# everything it created (mounts, network namespaces, iptables chains,
# cgroups, the CNI bridge, files), restores the kernel settings and the
# propagation of /. Safe to run twice and after a failed cluster-up.
# Processes are found by their pid files or by the state directory in their
# command line, never by name: other users of this machine run their own.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"

[ "$(id -u)" = 0 ] || { echo "cluster-down runs as root" >&2; exit 1; }
# cluster-up and cluster-down never run at the same time.
mkdir -p "$CLUSTER_CACHE"
exec 9>"$CLUSTER_LOCK"
flock 9
failed=0

if [ ! -d "$CLUSTER_STATE" ]; then
	log "no $CLUSTER_STATE: nothing to stop"
	exec bash "$here/check-clean.sh"
fi
bin="$CLUSTER_STATE/bin"

# Pods first, while the kubelet still runs, so that CNI DEL runs for each
# (our vhostuser plugin's ports and directories go with it).
if [ -f "$PIDS/kubelet.pid" ] && [ -x "$bin/kubectl" ] && kubectl get --raw /readyz >/dev/null 2>&1; then
	kubectl delete daemonsets,deployments,replicasets,statefulsets,jobs --all --all-namespaces \
		--wait=false >/dev/null 2>&1
	kubectl delete pods --all --all-namespaces --grace-period 5 --timeout 60s >/dev/null 2>&1 ||
		log "some pods did not go within 60 s; removing their containers directly"
	log "pods deleted ($(since) s)"
fi

# Each node's daemons, containers, OVS and cgroups; node 2's namespaces
# (node.sh). Node 2 first: its pods' traffic may cross node 1.
for n in 2 1; do
	[ "$n" = 1 ] || [ -d "$CLUSTER_STATE/node2" ] || continue
	VHOSTUSER_NODE=$n bash "$here/node.sh" down 9>&- || failed=1
done
node_env 1
stop kube-scheduler kube-controller-manager

stop kube-apiserver
stop etcd

# kube-proxy's own chains, then every KUBE-* chain the kubelet made.
if [ -x "$bin/kube-proxy" ] && [ -f "$CLUSTER_STATE/kube-proxy.yaml" ]; then
	"$bin/kube-proxy" --cleanup --config "$CLUSTER_STATE/kube-proxy.yaml" >"$LOGS/kube-proxy-cleanup.log" 2>&1 ||
		log "kube-proxy --cleanup failed: $LOGS/kube-proxy-cleanup.log"
fi
for ipt in iptables ip6tables; do
	for table in filter nat mangle; do
		chains="$($ipt -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}')"
		[ -n "$chains" ] || continue
		# Rules in the built-in chains that jump to ours, then ours.
		$ipt -t "$table" -S | grep -E -- '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' |
			while read -r rule; do
				# shellcheck disable=SC2086 # a rule is a word list
				eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null
			done
		for ch in $chains; do $ipt -t "$table" -F "$ch" 2>/dev/null; done
		for ch in $chains; do $ipt -t "$table" -X "$ch" 2>/dev/null; done
	done
done

# The bridge plugin's masquerade rules of pods that had no CNI DEL: they
# carry our network's name in their comment.
while read -r rule; do
	chain="$(sed -n 's/.* -j \(CNI-[0-9a-f]*\).*/\1/p' <<<"$rule")"
	eval "iptables -t nat -D ${rule#-A }" 2>/dev/null
	[ -n "$chain" ] && iptables -t nat -F "$chain" 2>/dev/null && iptables -t nat -X "$chain" 2>/dev/null
done < <(iptables -t nat -S POSTROUTING 2>/dev/null | grep -F 'name: \"vhostuser-cluster\"')
# up.sh's refusal of untranslated service addresses.
while iptables -D OUTPUT -d "$SERVICE_CIDR" -p tcp -m comment --comment vhostuser-cluster-services -j REJECT --reject-with tcp-reset 2>/dev/null; do :; done
while iptables -D OUTPUT -d "$SERVICE_CIDR" -m comment --comment vhostuser-cluster-services -j REJECT 2>/dev/null; do :; done

# Mounts under the kubelet root and the state directory, deepest first.
for root in "$KUBELET_ROOT" "${KUBEVIRT_HOST_PATHS[@]}" "$CLUSTER_STATE"; do
	while read -r m; do
		umount -l "$m" 2>/dev/null || { log "cannot unmount $m"; failed=1; }
	done < <(awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
done

ip link del "$CNI_BRIDGE" 2>/dev/null && log "removed bridge $CNI_BRIDGE"

if [ -f "$CLUSTER_STATE/sysctls" ]; then
	while IFS='=' read -r k v; do
		[ "$(sysctl -n "$k" 2>/dev/null)" = "$v" ] || sysctl -qw "$k=$v" || failed=1
	done <"$CLUSTER_STATE/sysctls"
fi
saved_sysctls="$(cat "$CLUSTER_STATE/sysctls" 2>/dev/null)"
root_was_private=0
if [ -f "$CLUSTER_STATE/root-was-private" ]; then
	mount --make-private /
	root_was_private=1
fi

# Paths outside the state directory that cluster-up found missing. Those only
# the kubelet and Multus use go whole; in those other programs on this machine
# may use too (a containerd's shim sockets, libcni's cache, CNI binaries, the
# CNI's short links) only our entries go, and the directories if empty.
rmdir_empty() { [ -d "$1" ] && find "$1" -depth -type d -empty -delete; }
if [ -f "$CLUSTER_STATE/created-paths" ]; then
	while read -r p; do
		case "$p" in
		"$KUBELET_ROOT" | /var/log/pods | /var/log/containers | /run/k8s.cni.cncf.io | /run/kubevirt | \
			/run/kubevirt-private | /run/kubevirt-libvirt-runtimes | /var/lib/kubevirt-node-labeller)
			rm -rf --one-file-system "$p" ;;
		/var/lib/cni)
			# libcni's results cache of containerd's calls: Multus' network and
			# the loopback of the same sandboxes.
			for f in /var/lib/cni/results/multus-cni-network-*; do
				[ -e "$f" ] || continue
				id="$(basename "$f" | sed 's/^multus-cni-network-\([0-9a-f]*\)-.*/\1/')"
				rm -f "$f" /var/lib/cni/results/cni-loopback-"$id"-*
			done
			rmdir_empty "$p" ;;
		/opt/cni | /opt/cni/bin)
			# What our installer DaemonSet put into the directory we made.
			rm -f /opt/cni/bin/vhostuser
			rmdir_empty "$p" ;;
		"$NODE_CONFIG")
			# Written by our installer DaemonSet (it stays after the pod).
			rm -f "$p" ;;
		/etc/vhostuser)
			# The node configuration and a killed installer's temporary file.
			rm -f "$NODE_CONFIG" "$(dirname "$NODE_CONFIG")/.$(basename "$NODE_CONFIG").tmp-"*
			rmdir_empty "$p" ;;
		"$OVS_DB_SOCK")
			# ovsdb-server removes it on exit, unless it was killed.
			[ -S "$p" ] && rm -f "$p" ;;
		*) rmdir_empty "$p" ;;
		esac
	done <"$CLUSTER_STATE/created-paths"
fi
# VHOSTUSER_CLUSTER_KEEP_LOGS=DIR keeps the daemons' logs (CI artifacts).
if [ -n "${VHOSTUSER_CLUSTER_KEEP_LOGS:-}" ] && [ -d "$LOGS" ]; then
	mkdir -p "$VHOSTUSER_CLUSTER_KEEP_LOGS" && cp -r "$LOGS/." "$OVS_DIR"/*.log "$VHOSTUSER_CLUSTER_KEEP_LOGS/" 2>/dev/null
	[ -d "$CLUSTER_STATE/node2/ovs" ] && mkdir -p "$VHOSTUSER_CLUSTER_KEEP_LOGS/node2" &&
		cp "$CLUSTER_STATE/node2/ovs"/*.log "$VHOSTUSER_CLUSTER_KEEP_LOGS/node2/" 2>/dev/null
	log "logs kept in $VHOSTUSER_CLUSTER_KEEP_LOGS"
fi
rm -rf --one-file-system "$CLUSTER_STATE" || failed=1

ROOT_WAS_PRIVATE=$root_was_private SAVED_SYSCTLS="$saved_sysctls" bash "$here/check-clean.sh" || failed=1
log "down in $(since) s"
exit "$failed"
