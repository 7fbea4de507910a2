# Makefile targets are the project's interface. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
FUZZTIME ?= 300000x
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/kubevirt-vhostuser/vhostuser/internal/version.Version=$(VERSION)
export CGO_ENABLED ?= 0
# The tools module (hack/tools) pins the linter; make builds it here.
TOOLS := $(BIN)/tools
GOLANGCI_LINT := $(TOOLS)/golangci-lint

.PHONY: help build deps test check lint generated unit integration soak fuzz functest bench bench-cni bench-sidecar bench-agent demo images generate manifests clean cluster-up cluster-down functest-cluster cluster-test cluster-test-migration

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build the binaries into bin/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps: ## install the Debian packages tests and demo need (idempotent, as root)
	bash hack/install-deps.sh

test: deps check build integration fuzz functest cluster-test ## everything CI runs (root; the last step brings a local cluster up and down)

check: lint unit generated ## the fast checks, no root: lint, unit tests, generated code current (the first step of make test)

lint: $(GOLANGCI_LINT) ## gofmt, go vet (every module) and golangci-lint (.golangci.yml)
	@out=$$(find . -name '*.go' -not -path './bin/*' | xargs gofmt -l); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	cd manifests && $(GO) vet ./...
	cd functests && $(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	cd manifests && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...

$(GOLANGCI_LINT): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -o $(TOOLS)/ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

generated: ## the hooks API Go code is what make generate writes (generated into a temporary directory)
	bash hack/generate.sh -check

unit: ## unit tests (no root, no OVS), the main module and manifests/
	$(GO) test -count=1 ./...
	cd manifests && $(GO) test -count=1 ./...

integration: build ## integration tests against a real OVS-DPDK and libvirt schema (root)
	VHOSTUSER_BIN=$(BIN) $(GO) test -count=1 -tags integration -timeout 20m ./...

soak: build ## CNI chaos test with 2000 operations (VHU_CHAOS_OPS, VHU_CHAOS_SEED to replay); figures printed (root)
	VHOSTUSER_BIN=$(BIN) VHU_CHAOS_OPS=$${VHU_CHAOS_OPS:-2000} $(GO) test -count=1 -v -tags integration -timeout 60m \
	  -run '^TestChaos$$' ./cni/plugin

fuzz: ## every Go fuzz target for FUZZTIME executions each (a count: see hack/fuzz.sh)
	bash hack/fuzz.sh $(FUZZTIME)

functest: build ## KubeVirt compatibility and the local dataplane e2e (root); cluster tests skip without KUBECONFIG
	cd functests && VHOSTUSER_BIN=$(BIN) $(GO) test -count=1 -timeout 40m ./...

bench: build bench-cni bench-sidecar bench-agent ## benchmarks; figures printed

bench-cni: ## CNI ADD/DEL against ovsdb-client transact (the floor) and ovs-vsctl, sequential and parallel
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/vhostuser
	VHOSTUSER_BIN=$(BIN) $(GO) test -count=1 -run '^$$' -bench BenchmarkCNI -benchtime 1x -timeout 30m -tags integration ./cni/plugin

bench-sidecar: ## the sidecar's OnDefineDomain over its gRPC socket and its resident memory; figures printed
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/vhostuser-sidecar
	VHOSTUSER_BIN=$(BIN) $(GO) test -run '^$$' -bench . -benchtime 2000x -tags integration ./sidecar/...

bench-agent: ## the agent's resident memory and /metrics scrape time with 200 real OVS-DPDK ports (issue 17's targets); figures printed (root)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/vhostuser-agent
	VHOSTUSER_BIN=$(BIN) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkAgent200Ports$$' -benchtime 1x -timeout 15m -tags integration ./cmd/vhostuser-agent

demo: ## the local demo: KubeVirt's real virt-launcher runs two VMIs with our sidecar; they ping over OVS-DPDK through our CNI (root)
	GO=$(GO) BIN=$(BIN) LDFLAGS='$(LDFLAGS)' bash hack/demo-prepare.sh
	cd functests && VHOSTUSER_BIN=$(BIN) $(BIN)/functests/demo

images: build ## OCI image archives in bin/images (no Docker daemon)
	$(GO) run ./cmd/image-builder -bin $(BIN) -out $(BIN)/images -version $(VERSION) \
	  -revision "$$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
	  -source-date-epoch "$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

generate: ## regenerate the hooks API Go code from internal/hooks/*.proto
	bash hack/generate.sh

manifests: ## render every kustomize overlay into bin/manifests (the manifests module's test)
	cd manifests && VHOSTUSER_MANIFESTS_OUT=$(BIN)/manifests $(GO) test -count=1 -run TestOverlays -v ./...

# The two-node cluster of hack/cluster (issues 9, 16): make test runs it last,
# without the live-migration tests. With them, .ci/run from empty caches took
# 61 min on 2 cores, over issue 16's 60; make cluster-test-migration runs them.
CLUSTER_STATE := $(or $(VHOSTUSER_CLUSTER_STATE),/var/lib/vhostuser-cluster)
CLUSTER_TESTS ?= ^TestLocalCluster
CLUSTER_SKIP ?=
MIGRATION_TESTS := ^TestLocalClusterMigration

cluster-up: deps ## a two-node Kubernetes + Multus + KubeVirt (its operator) on this machine, built here (root; VHOSTUSER_CLUSTER_NODES=1: one node; functests/README.md)
	bash hack/cluster/up.sh

cluster-down: ## stop and remove all that cluster-up started and created (safe to repeat)
	bash hack/cluster/down.sh

cluster-test: ## cluster-up, functest-cluster without the migration tests, then cluster-down whatever happened (the last step of make test)
	@rc=0; $(MAKE) cluster-up && $(MAKE) functest-cluster CLUSTER_SKIP='$(MIGRATION_TESTS)' || rc=$$?; $(MAKE) cluster-down || rc=1; exit $$rc

cluster-test-migration: ## cluster-up, the live-migration tests (virtctl migrate, kubectl drain, a failed migration), then cluster-down (root; about 10 min warm)
	@rc=0; $(MAKE) cluster-up && $(MAKE) functest-cluster CLUSTER_TESTS='$(MIGRATION_TESTS)' || rc=$$?; $(MAKE) cluster-down || rc=1; exit $$rc

functest-cluster: ## functests/cluster against the cluster of make cluster-up: pods and KubeVirt VMs on vhostuser NADs, migrations (root; CLUSTER_TESTS, CLUSTER_SKIP: -run, -skip)
	cd functests && KUBECONFIG=$(CLUSTER_STATE)/kubeconfig/admin.conf PATH=$(CLUSTER_STATE)/bin:$$PATH \
	  VHOSTUSER_CLUSTER_STATE=$(CLUSTER_STATE) $(GO) test -count=1 -v -timeout 45m -run '$(CLUSTER_TESTS)' \
	  $(if $(CLUSTER_SKIP),-skip '$(CLUSTER_SKIP)') ./cluster

clean: ## remove bin/ (binaries, tools, rendered manifests)
	rm -rf $(BIN)
