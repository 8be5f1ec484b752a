#!/usr/bin/env bash
# Builds Kubernetes and etcd binaries from the Go module proxy and caches them by
# version outside the repository. Prints the cache directory on stdout.
#
#   hack/build-k8s.sh [BINARY...]   default: etcd kube-apiserver
#
# Binaries: etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
# Environment: K8S_VERSION (v1.37.2), ETCD_VERSION (v3.7.3),
#              KE_CACHE (~/.cache/kubernetes-entrypoint)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
KE_CACHE=${KE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubernetes-entrypoint}
BIN_DIR="$KE_CACHE/k8s-$K8S_VERSION"
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(etcd kube-apiserver)

log() { echo "build-k8s: $*" >&2; }

# k8s.io/kubernetes v1.X.Y publishes its staging modules as k8s.io/<name> v0.X.Y.
staging_version="v0.${K8S_VERSION#v1.}"

build_k8s() {
  local name=$1 mod="$KE_CACHE/build/kubernetes-$K8S_VERSION"
  if [ ! -f "$mod/.ready" ]; then
    log "preparing module for k8s.io/kubernetes $K8S_VERSION (staging $staging_version)"
    rm -rf "$mod" && mkdir -p "$mod"
    local gomod
    gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "module local/build-kubernetes"
      echo
      echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      # The staging replaces of k8s.io/kubernetes point into its source tree, which the
      # module zip does not hold: point them at the published staging modules instead.
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
      echo ")"
    } > "$mod/go.mod"
    touch "$mod/.ready"
  fi
  log "building $name $K8S_VERSION (cold: several minutes)"
  (
    cd "$mod"
    GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/$name@$K8S_VERSION" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) \
      -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
      -o "$BIN_DIR/$name.tmp" "k8s.io/kubernetes/cmd/$name"
  )
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
}

build_etcd() {
  local mod="$KE_CACHE/build/etcd-$ETCD_VERSION"
  log "building etcd $ETCD_VERSION"
  mkdir -p "$mod"
  (
    cd "$mod"
    [ -f go.mod ] || printf 'module local/build-etcd\n\ngo %s\n' "$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')" > go.mod
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

mkdir -p "$BIN_DIR"
for b in "${bins[@]}"; do
  if [ -x "$BIN_DIR/$b" ]; then
    log "$b cached in $BIN_DIR"
    continue
  fi
  start=$(date +%s)
  case $b in
    etcd) build_etcd ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kubectl) build_k8s "$b" ;;
    *) log "unknown binary '$b' (want etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet or kubectl)"; exit 2 ;;
  esac
  log "$b built in $(( $(date +%s) - start ))s"
done
echo "$BIN_DIR"
