#!/usr/bin/env bash
# Installs the Debian packages the tests, benchmarks and the demo need, when missing.
# Idempotent: a second run on the same machine installs nothing and takes well under a second.
set -euo pipefail

PKGS=(
  # OVS-DPDK; librte-mempool-ring23 is only a Recommends but without it vhost ports never carry traffic.
  openvswitch-switch-dpdk librte-mempool-ring23
  # QEMU guests for the dataplane test and the demo.
  qemu-system-x86 busybox-static cpio iproute2 kmod
  # libvirt without systemd, and its schema validator (xmllint comes from libxml2-utils).
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils
  # cgo for KubeVirt's virt-launcher (functests; libvirt is dlopen-ed, no libvirt-dev).
  gcc libc6-dev
  # hooks API code generation.
  protobuf-compiler
  # independent OCI implementations that read and run the image archives of make images
  # (containerd brings runc and ctr, what kind load image-archive uses).
  skopeo containerd
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's default ovs-vswitchd is the non-DPDK build.
dpdk=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
if [ -x "$dpdk" ] && [ "$(readlink -f /usr/sbin/ovs-vswitchd)" != "$dpdk" ]; then
  update-alternatives --set ovs-vswitchd "$dpdk" >/dev/null
fi
