#!/usr/bin/env bash
# Builds containerd 2.x (containerd, containerd-shim-runc-v2, ctr) from the Go module
# proxy and caches the binaries by version outside the repository, as hack/build-k8s.sh
# does for Kubernetes. Prints the cache directory on stdout.
#
#   hack/build-containerd.sh [BINARY...]   default: containerd containerd-shim-runc-v2 ctr
#
# The binaries are static (CGO_ENABLED=0). Without cgo the btrfs snapshotter is left out
# by containerd's own build constraints; the tags below also leave out the devmapper and
# ZFS snapshotters (the cluster uses overlayfs) and the CLI's documentation generator,
# and build the shim without gRPC, as containerd's Makefile does.
# Environment: CONTAINERD_VERSION (v2.4.2), KE_CACHE (~/.cache/kubernetes-entrypoint)
set -euo pipefail

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
KE_CACHE=${KE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubernetes-entrypoint}
BIN_DIR="$KE_CACHE/containerd-$CONTAINERD_VERSION"
PKG=github.com/containerd/containerd/v2
TAGS="no_btrfs no_devmapper no_zfs urfave_cli_no_docs"
SHIM_TAGS="$TAGS no_grpc"
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(containerd containerd-shim-runc-v2 ctr)

log() { echo "build-containerd: $*" >&2; }

# The module to build in: it requires containerd at the pinned version and nothing else,
# so containerd's own go.mod decides every dependency.
prepare_module() {
  local mod="$KE_CACHE/build/containerd-$CONTAINERD_VERSION"
  if [ ! -f "$mod/.ready" ]; then
    log "preparing module for $PKG $CONTAINERD_VERSION"
    rm -rf "$mod" && mkdir -p "$mod"
    (
      cd "$mod"
      printf 'module local/build-containerd\n\ngo %s\n' "$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')" > go.mod
      # Getting the three commands records every module their imports need in go.sum.
      GOFLAGS=-mod=mod go get "$PKG/cmd/containerd@$CONTAINERD_VERSION" "$PKG/cmd/ctr@$CONTAINERD_VERSION" \
        "$PKG/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" >&2
    )
    touch "$mod/.ready"
  fi
  echo "$mod"
}

build() {
  local name=$1 mod tags
  mod=$(prepare_module)
  tags=$TAGS
  [ "$name" = containerd-shim-runc-v2 ] && tags=$SHIM_TAGS
  log "building $name $CONTAINERD_VERSION (tags: $tags)"
  (
    cd "$mod"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags "$tags" -ldflags "-s -w \
      -X $PKG/version.Version=$CONTAINERD_VERSION \
      -X $PKG/version.Revision=module-proxy \
      -X $PKG/version.Package=$PKG" \
      -o "$BIN_DIR/$name.tmp" "$PKG/cmd/$name"
  )
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
}

mkdir -p "$BIN_DIR"
for b in "${bins[@]}"; do
  if [ -x "$BIN_DIR/$b" ]; then
    log "$b cached in $BIN_DIR"
    continue
  fi
  case $b in
    containerd|containerd-shim-runc-v2|ctr) ;;
    *) log "unknown binary '$b' (want containerd, containerd-shim-runc-v2 or ctr)"; exit 2 ;;
  esac
  start=$(date +%s)
  build "$b"
  log "$b built in $(( $(date +%s) - start ))s"
done
echo "$BIN_DIR"
