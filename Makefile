# kubernetes-entrypoint — see README.md.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

K8S_VERSION  ?= v1.37.2
ETCD_VERSION ?= v3.7.3
KWOK_VERSION ?= v0.8.0
KE_CACHE     ?= $(HOME)/.cache/kubernetes-entrypoint
export K8S_VERSION ETCD_VERSION KWOK_VERSION KE_CACHE

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     ?= bin
# The flags the Dockerfile uses: static, reproducible, stripped, version stamped.
GO_BUILD = CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

TEST_FLAGS ?= -race -count=1
FUZZ_TIME  ?= 20s

.PHONY: all build test unit envtest-assets bench fuzz vet fmt demo demo-envtest clean help

all: build

help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## Build the static binaries into bin/, the kubectl plugin too (the Dockerfile runs this target).
	$(GO_BUILD) -buildvcs=false -o $(BIN)/kubernetes-entrypoint ./cmd/entrypoint
	$(GO_BUILD) -buildvcs=false -o $(BIN)/entrypoint-webhook ./cmd/webhook
	$(GO_BUILD) -buildvcs=false -o $(BIN)/kubectl-entrypoint ./cmd/kubectl-entrypoint

.PHONY: helm-lint
helm-lint: ## Lint the Helm chart and check its renders and the kustomize build against test/install/testdata.
	go test -count=1 -run '^(TestHelmLint|TestChart.*|TestGolden.*)$$' ./test/install/

envtest-assets: ## Build (once, then cached) etcd and kube-apiserver for the integration tests.
	@hack/build-k8s.sh etcd kube-apiserver >/dev/null

test: envtest-assets vet lint tidy-check ## Run every test: unit, integration on a real kube-apiserver, end-to-end on a real local cluster.
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) go test $(TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory faults

# Every package, with KUBEBUILDER_ASSETS removed: what needs etcd and kube-apiserver
# skips itself (internal/testenv), everything else runs. No list of packages to keep
# up to date, so a new package cannot be left out; the end-to-end suite stays behind
# its build tags.
unit: ## Run every test that needs no control plane (those that need one skip themselves).
	env -u KUBEBUILDER_ASSETS go test $(TEST_FLAGS) ./...
	@echo "unit: tests that need etcd and kube-apiserver were skipped; make test runs them"

vet: ## go vet and a gofmt check.
	go vet ./...
	go vet -tags e2e ./test/e2e/
	go vet -tags e2e,faults ./test/e2e/
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# golangci-lint, compiled from source through the Go module proxy once per
# version and cached beside the control plane (about 2 minutes cold on 2 cores).
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT = $(KE_CACHE)/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

$(GOLANGCI_LINT):
	GOBIN=$(dir $@) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: lint tidy-check vuln
lint: $(GOLANGCI_LINT) ## golangci-lint (.golangci.yml: the linters and the import rules), the fault scenarios too.
	$(GOLANGCI_LINT) run ./...
	$(GOLANGCI_LINT) run --build-tags e2e,faults ./test/e2e/...

tidy-check: ## Fail when go.mod or go.sum is not what go mod tidy makes.
	go mod tidy -diff

# govulncheck's database comes through the Go module proxy, as everything else
# here: the golang.org/x/vulndb module at VULNDB_VERSION holds every report as
# OSV JSON, and its indexdb command makes them a v1 database in the cache (no
# vuln.go.dev). Bump VULNDB_VERSION (go list -m golang.org/x/vulndb@latest) for
# newer reports. Not part of make test: it reports vulnerabilities that a
# toolchain or dependency upgrade fixes, which is not this tree's to decide.
GOVULNCHECK_VERSION ?= v1.10.0
VULNDB_VERSION      ?= v0.0.0-20261105234957-e22db6528018
VULNDB              = $(KE_CACHE)/vulndb-$(VULNDB_VERSION)

$(VULNDB):
	osv=$$(go mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/data/osv; \
		rm -rf $@.tmp && go run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns $$osv -out $@.tmp && mv $@.tmp $@

vuln: $(VULNDB) ## govulncheck on every package, its database from the Go module proxy (golang.org/x/vulndb).
	go run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db file://$(VULNDB) ./...

FUZZ_PACKAGES ?= ./pkg/resolve/spec/ ./pkg/inject/

fuzz: ## Run each fuzz test (env contract and annotation parsers) for FUZZ_TIME.
	@for p in $(FUZZ_PACKAGES); do for f in $$(go test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
		echo "fuzzing $$p $$f for $(FUZZ_TIME)"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) $$p; done; done

bench: envtest-assets build ## Measure the resolver and the webhook (see docs/performance.md).
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) ENTRYPOINT_BINARY=$(abspath $(BIN))/kubernetes-entrypoint \
		go test -run '^$$' -bench . -benchtime 1x -count 1 ./test/bench/ ./pkg/webhook/server/
	go test -run '^$$' -bench . -benchmem -count 1 ./pkg/inject/ ./pkg/webhook/

.PHONY: bench-hostile
bench-hostile: envtest-assets build ## Hostile admission requests to the webhook in a fresh process, directly and through a real API server, and hostile pods to the controller in a fresh entrypoint-webhook: time, answer size, peak RSS.
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) ENTRYPOINT_WEBHOOK_BINARY=$(abspath $(BIN))/entrypoint-webhook \
		go test -run '^$$' -bench Hostile -benchtime 1x -count 1 -timeout 30m ./test/hostile/

.PHONY: bench-gate
bench-gate: envtest-assets build ## Gate mode at scale on a real kube-apiserver: release latency, 1,000 and 10,000 gated pods beside the raw rate of the same patches, the controller's memory and CPU, watches vs GATE_RESOLVERS (300) resolver processes, the leader hand-over under load (10,000 pods; TestLeaderHandover, 1,000).
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) ENTRYPOINT_BINARY=$(abspath $(BIN))/kubernetes-entrypoint \
		ENTRYPOINT_WEBHOOK_BINARY=$(abspath $(BIN))/entrypoint-webhook \
		go test -run '^TestLeaderHandover$$' -bench Gate -benchtime 1x -count 1 -timeout 60m ./test/benchgate/

.PHONY: bench-kwok
bench-kwok: envtest-assets build ## Gate mode with the real kube-scheduler and kwok's fake nodes (BENCH_KWOK_NODES 500): ready → gate removed and → bound for BENCH_KWOK_PODS (10,000) pods on 100 Services and pinned to a DaemonSet's nodes, vs the scheduler alone; API server CPU, memory, watches.
	@hack/build-k8s.sh kube-scheduler >/dev/null
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) KWOK_BINARY=$$(hack/build-kwok.sh)/kwok \
		ENTRYPOINT_WEBHOOK_BINARY=$(abspath $(BIN))/entrypoint-webhook \
		go test -run '^$$' -bench Kwok -benchtime 1x -count 1 -timeout 120m ./test/benchkwok/

demo: ## The whole path on a real single-node cluster on this machine (Linux, root): the chart, examples/, narrated; then tear down.
	go run ./hack/demo $(DEMO_FLAGS)

demo-envtest: envtest-assets build ## The webhook and the resolver on an API server without a node, as any user (plays the kubelet's part).
	KUBEBUILDER_ASSETS=$(KE_CACHE)/k8s-$(K8S_VERSION) go run ./hack/demo-envtest $(abspath $(BIN))/kubernetes-entrypoint

clean: ## Remove build output (the control-plane cache in $(KE_CACHE) stays).
	rm -rf $(BIN) $(RELEASE_DIR)

# make release VERSION=x.y.z writes RELEASE_DIR (docs/release.md): the kubectl
# plugin's archives, their krew manifest, the packaged chart, the images as OCI
# layouts with their SBOMs, checksums.txt; the same tree writes the same bytes
# (mtimes from SOURCE_DATE_EPOCH, else the commit's time). Then krew
# (KREW_VERSION, built once from the Go module proxy) validates the manifest and
# installs every archive with it.
RELEASE_DIR  ?= dist
RELEASE_URL  ?= https://github.com/kubernetes-entrypoint/kubernetes-entrypoint/releases/download/v{version}/{archive}
KREW_VERSION ?= v0.4.3
KREW = $(KE_CACHE)/bin/krew-$(KREW_VERSION)/krew

$(KREW):
	GOBIN=$(dir $@) GOFLAGS= go install sigs.k8s.io/krew/cmd/krew@$(KREW_VERSION) sigs.k8s.io/krew/cmd/validate-krew-manifest@$(KREW_VERSION)

.PHONY: release release-check
release: $(KREW) ## Write a release to dist/ (VERSION=x.y.z; RELEASE_URL: where the krew manifest points), reproducibly, and check it (docs/release.md).
	go run ./hack/release --version '$(VERSION)' --dir '$(RELEASE_DIR)' --url-template '$(RELEASE_URL)' --krew '$(KREW)'

release-check: ## The release's tests, part of make test: a release of the host platform (and one without images), checked and installed by krew; the images and SBOMs built twice.
	go test -count=1 ./hack/release/ ./internal/release/

.PHONY: cluster-up cluster-down
cluster-up: ## Start a real single-node cluster on loopback (state in $KE_CLUSTER_DIR, default /tmp/ke-cluster).
	go run ./hack/cluster up

cluster-down: ## Stop that cluster and remove every process, mount, link, cgroup and chain it made.
	go run ./hack/cluster down

E2E_FLAGS ?= -count=1 -timeout 20m
# The injection modes the end-to-end suite runs in, one whole run each.
E2E_MODES ?= init-container image-volume

SCALE_PODS ?= 300

.PHONY: e2e faults bench-scale
e2e: ## End-to-end tests on a real local cluster, once per injection mode (E2E_MODES; root; installs and builds what the cluster needs, brings it up and down).
	@if [ "$$(id -u)" != 0 ]; then \
		echo "e2e: SKIPPED: the local cluster needs root (containerd, runc, mounts, cgroups); run make e2e as root"; exit 0; fi
	go run ./hack/cluster prepare
	@for mode in $(E2E_MODES); do echo "e2e: the suite with the webhook in $$mode mode"; \
		E2E_INJECTION_MODE=$$mode go test -tags e2e $(E2E_FLAGS) ./test/e2e/ || exit 1; done

FAULTS_FLAGS ?= -count=1 -timeout 20m -v
FAULTS_SUMMARY ?= $(abspath $(BIN))/faults.summary
faults: ## Fault scenarios on a real local cluster (API server, kubelet and webhook restarts, CA rotation; root); ends with one summary line.
	@if [ "$$(id -u)" != 0 ]; then \
		echo "faults: SKIPPED: the local cluster needs root (containerd, runc, mounts, cgroups); run make faults as root"; exit 0; fi
	go run ./hack/cluster prepare
	@rm -f $(FAULTS_SUMMARY); status=0; \
	FAULTS_SUMMARY=$(FAULTS_SUMMARY) go test -tags e2e,faults -run '^TestFault' $(FAULTS_FLAGS) ./test/e2e/ || status=$$?; \
	if [ -s $(FAULTS_SUMMARY) ]; then cat $(FAULTS_SUMMARY); else echo "faults: 0 scenarios, 0 passed, early starts 0, lost pods 0 (the suite did not start: see above)"; status=1; fi; \
	exit $$status

bench-scale: ## SCALE_PODS (300) waiting resolvers as pods on the local cluster, released by one Service: init container vs image volume, watch vs poll (SCALE_MODES; root).
	go run ./hack/cluster prepare
	SCALE_PODS=$(SCALE_PODS) go test -tags e2e -run '^$$' -bench ReleaseWaitingResolvers -benchtime 1x -timeout 90m -v ./test/e2e/
