#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries Ferry's k8s test tier runs (etcd, kube-apiserver,
# kube-controller-manager, kube-proxy, kubectl) from the Go module proxy, into a cache OUTSIDE the
# repository keyed by version, so only the first run pays the build. Idempotent: a binary already in
# the cache is skipped. Prints what it builds and how long each took.
#
# k8s.io/kubernetes and go.etcd.io/etcd/server/v3 cannot be `go install`ed: their go.mod files use
# replace directives pointing at in-tree staging directories. So for each we generate a throwaway
# wrapper module (in a temp dir, never in the repo) that requires the release and pins every replaced
# module to its published version, then `go build` the commands from it.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
CACHE_ROOT="${FERRY_K8S_CACHE:-/var/cache/ferry/k8s}"
K8S_BIN="$CACHE_ROOT/$K8S_VERSION/bin"
ETCD_BIN="$CACHE_ROOT/etcd-$ETCD_VERSION/bin"
# Other work shares the machine's two cores: build politely.
export GOMAXPROCS="${GOMAXPROCS:-2}"
export GOFLAGS="${GOFLAGS:-} -p=2"
export CGO_ENABLED=0

K8S_CMDS=(kube-apiserver kube-controller-manager kube-proxy kubectl)

log() { printf '[k8s-build] %s\n' "$*" >&2; }

need() {
  local dir="$1"; shift
  local missing=()
  for c in "$@"; do [[ -x "$dir/$c" ]] || missing+=("$c"); done
  printf '%s\n' "${missing[@]}"
}

work="$(mktemp -d -t ferry-k8s-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Prints "module version" replace pins for every module the given go.mod replaces with a local path.
staging_pins() {
  local gomod="$1" version="$2"
  awk '/=>/ && $NF ~ /^\.\.?\// { print $1 }' "$gomod" | sort -u | while read -r m; do
    printf '%s %s\n' "$m" "$version"
  done
}

# make_wrapper DIR ROOT_MODULE ROOT_VERSION PIN_VERSION
make_wrapper() {
  local dir="$1" root="$2" rver="$3" pver="$4"
  mkdir -p "$dir"
  local gomod
  gomod="$(cd "$dir" && go mod download -json "$root@$rver" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module ferry.local/k8s-build"
    echo
    echo "go $(awk '$1 == "go" { print $2; exit }' "$gomod")"
    echo
    echo "require $root $rver"
    echo
    staging_pins "$gomod" "$pver" | while read -r m v; do echo "replace $m => $m $v"; done
  } > "$dir/go.mod"
}

build_cmds() {
  local dir="$1" out="$2" pkgprefix="$3" ldflags="$4"; shift 4
  mkdir -p "$out"
  for c in "$@"; do
    local pkg="$pkgprefix/$c" start end
    [[ -z "$pkgprefix" ]] && pkg="$c"
    log "building $pkg -> $out/$(basename "$c")"
    start=$(date +%s)
    (cd "$dir" && nice -n 10 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$out/.$(basename "$c").tmp" "$pkg")
    mv "$out/.$(basename "$c").tmp" "$out/$(basename "$c")"
    end=$(date +%s)
    log "built $(basename "$c") in $((end - start))s"
  done
}

mapfile -t etcd_missing < <(need "$ETCD_BIN" etcd | sed '/^$/d')
if ((${#etcd_missing[@]})); then
  log "etcd $ETCD_VERSION -> $ETCD_BIN"
  make_wrapper "$work/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
  (cd "$work/etcd" && printf 'package main\n\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\n\nfunc main() {}\n' > tools.go && go mod tidy >&2 && rm tools.go)
  mkdir -p "$ETCD_BIN"
  start=$(date +%s)
  (cd "$work/etcd" && nice -n 10 go build -trimpath -o "$ETCD_BIN/.etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$ETCD_BIN/.etcd.tmp" "$ETCD_BIN/etcd"
  log "built etcd in $(( $(date +%s) - start ))s"
else
  log "etcd $ETCD_VERSION cached in $ETCD_BIN"
fi

mapfile -t k8s_missing < <(need "$K8S_BIN" "${K8S_CMDS[@]}" | sed '/^$/d')
if ((${#k8s_missing[@]})); then
  log "kubernetes $K8S_VERSION (${k8s_missing[*]}) -> $K8S_BIN"
  pin="v0.${K8S_VERSION#v1.}"
  make_wrapper "$work/k8s" k8s.io/kubernetes "$K8S_VERSION" "$pin"
  {
    echo "package main"
    echo
    # Main packages cannot be imported: import each command's library so tidy records its deps.
    for c in "${k8s_missing[@]}"; do
      if [[ "$c" == kubectl ]]; then echo 'import _ "k8s.io/kubectl/pkg/cmd"'
      else echo "import _ \"k8s.io/kubernetes/cmd/$c/app\""; fi
    done
    echo
    echo "func main() {}"
  } > "$work/k8s/tools.go"
  (cd "$work/k8s" && go mod tidy >&2 && rm tools.go)
  # Version stamping, as the upstream build does, so `kubectl version` and /version report the release.
  vpkg="k8s.io/component-base/version"
  ldf="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitTreeState=clean"
  ldf="$ldf -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
  ldf="$ldf -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  build_cmds "$work/k8s" "$K8S_BIN" k8s.io/kubernetes/cmd "$ldf" "${k8s_missing[@]}"
else
  log "kubernetes $K8S_VERSION cached in $K8S_BIN"
fi

ln -sfn "$ETCD_BIN/etcd" "$K8S_BIN/etcd"
log "done: $K8S_BIN"
