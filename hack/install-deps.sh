#!/usr/bin/env bash
# Installs the Debian packages the tests, benchmarks and the demo need, when missing.
# Idempotent: a second run on the same machine installs nothing and takes well under a second.
#
# Usage: install-deps.sh [CGO_READY]
# gcc and libc6-dev (cgo) are installed first; when CGO_READY is given, that
# file is created as soon as they are, so that make demo (hack/demo-prepare.sh)
# can start building KubeVirt's virt-launcher while the rest installs.
set -euo pipefail
cgo_ready=${1:-}
CGO_PKGS=(gcc libc6-dev)

PKGS=(
  # OVS-DPDK; librte-mempool-ring23 is only a Recommends but without it vhost ports never carry traffic.
  openvswitch-switch-dpdk librte-mempool-ring23
  # DPDK af_packet ports: the link between the two cluster nodes' bridges (hack/cluster).
  librte-net-af-packet23
  # QEMU guests for the dataplane test and the demo.
  qemu-system-x86 busybox-static cpio iproute2 kmod
  # libvirt without systemd, and its schema validator (xmllint comes from libxml2-utils).
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils
  # cgo for KubeVirt's virt-launcher (functests; libvirt is dlopen-ed, no libvirt-dev).
  "${CGO_PKGS[@]}"
  # hooks API code generation.
  protobuf-compiler
  # independent OCI implementations that read and run the image archives of make images
  # (containerd brings runc and ctr, what kind load image-archive uses).
  skopeo containerd
)

updated=
# install_missing installs those of its arguments that are not installed,
# reading the package lists once per run.
install_missing() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$updated" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    updated=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_missing "${CGO_PKGS[@]}"
if [ -n "$cgo_ready" ]; then touch "$cgo_ready"; fi
install_missing "${PKGS[@]}"

# Debian's default ovs-vswitchd is the non-DPDK build.
dpdk=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
if [ -x "$dpdk" ] && [ "$(readlink -f /usr/sbin/ovs-vswitchd)" != "$dpdk" ]; then
  update-alternatives --set ovs-vswitchd "$dpdk" >/dev/null
fi
