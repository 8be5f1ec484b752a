#!/usr/bin/env bash
# Builds kwok (sigs.k8s.io/kwok, the controller that fakes nodes and the pods
# bound to them) from the Go module proxy and caches it by version outside the
# repository, as hack/build-k8s.sh does for Kubernetes. Prints the cache
# directory on stdout.
#
#   hack/build-kwok.sh
#
# Environment: KWOK_VERSION (v0.8.0), KE_CACHE (~/.cache/kubernetes-entrypoint)
set -euo pipefail

KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
KE_CACHE=${KE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubernetes-entrypoint}
BIN_DIR="$KE_CACHE/kwok-$KWOK_VERSION"

log() { echo "build-kwok: $*" >&2; }

mkdir -p "$BIN_DIR"
if [ -x "$BIN_DIR/kwok" ]; then
  log "kwok cached in $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi
start=$(date +%s)
mod="$KE_CACHE/build/kwok-$KWOK_VERSION"
log "building kwok $KWOK_VERSION (cold: a few minutes)"
mkdir -p "$mod"
(
  cd "$mod"
  [ -f go.mod ] || printf 'module local/build-kwok\n\ngo %s\n' "$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')" > go.mod
  GOFLAGS=-mod=mod go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
    -o "$BIN_DIR/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok
)
mv "$BIN_DIR/kwok.tmp" "$BIN_DIR/kwok"
log "kwok built in $(( $(date +%s) - start ))s"
echo "$BIN_DIR"
