#!/usr/bin/env bash
# Everything the suites and the demo need on a fresh Debian 12 machine, installed only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != "0" ]; then
  echo "deckhand: this needs root (it creates network namespaces, cgroups and runs containerd); run it as root." >&2
  exit 1
fi
if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "deckhand: this set-up expects Debian 12 (apt-get and /etc/debian_version); install containerd, runc," >&2
  echo "containernetworking-plugins, iptables, nftables, conntrack, busybox-static, docker-registry, skopeo," >&2
  echo "iproute2, apache2-utils, openssl, gcc, libc6-dev, prometheus and chromium by hand on other systems." >&2
  exit 1
fi

# Debian package -> a file it installs, to tell whether it is there without asking dpkg for each.
declare -A PROBE=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables-restore
  [nftables]=/usr/sbin/nft
  [conntrack]=/usr/sbin/conntrack
  [busybox-static]=/bin/busybox
  [docker-registry]=/usr/bin/docker-registry
  [skopeo]=/usr/bin/skopeo
  [iproute2]=/usr/sbin/ip
  [apache2-utils]=/usr/bin/htpasswd
  [openssl]=/usr/bin/openssl
  [util-linux]=/usr/bin/nsenter
  [systemd]=/usr/bin/systemd-analyze
  # The gRPC health server of the localhost/grpc-health:1 test image is C, built static (test/harness/images.ts).
  [gcc]=/usr/bin/gcc
  [libc6-dev]=/usr/include/stdio.h
  [prometheus]=/usr/bin/promtool
  # The node page's browser test drives Debian's headless Chromium (puppeteer-core brings no browser).
  [chromium]=/usr/bin/chromium
)
missing=()
for pkg in "${!PROBE[@]}"; do
  [ -e "${PROBE[$pkg]}" ] || missing+=("$pkg")
done
# busybox (the dynamic one) also provides /bin/busybox; the image builder needs the static build.
if [ -e /bin/busybox ] && ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' && ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
  missing+=(busybox-static)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deckhand: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
# Debian's containerd package may start a system containerd where systemd runs; the tests bring their own
# and never use it, so it is left alone.

# npm packages (with the pinned Node 24 binary) when node_modules is missing or older than the lock file.
if [ ! -x node_modules/.bin/node ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deckhand: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
"node_modules/.bin/node" -e 'if (!process.versions.node.startsWith("24.")) { console.error("deckhand: node_modules/.bin/node is " + process.version + ", expected 24"); process.exit(1) }'
