#!/usr/bin/env bash
# Regenerates the Go code of the KubeVirt hooks API from internal/hooks/**/*.proto.
# Installs the pinned protoc plugins into GOBIN (or GOPATH/bin) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

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

for proto in internal/hooks/*/*.proto; do
  protoc -I internal/hooks \
    --go_out=internal/hooks --go_opt=paths=source_relative \
    --go-grpc_out=internal/hooks --go-grpc_opt=paths=source_relative \
    "${proto#internal/hooks/}"
  echo "generate: $proto"
done
