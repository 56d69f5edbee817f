#!/usr/bin/env bash
# Builds cnitool (the CNI project's reference runtime) from the Go module proxy into a cache
# outside the repository, keyed by version; does nothing when that version is already there.
# Prints the binary's path.
set -euo pipefail
version=${CNITOOL_VERSION:-v1.3.0}
cache=${FERRY_CACHE:-/var/cache/ferry}/bin/cnitool-$version
bin=$cache/cnitool
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  echo "[build-cnitool] building cnitool $version into $cache" >&2
  GOBIN=$cache GOFLAGS=-mod=mod go install "github.com/containernetworking/cni/cnitool@$version" >&2
fi
echo "$bin"
