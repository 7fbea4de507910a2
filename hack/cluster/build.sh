#!/usr/bin/env bash
# Builds the cluster's Kubernetes binaries from this tools module and fetches
# etcd from Debian, into a cache directory keyed by the versions (go.mod and
# go.sum hash), so that a second run on the same machine costs nothing.
# Prints the binary directory on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"

key="k8s-$K8S_VERSION-$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)"
out="$CLUSTER_CACHE/$key"
tools=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl)

if [ ! -f "$out/.complete" ]; then
	mkdir -p "$out.tmp"
	minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
	ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	echo "building ${tools[*]} ($K8S_VERSION) into $out" >&2
	start=$(date +%s)
	# No DWARF: the binaries are stripped (-s -w) anyway, and not generating it
	# saves about 9% of a cold compile.
	(cd "$here" && CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "$ldflags" -o "$out.tmp/" \
		"${tools[@]/#/k8s.io/kubernetes/cmd/}")
	echo "built in $(($(date +%s) - start)) s" >&2
	touch "$out.tmp/.complete"
	rm -rf "$out"
	mv "$out.tmp" "$out"
	# Older keys are dead weight (about 500 MB each).
	find "$CLUSTER_CACHE" -mindepth 1 -maxdepth 1 -name 'k8s-*' ! -name "$key" -exec rm -rf {} +
fi

# etcd from Debian's package, unpacked (installing it would start a system etcd).
etcd_dir="$CLUSTER_CACHE/etcd"
if [ ! -x "$etcd_dir/usr/bin/etcd" ]; then
	tmp="$(mktemp -d)"
	chown _apt "$tmp" 2>/dev/null || true # apt-get download drops privileges to _apt
	# A fresh machine may have no package lists yet.
	(cd "$tmp" && { apt-get download -q etcd-server >&2 ||
		{ apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get download -q etcd-server >&2; }; })
	rm -rf "$etcd_dir" && mkdir -p "$etcd_dir"
	dpkg -x "$tmp"/etcd-server_*.deb "$etcd_dir"
	rm -rf "$tmp"
fi
ln -sf "$etcd_dir/usr/bin/etcd" "$out/etcd"

# Multus' thin plugin, from its own tools module.
mkey="multus-$MULTUS_VERSION-$(cat "$here/multus/go.mod" "$here/multus/go.sum" | sha256sum | cut -c1-12)"
mout="$CLUSTER_CACHE/$mkey"
if [ ! -x "$mout/multus" ]; then
	echo "building multus $MULTUS_VERSION into $mout" >&2
	mkdir -p "$mout"
	(cd "$here/multus" && CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w" -o "$mout/multus.tmp" \
		gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus)
	mv "$mout/multus.tmp" "$mout/multus"
	find "$CLUSTER_CACHE" -mindepth 1 -maxdepth 1 -name 'multus-*' ! -name "$mkey" -exec rm -rf {} +
fi
ln -sf "$mout/multus" "$out/multus"
echo "$out"
