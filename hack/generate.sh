#!/usr/bin/env bash
# Regenerates the Go code of the KubeVirt hooks API from internal/hooks/**/*.proto.
# Installs the pinned protoc plugins into GOBIN (or GOPATH/bin) when missing.
#
# With -check (make check) it writes nothing in the tree: it generates into a
# temporary directory and fails when internal/hooks differs from that.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

check=
case "${1:-}" in
  -check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [-check]" >&2; exit 2 ;;
esac

command -v protoc >/dev/null || { echo "generate: protoc missing: run 'make deps' (Debian protobuf-compiler)" >&2; exit 1; }

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

# Reinstall when missing or when the installed plugin is another version than the pinned one.
if ! protoc-gen-go --version 2>/dev/null | grep -qx "protoc-gen-go ${PROTOC_GEN_GO_VERSION}"; then
  go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
fi
if ! protoc-gen-go-grpc --version 2>/dev/null | grep -qx "protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC_VERSION#v}"; then
  go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
fi

out=internal/hooks
if [ -n "$check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

for proto in internal/hooks/*/*.proto; do
  protoc -I internal/hooks \
    --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
    "${proto#internal/hooks/}"
  [ -n "$check" ] || echo "generate: $proto"
done

if [ -n "$check" ]; then
  # Every generated file as generated now, and no generated file without its .proto.
  want=$(cd "$out" && find . -name '*.pb.go' | sort)
  have=$(cd internal/hooks && find . -name '*.pb.go' | sort)
  if [ "$want" != "$have" ]; then
    echo "generate: internal/hooks holds other generated files than its .proto files give:" >&2
    diff <(echo "$have") <(echo "$want") >&2 || true
    exit 1
  fi
  for f in $want; do
    if ! diff -u "internal/hooks/$f" "$out/$f" >&2; then
      echo "generate: internal/hooks/${f#./} is not current: run make generate" >&2
      exit 1
    fi
  done
  echo "generate: internal/hooks is current"
fi
