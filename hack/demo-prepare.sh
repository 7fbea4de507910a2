#!/usr/bin/env bash
# make demo's preparation, overlapped: on a fresh machine the Debian packages
# (hack/install-deps.sh) install in the background while Go builds what the
# demo runs. Only KubeVirt's virt-launcher needs a package first (gcc, for
# cgo): install-deps.sh installs that first and says so through a file.
# A failure of either side fails the script, after both have finished.
#
# Environment (from the Makefile): BIN (output directory), LDFLAGS, GO.
# Writes $BIN/vhostuser, $BIN/vhostuser-sidecar (the two binaries the demo
# runs) and $BIN/functests/demo; compiles KubeVirt's commands into the build
# cache, so that the demo's own build of them (functests/kubevirtbin, same
# flags) only links.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BIN:?}" "${LDFLAGS:?}"
go=${GO:-go}

ready=$(mktemp -d)/cgo-ready
bash hack/install-deps.sh "$ready" &
deps=$!

# Every command checks its status: set -e does not apply inside a function
# called as "build || ...".
build() {
  # Pure Go (the Makefile exports CGO_ENABLED=0), while apt runs.
  "$go" build -trimpath -ldflags "$LDFLAGS" -o "$BIN/" ./cmd/vhostuser ./cmd/vhostuser-sidecar || return
  (cd functests && "$go" build -o "$BIN/functests/demo" ./cmd/demo) || return

  while [ ! -e "$ready" ] && kill -0 "$deps" 2>/dev/null; do sleep 1; done
  if [ ! -e "$ready" ]; then
    echo "demo-prepare: gcc was not installed; not building KubeVirt's commands" >&2
    return 1
  fi
  # What functests/kubevirtbin builds, in its modules, with its flags, into
  # the build cache only (-o /dev/null: a one-package go build would
  # otherwise write its binary into the source tree).
  (
    export CGO_ENABLED=1 &&
      cd hack/cluster/kubevirt &&
      "$go" build -trimpath -tags libvirt_dlopen -gcflags=all=-dwarf=false -o /dev/null kubevirt.io/kubevirt/cmd/virt-launcher kubevirt.io/kubevirt/cmd/virt-launcher-monitor &&
      "$go" build -trimpath -gcflags=all=-dwarf=false -o /dev/null kubevirt.io/kubevirt/cmd/sidecars &&
      cd ../../../functests && "$go" build -trimpath -o /dev/null ./cmd/test-only-msix-vectors0
  )
}

rc=0
build || rc=$?
if ! wait "$deps"; then
  echo "demo-prepare: installing the Debian packages failed" >&2
  rc=1
fi
rm -rf "$(dirname "$ready")"
exit "$rc"
