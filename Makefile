# kubernetes-entrypoint — see README.md.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

K8S_VERSION  ?= v1.37.2
ETCD_VERSION ?= v3.7.3
KE_CACHE     ?= $(HOME)/.cache/kubernetes-entrypoint
export K8S_VERSION ETCD_VERSION KE_CACHE

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     ?= bin
# The flags the Dockerfile uses: static, reproducible, stripped, version stamped.
GO_BUILD = CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

TEST_FLAGS ?= -race -count=1
FUZZ_TIME  ?= 20s

.PHONY: all build test unit envtest-assets bench fuzz vet fmt demo clean help

all: build

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## Build the static binaries into bin/ (the Dockerfile runs this target).
	$(GO_BUILD) -buildvcs=false -o $(BIN)/kubernetes-entrypoint ./cmd/entrypoint
	$(GO_BUILD) -buildvcs=false -o $(BIN)/entrypoint-webhook ./cmd/webhook

.PHONY: helm-lint
helm-lint: ## Lint the Helm chart and check its renders and the kustomize build against test/install/testdata.
	go test -count=1 -run '^(TestHelmLint|TestChart.*|TestGolden.*)$$' ./test/install/

envtest-assets: ## Build (once, then cached) etcd and kube-apiserver for the integration tests.
	@hack/build-k8s.sh etcd kube-apiserver >/dev/null

test: envtest-assets vet ## Run every test, integration tests on a real kube-apiserver included.
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) go test $(TEST_FLAGS) ./...

unit: ## Run the tests that need no control plane.
	go test $(TEST_FLAGS) ./pkg/resolve/spec/... ./pkg/resolve/local/... ./pkg/launch/... ./pkg/resolve/

vet: ## go vet and a gofmt check.
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

FUZZ_PACKAGES ?= ./pkg/resolve/spec/ ./pkg/inject/

fuzz: ## Run each fuzz test (env contract and annotation parsers) for FUZZ_TIME.
	@for p in $(FUZZ_PACKAGES); do for f in $$(go test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
		echo "fuzzing $$p $$f for $(FUZZ_TIME)"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) $$p; done; done

bench: envtest-assets build ## Measure the resolver and the webhook (see README).
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) ENTRYPOINT_BINARY=$(abspath $(BIN))/kubernetes-entrypoint \
		go test -run '^$$' -bench . -benchtime 1x -count 1 ./test/bench/ ./pkg/webhook/server/
	go test -run '^$$' -bench . -benchmem -count 1 ./pkg/inject/ ./pkg/webhook/

demo: envtest-assets build ## The webhook injects the resolver into a pod, which waits for a Service and a Job.
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) go run ./hack/demo $(abspath $(BIN))/kubernetes-entrypoint

clean: ## Remove build output (the control-plane cache in $(KE_CACHE) stays).
	rm -rf $(BIN)

.PHONY: cluster-up cluster-down
cluster-up: ## Start a real single-node cluster on loopback (state in $KE_CLUSTER_DIR, default /tmp/ke-cluster).
	go run ./hack/cluster up

cluster-down: ## Stop that cluster and remove every process, mount, link, cgroup and chain it made.
	go run ./hack/cluster down

.PHONY: e2e
e2e: ## End-to-end tests on a real local cluster (root; brings it up and down; not part of `make test` yet).
	go test -tags e2e -count=1 -v ./test/e2e/
