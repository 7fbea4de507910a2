#!/usr/bin/env bash
# Builds what make cluster-up needs to install KubeVirt the way operators do,
# without a registry or container engine, into a cache directory keyed by the
# inputs (a warm rerun costs only the key computation):
#   - KubeVirt's commands and manifest tools from the tools module
#     hack/cluster/kubevirt (kubevirt.io/kubevirt as a module dependency);
#     container-disk is KubeVirt's C program, compiled from the module cache;
#   - a Debian root filesystem: the files (dpkg -L) of the installed packages'
#     dependency closure of libvirt + QEMU + the tools virt-handler execs
#     (hack/install-deps.sh installs them), one layer shared by virt-handler
#     and virt-launcher;
#   - OCI image archives (functests/cluster/cmd/layer-image) of virt-operator,
#     virt-api, virt-controller, virt-handler, virt-launcher, the test-only
#     hook sidecar (KubeVirt's sidecar-shim + functests/testonlyhook) and the
#     kernelBoot image of the test guest (functests/guest);
#   - the operator manifest, rendered by KubeVirt's own resource-generator
#     and manifest-templator from the module's template, with our image names.
# Prints the output directory on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$here/env.sh"

KV_MODULE=kubevirt.io/kubevirt
# Packages whose dependency closure makes the Debian layer: libvirt with the
# QEMU driver and virsh (virt-launcher, node-labeller.sh), QEMU, and what
# virt-handler and the scripts exec (findmnt, sysctl, ip, sh, grep; not nft:
# it only serves masquerade, and the test VMs have no pod network).
DEBIAN_ROOTS=(bash dash coreutils grep sed findutils util-linux procps iproute2
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86)

export GONOSUMDB="${GONOSUMDB:-libvirt.org,kubevirt.io/virt-template-*,github.com/rhobs}"
modkey="$(cat "$here/kubevirt/go.mod" "$here/kubevirt/go.sum" "$0" | sha256sum | cut -c1-12)"
kv_version="$(awk '$1 == "kubevirt.io/kubevirt" && $2 ~ /^v/ {print $2; exit}' "$here/kubevirt/go.mod")"
[ -n "$kv_version" ] || { echo "no kubevirt.io/kubevirt version in $here/kubevirt/go.mod" >&2; exit 1; }

# 1. KubeVirt's binaries.
bindir="$CLUSTER_CACHE/kubevirt-bin-$modkey"
if [ ! -f "$bindir/.complete" ]; then
	echo "building KubeVirt $kv_version commands into $bindir" >&2
	start=$(date +%s)
	rm -rf "$bindir" && mkdir -p "$bindir"
	# The version stamps of KubeVirt's own build (client-go/version), which
	# virtctl and the components report and check.
	kvldflags="-s -w -X kubevirt.io/client-go/version.gitVersion=$kv_version -X kubevirt.io/client-go/version.gitTreeState=clean"
	# No DWARF (the binaries are stripped anyway; about 9% of a cold compile).
	# virt-launcher's flags are functests/kubevirtbin's, whose build (make
	# functest runs first) leaves its compiled packages in the Go build cache.
	gcflags=-gcflags=all=-dwarf=false
	(
		cd "$here/kubevirt"
		# virt-launcher loads libvirt.so.0 at run time (no libvirt-dev); both
		# cgo commands run on the Debian layer; everything else is static.
		CGO_ENABLED=1 go build -trimpath -tags libvirt_dlopen "$gcflags" -ldflags "$kvldflags" -o "$bindir/" "$KV_MODULE/cmd/virt-launcher"
		# virt-handler's node-labeller reads KVM capabilities through cgo.
		CGO_ENABLED=1 go build -trimpath "$gcflags" -ldflags "$kvldflags" -o "$bindir/" "$KV_MODULE/cmd/virt-handler"
		CGO_ENABLED=0 go build -trimpath "$gcflags" -ldflags "$kvldflags" -o "$bindir/" \
			"$KV_MODULE"/cmd/{virt-operator,virt-api,virt-controller,virt-chroot,virt-launcher-monitor,virt-probe,virt-tail,virt-freezer,virtctl,sidecars} \
			"$KV_MODULE"/tools/{manifest-templator,resource-generator}
		moddir="$(go list -m -f '{{.Dir}}' "$KV_MODULE")"
		gcc -static -O2 -o "$bindir/container-disk" "$moddir/cmd/container-disk-v2alpha/main.c"
	)
	(cd "$repo/functests" && CGO_ENABLED=0 go build -trimpath -o "$bindir/" ./cluster/cmd/layer-image &&
		CGO_ENABLED=0 go build -trimpath -o "$bindir/onDefineDomain" ./cmd/test-only-msix-vectors0)
	touch "$bindir/.complete"
	echo "KubeVirt commands built in $(($(date +%s) - start)) s" >&2
	find "$CLUSTER_CACHE" -mindepth 1 -maxdepth 1 -name 'kubevirt-bin-*' ! -name "kubevirt-bin-$modkey" -exec rm -rf {} +
fi
moddir="$(cd "$here/kubevirt" && go list -m -f '{{.Dir}}' "$KV_MODULE")"

# 2. Images and manifests, keyed by the binaries, this script, the installed
# Debian packages and the test guest's sources.
debkey="$(dpkg-query -W -f '${Package} ${Version} ${Status}\n' | sha256sum | cut -c1-12)"
srckey="$(cat "$0" "$repo"/functests/guest/*.go "$repo"/functests/guest/init.sh \
	"$repo"/functests/testonlyhook/*.go "$repo"/functests/cluster/cmd/*/*.go | sha256sum | cut -c1-12)"
out="$CLUSTER_CACHE/kubevirt-img-$modkey-$debkey-$srckey"
if [ -f "$out/.complete" ]; then
	echo "$out"
	exit 0
fi
echo "assembling KubeVirt images into $out" >&2
start=$(date +%s)
rm -rf "$out" && mkdir -p "$out/images" "$out/layers"
work="$out/work"
mkdir -p "$work"

# The dependency closure (Depends, Pre-Depends) among installed packages; an
# alternative or virtual dependency is satisfied by the first installed one.
declare -A seen=()
queue=("${DEBIAN_ROOTS[@]}")
providers="$(dpkg-query -W -f '${Package} ${Provides}\n' 2>/dev/null)"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
while ((${#queue[@]})); do
	p="${queue[0]}"
	queue=("${queue[@]:1}")
	[ -z "${seen[$p]:-}" ] || continue
	installed "$p" || { echo "Debian package $p is not installed: run make deps (hack/install-deps.sh)" >&2; exit 1; }
	seen[$p]=1
	IFS=',' read -ra deps <<<"$(dpkg-query -W -f='${Depends},${Pre-Depends}' "$p")"
	for d in "${deps[@]}"; do
		IFS='|' read -ra alts <<<"$d"
		for a in "${alts[@]}"; do
			n="$(sed 's/([^)]*)//; s/:any//; s/[[:space:]]//g' <<<"$a")"
			[ -n "$n" ] || continue
			if installed "$n"; then queue+=("$n"); break; fi
			prov="$(awk -v n="$n" '{for (i = 2; i <= NF; i++) { g = $i; sub(/[,(].*/, "", g); if (g == n) { print $1; exit } }}' <<<"$providers")"
			if [ -n "$prov" ]; then queue+=("$prov"); break; fi
		done
	done
done
printf '%s\n' "${!seen[@]}" | sort >"$out/debian-packages"
echo "Debian layer: $(wc -l <"$out/debian-packages") packages" >&2

# Their files, each at its canonical path (/bin/x is /usr/bin/x on a merged
# /usr), copied from this machine; directories are made as needed. Each
# directory is resolved once (a readlink per file cost 110 s of 5300 files).
rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/usr/sbin" "$rootfs/usr/lib" "$rootfs/usr/lib64"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$rootfs/$l"; done
# shellcheck disable=SC2046 # a package list
dpkg -L $(cat "$out/debian-packages") 2>/dev/null | sort -u | {
	declare -A canon=()
	while read -r f; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ -d "$f" ] && [ ! -L "$f" ] && continue
		d="${f%/*}" && d="${d:-/}"
		[ -n "${canon[$d]:-}" ] || canon[$d]="$(readlink -f "$d")"
		echo "${canon[$d]#/}/${f##*/}"
	done
} | sort -u >"$work/files"
tar -C / -cf - --no-recursion --xattrs -T "$work/files" | tar -C "$rootfs" -x --keep-directory-symlink --xattrs
# The merged-/usr symlinks of the canonical paths' parents are in place; the
# image's own directories:
mkdir -p "$rootfs"/{tmp,run,etc,root,var/lib/libvirt,var/log/libvirt,var/cache/libvirt,var/lib/kubevirt-node-labeller}
chmod 1777 "$rootfs/tmp"
rm -rf "$rootfs/var/run" && ln -s ../run "$rootfs/var/run"
# Accounts of KubeVirt's images (cmd/virt-launcher/BUILD.bazel): root and
# qemu (107); and Debian's libvirt-qemu, which Debian's libvirtd resolves as
# its built-in default QEMU user before it reads qemu.conf when it runs as
# root (the node-labeller init container): without it the QEMU driver fails
# ("Failed to parse user 'libvirt-qemu'").
printf '%s\n' root:x:0:0:root:/root:/bin/bash 'qemu:x:107:107:qemu user:/home/qemu:/bin/bash' \
	libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin \
	>"$rootfs/etc/passwd"
printf '%s\n' root:x:0: qemu:x:107: libvirt-qemu:x:64055: nogroup:x:65534: >"$rootfs/etc/group"
cp "$moddir/cmd/virt-launcher/nsswitch.conf" "$rootfs/etc/nsswitch.conf"
chmod 644 "$rootfs"/etc/{passwd,group,nsswitch.conf}
layer() { # layer NAME DIR: an uncompressed, reproducible tar of DIR
	tar -C "$2" --sort=name --mtime=@0 --numeric-owner --xattrs --xattrs-include='security.capability' \
		-cf "$out/layers/$1.tar" .
}
layer debian "$rootfs"

# virt-launcher: KubeVirt's binaries and libvirt configuration, and the
# virtqemud shim (Debian ships only the monolithic libvirtd).
l="$work/launcher"
mkdir -p "$l/usr/bin" "$l/usr/sbin" "$l/etc/libvirt"
cp "$bindir"/{virt-launcher,virt-launcher-monitor,virt-probe,virt-tail,virt-freezer,container-disk} "$l/usr/bin/"
cp "$moddir/cmd/virt-launcher/node-labeller/node-labeller.sh" "$l/usr/bin/"
chmod 755 "$l"/usr/bin/*
# KubeVirt's image gives virt-launcher-monitor this file capability; it hands
# it on to virt-launcher as an ambient capability.
setcap cap_net_bind_service=+ep "$l/usr/bin/virt-launcher-monitor"
cp "$moddir/cmd/virt-launcher/qemu.conf" "$moddir/cmd/virt-launcher/virtqemud.conf" "$l/etc/libvirt/"
chmod 644 "$l"/etc/libvirt/*
cat >"$l/usr/sbin/virtqemud" <<'EOF'
#!/bin/sh
# virtqemud stand-in (vhostuser cluster image, functests/README.md): Debian
# ships only the monolithic libvirtd, which serves the same API. Non-root,
# virt-launcher dials $XDG_RUNTIME_DIR/libvirt/virtqemud-sock; libvirtd's
# session socket is libvirt-sock in the same directory. As root (the
# node-labeller) both are under /run/libvirt.
if [ "$(id -u)" = 0 ]; then dir=/run/libvirt; else dir="${XDG_RUNTIME_DIR:-/var/run}/libvirt"; fi
mkdir -p "$dir"
ln -sf libvirt-sock "$dir/virtqemud-sock"
ln -sf libvirt-sock-ro "$dir/virtqemud-sock-ro"
exec /usr/sbin/libvirtd "$@"
EOF
chmod 755 "$l/usr/sbin/virtqemud"
layer launcher "$l"

h="$work/handler"
mkdir -p "$h/usr/bin"
cp "$bindir"/{virt-handler,virt-chroot} "$h/usr/bin/"
layer handler "$h"

# Static, single-binary images (user 1001: their pods run as non-root
# without a runAsUser).
for c in virt-operator virt-api virt-controller; do
	s="$work/$c"
	mkdir -p "$s/usr/bin" "$s/etc" "$s/tmp"
	chmod 1777 "$s/tmp"
	cp "$bindir/$c" "$s/usr/bin/"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nkubevirt:x:1001:1001::/:/sbin/nologin\n' >"$s/etc/passwd"
	layer "$c" "$s"
done
# The test-only hook sidecar: KubeVirt's sidecar-shim runs onDefineDomain
# from PATH (functests/testonlyhook).
s="$work/test-only-hook"
mkdir -p "$s/usr/bin" "$s/bin"
# busybox: the functests delay this sidecar's start (sh -c 'sleep; exec'), so
# that virt-launcher's hooks manager, which calls sidecars in the order it
# found their sockets, calls our binding's sidecar first.
cp /bin/busybox "$s/bin/busybox"
cp "$bindir/sidecars" "$s/usr/bin/sidecar-shim"
cp "$bindir/onDefineDomain" "$s/usr/bin/onDefineDomain"
layer test-only-hook "$s"
# The test guest's kernel and initramfs for kernelBoot.
s="$work/guest"
mkdir -p "$s/boot"
(cd "$repo/functests" && go run ./cluster/cmd/guest-files -out "$s/boot") >&2
layer guest "$s"

li="$bindir/layer-image"
img() { "$li" -ref "$KUBEVIRT_IMAGE_PREFIX/$1:$kv_version" -out "$out/images/$1.tar" "${@:2}" >&2; }
path=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for c in virt-operator virt-api virt-controller; do
	img "$c" -layer "$out/layers/$c.tar" -user 1001 -env "$path" -entrypoint "[\"/usr/bin/$c\"]"
done
img virt-handler -layer "$out/layers/debian.tar" -layer "$out/layers/handler.tar" -env "$path" -entrypoint '["/usr/bin/virt-handler"]'
img virt-launcher -layer "$out/layers/debian.tar" -layer "$out/layers/launcher.tar" -env "$path" -entrypoint '["/usr/bin/virt-launcher"]'
"$li" -ref "$TEST_HOOK_IMAGE" -out "$out/images/test-only-hook.tar" -layer "$out/layers/test-only-hook.tar" \
	-env "$path" -entrypoint '["/usr/bin/sidecar-shim"]' >&2
"$li" -ref "$GUEST_IMAGE" -out "$out/images/guest.tar" -layer "$out/layers/guest.tar" >&2

# The operator manifest: KubeVirt's template rendered by its own tools, as
# its release does (hack/build-manifests.sh), with our image names.
gen="$work/generated"
mkdir -p "$gen"
"$bindir/resource-generator" --type=kv >"$gen/kv-resource.yaml"
"$bindir/resource-generator" --type=operator-rbac --namespace="$KUBEVIRT_NAMESPACE" >"$gen/rbac-operator.authorization.k8s.yaml.in"
imgflags=()
for c in operator api controller handler launcher; do
	imgflags+=("--virt-$c-image=$KUBEVIRT_IMAGE_PREFIX/virt-$c:$kv_version")
done
"$bindir/manifest-templator" --process-files --process-vars --namespace="$KUBEVIRT_NAMESPACE" \
	--container-prefix="$KUBEVIRT_IMAGE_PREFIX" --container-tag="$kv_version" --image-pull-policy=IfNotPresent \
	"${imgflags[@]}" \
	--kubevirt-logo-path=/dev/null --generated-manifests-dir="$gen" --input-file="$moddir/manifests/release/kubevirt-operator.yaml.in" \
	>"$out/kubevirt-operator.yaml"
cp "$bindir/virtctl" "$out/virtctl"
echo "$kv_version" >"$out/version"

rm -rf "$work" "$out/layers"
touch "$out/.complete"
echo "KubeVirt images assembled in $(($(date +%s) - start)) s" >&2
find "$CLUSTER_CACHE" -mindepth 1 -maxdepth 1 -name 'kubevirt-img-*' ! -name "$(basename "$out")" -exec rm -rf {} +
echo "$out"
