#!/usr/bin/env bash
# Builds hack/cyclonus/cases (Ferry's exporter of cyclonus's NetworkPolicy test cases and expected
# truth tables, issue #14) from the Go module proxy into a cache OUTSIDE the repository, so only the
# first run pays the build (cyclonus pulls in client-go: minutes on two busy cores). Idempotent: a
# binary already in the cache is reused. Prints the binary's path on stdout, progress on stderr.
#
# The cache key is the cyclonus version that go.mod requires plus a hash of the program's sources
# (go.mod, go.sum, *.go), so an edit to the exporter never runs a stale binary.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/cases" && pwd)"
CACHE_ROOT="${FERRY_CYCLONUS_CACHE:-/var/cache/ferry/cyclonus}"
# Other work shares the machine's two cores: build politely. -mod=readonly: the committed go.sum
# must already cover every module, and the build never rewrites files in the repository.
export GOMAXPROCS="${GOMAXPROCS:-2}"
export GOFLAGS="${GOFLAGS:-} -p=2 -mod=readonly -buildvcs=false"
export CGO_ENABLED=0

log() { printf '[cyclonus-build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH; the exporter is a Go program (see hack/cyclonus/cases)"
version="$(cd "$SRC" && go list -m -f '{{.Version}}' github.com/mattfenwick/cyclonus 2>/dev/null || true)"
[[ -n "$version" ]] || die "$SRC/go.mod has no 'require github.com/mattfenwick/cyclonus <version>' line"
hash="$(cd "$SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
out_dir="$CACHE_ROOT/$version-$hash/bin"
bin="$out_dir/cyclonus-cases"

if [[ -x "$bin" ]]; then
  log "cyclonus $version exporter cached in $out_dir"
  echo "$bin"
  exit 0
fi

mkdir -p "$out_dir" || die "cannot create $out_dir (set FERRY_CYCLONUS_CACHE to a writable directory)"
# Test files that each need the binary may start together: one builds, the others wait for it.
exec 9>"$out_dir/.lock"
flock 9
if [[ ! -x "$bin" ]]; then
  log "building cyclonus $version exporter -> $bin"
  start=$(date +%s)
  tmp="$out_dir/.cyclonus-cases.$$.tmp"
  if ! (cd "$SRC" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp" .); then
    rm -f "$tmp"
    die "go build failed in $SRC (the module proxy must serve github.com/mattfenwick/cyclonus@$version and its dependencies)"
  fi
  mv "$tmp" "$bin"
  log "built cyclonus-cases in $(( $(date +%s) - start ))s"
fi
echo "$bin"
