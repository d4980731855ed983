#!/usr/bin/env bash
# Installs deckhand's node services on a worker: builds the checkout this script is in (npm ci, npm run build),
# installs the unit files pointing at it, and the CNI plugin launcher into containerd's CNI bin dir.
# It does not write /etc/kubernetes/*.yaml or kubeconfigs (they come from your cluster's bootstrap), and it
# enables but does not start the services unless given --now.
#   sudo systemd/install.sh [--now] [--no-build] [--unit-dir /etc/systemd/system] [--cni-bin-dir /opt/cni/bin]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
unit_dir=/etc/systemd/system
cni_bin_dir=/opt/cni/bin
now=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --now) now="--now" ;;
    --no-build) build="" ;;
    --unit-dir) unit_dir="$2"; shift ;;
    --cni-bin-dir) cni_bin_dir="$2"; shift ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
cd "$repo"
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund
[ -z "$build" ] || npm run --silent build
mkdir -p "$unit_dir" "$cni_bin_dir"
for unit in kubelet.service kube-proxy.service; do
  sed "s#@DECKHAND@#$repo#g" "systemd/$unit" > "$unit_dir/$unit"
  echo "installed $unit_dir/$unit"
done
ln -sf "$repo/bin/deckhand-bridge" "$cni_bin_dir/deckhand-bridge"
echo "installed $cni_bin_dir/deckhand-bridge -> $repo/bin/deckhand-bridge"
# hostPorts: the conflist the kubelet writes chains the reference portmap plugin (containernetworking-plugins).
if [ ! -e "$cni_bin_dir/portmap" ]; then
  if [ -x /usr/lib/cni/portmap ]; then
    ln -sf /usr/lib/cni/portmap "$cni_bin_dir/portmap"
    echo "installed $cni_bin_dir/portmap -> /usr/lib/cni/portmap"
  else
    echo "warning: no portmap CNI plugin in $cni_bin_dir (apt-get install containernetworking-plugins): pods cannot start" >&2
  fi
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable $now kubelet.service kube-proxy.service
else
  echo "install.sh: systemd is not running here; the units are installed but not enabled" >&2
fi
