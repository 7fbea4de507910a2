#!/usr/bin/env bash
# A cluster node's OVS-DPDK (VHOSTUSER_NODE=N, env.sh), started by hand as
# internal/ovsenv does: ovsdb-server and the DPDK ovs-vswitchd with private
# run/log/db directories but the database socket at the stock path in the
# node's mount namespace (env.sh), DPDK without hugepages (they belong to
# whoever reserves them on this shared machine), a netdev bridge. The
# database also listens on $OVS_DIR/db.sock, which this machine's tools and
# the tests use for either node.
#   [VHOSTUSER_NODE=N] ovs.sh start | stop | restart-vswitchd
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
export OVS_RUNDIR="$OVS_DIR" OVS_LOGDIR="$OVS_DIR" OVS_DBDIR="$OVS_DIR" OVS_SYSCONFDIR="$OVS_DIR"
vsctl() { ovs-vsctl --db "unix:$OVS_DIR/db.sock" --timeout 10 "$@"; }

start() {
	for b in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl; do
		command -v "$b" >/dev/null || { echo "$b missing: make deps (openvswitch-switch-dpdk)" >&2; exit 1; }
	done
	case "$(readlink -f "$(command -v ovs-vswitchd)")" in
	*dpdk*) ;;
	*) echo "ovs-vswitchd is not the DPDK build: make deps selects it" >&2; exit 1 ;;
	esac
	mkdir -p "$OVS_DIR"
	"${NODE_EXEC[@]}" mkdir -p "$(dirname "$OVS_DB_SOCK")"
	ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	"${NODE_EXEC[@]}" ovsdb-server "$OVS_DIR/conf.db" --remote "punix:$OVS_DB_SOCK" --remote "punix:$OVS_DIR/db.sock" \
		--pidfile="$OVS_DIR/ovsdb-server.pid" --unixctl="$OVS_DIR/ovsdb-server.ctl" \
		--log-file="$OVS_DIR/ovsdb-server.log" --detach
	vsctl --no-wait init
	# per-port-memory: without hugepages DPDK has 512 MiB, in which the shared
	# mempool does not fit twice (functests/README.md).
	vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:pmd-maxsleep=10000 other_config:per-port-memory=true \
		other_config:dpdk-extra="\"--file-prefix=$OVS_FILE_PREFIX --no-huge --legacy-mem -m 512\"" \
		dpdk_initialized=false
	[ -z "$OVS_NETNS" ] || ip netns add "$OVS_NETNS"
	vswitchd
	for _ in $(seq 300); do
		[ "$(vsctl --no-wait get Open_vSwitch . dpdk_initialized 2>/dev/null)" = true ] && break
		sleep 0.2
	done
	[ "$(vsctl --no-wait get Open_vSwitch . dpdk_initialized)" = true ] ||
		{ echo "OVS-DPDK did not initialise: $OVS_DIR/ovs-vswitchd.log" >&2; exit 1; }
	vsctl add-br "$OVS_BRIDGE" -- set Bridge "$OVS_BRIDGE" datapath_type=netdev
}

# vswitchd: in node 1's OVS network namespace, or node 2's own.
vswitchd() {
	local in=("${NODE_EXEC[@]}")
	[ -z "$OVS_NETNS" ] || in=(ip netns exec "$OVS_NETNS")
	"${in[@]}" ovs-vswitchd "unix:$OVS_DIR/db.sock" \
		--pidfile="$OVS_DIR/ovs-vswitchd.pid" --unixctl="$OVS_DIR/ovs-vswitchd.ctl" \
		--log-file="$OVS_DIR/ovs-vswitchd.log" --detach
}

# restart-vswitchd: as an operator restarts it (an upgrade, a crash loop):
# ovs-appctl exit, then (after DOWN_SECONDS, default 0) the same command line
# again. The database and its ports stay; ovs-vswitchd re-creates the
# vhost-user clients from it.
restart_vswitchd() {
	local pid
	pid="$(cat "$OVS_DIR/ovs-vswitchd.pid")"
	ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" exit
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$pid" 2>/dev/null || { echo "ovs-vswitchd $pid did not exit" >&2; exit 1; }
	sleep "${DOWN_SECONDS:-0}"
	vswitchd
}

stop() {
	if [ -S "$OVS_DIR/ovs-vswitchd.ctl" ]; then
		# --cleanup: no datapath state (the bridge's tap device) survives.
		ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" exit --cleanup 2>/dev/null || true
	fi
	if [ -S "$OVS_DIR/ovsdb-server.ctl" ]; then
		ovs-appctl -t "$OVS_DIR/ovsdb-server.ctl" exit 2>/dev/null || true
	fi
	local f pid
	for f in "$OVS_DIR/ovs-vswitchd.pid" "$OVS_DIR/ovsdb-server.pid"; do
		[ -f "$f" ] || continue
		pid="$(cat "$f")"
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$OVS_DIR"; then
			kill -KILL "$pid"
		fi
	done
	if [ -n "$OVS_NETNS" ] && ip netns list | grep -qw "$OVS_NETNS"; then
		ip netns del "$OVS_NETNS"
	fi
	rm -rf "/var/run/dpdk/$OVS_FILE_PREFIX"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart-vswitchd) restart_vswitchd ;;
*) echo "usage: ovs.sh start|stop|restart-vswitchd" >&2; exit 2 ;;
esac
