#!/usr/bin/env bash
# Lists anything of the cluster that is left on this machine and fails if
# there is: processes running from or talking to the state directory or
# kubelet root, mounts, cgroups, iptables chains, the CNI bridge, the second
# node's link, the OVS network namespace and DPDK files, the state directory, the OVS socket at the
# stock path, the node configuration, the installed plugin, and (given by
# cluster-down) kernel settings not restored. cluster-down runs it last.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
left=0
report() { echo "left behind: $*" >&2; left=1; }

for p in /proc/[0-9]*; do
	pid="${p#/proc/}"
	[ "$pid" = $$ ] && continue
	cmd="$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" || continue
	exe="$(readlink "$p/exe" 2>/dev/null)"
	case "$cmd $exe" in
	*"$CLUSTER_STATE"* | *"$CLUSTER_CACHE"*) report "process $pid: $cmd" ;;
	esac
done
while read -r m; do report "mount $m"; done < <(awk -v s="$CLUSTER_STATE" -v k="$KUBELET_ROOT" -v kv="${KUBEVIRT_HOST_PATHS[*]}" \
	'BEGIN { n = split(kv, r, " ") } { for (i = 1; i <= n; i++) if (index($5, r[i]) == 1) { print $5; next } }
	index($5, s) == 1 || index($5, k) == 1 {print $5}' /proc/self/mountinfo)
# virt-handler's host directories (cluster-up refuses to start while they exist).
for p in "${KUBEVIRT_HOST_PATHS[@]}"; do [ -e "$p" ] && report "$p"; done
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/vhostuser-node2; do
	[ -d "$d" ] && report "cgroup $d"
done
for ipt in iptables ip6tables; do
	for t in filter nat mangle; do
		while read -r r; do report "$ipt -t $t: $r"; done < <($ipt -t "$t" -S 2>/dev/null |
			grep -E -- '^-N KUBE-|-j KUBE-|vhostuser-cluster')
	done
done
for l in "$CNI_BRIDGE" "$NODE2_HOST_IF"; do
	ip link show "$l" >/dev/null 2>&1 && report "link $l"
done
ip netns list 2>/dev/null | grep -qw "$OVS_NETNS" && report "netns $OVS_NETNS"
for n in 1 2; do
	node_env "$n"
	[ -e "/var/run/dpdk/$OVS_FILE_PREFIX" ] && report "/var/run/dpdk/$OVS_FILE_PREFIX"
done
[ -e "$CLUSTER_STATE" ] && report "$CLUSTER_STATE"
# The node OVS's socket at the stock path and our installer's node
# configuration (cluster-up refuses to start while either exists).
[ -e "$OVS_DB_SOCK" ] && report "$OVS_DB_SOCK"
[ -e "$NODE_CONFIG" ] && report "$NODE_CONFIG"
[ -e /opt/cni/bin/vhostuser ] && report "/opt/cni/bin/vhostuser"
# cluster-down passes the kernel settings cluster-up saved (fs.protected_symlinks
# among them): each must have its old value again.
while IFS='=' read -r k v; do
	[ -n "$k" ] || continue
	cur="$(sysctl -n "$k" 2>/dev/null)"
	[ "$cur" = "$v" ] || report "sysctl $k is $cur, was $v"
done <<<"${SAVED_SYSCTLS:-}"
# cluster-down passes whether / was private before cluster-up.
if [ "${ROOT_WAS_PRIVATE:-}" = 1 ] && [ "$(findmnt -no PROPAGATION /)" != private ]; then
	report "/ is $(findmnt -no PROPAGATION /), was private"
fi
exit "$left"
