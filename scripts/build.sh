#!/usr/bin/env bash
# tsc to dist/, plus the files tsc does not copy (the CRI .proto the client loads at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
tsc -p tsconfig.src-shared.json
tsc -p tsconfig.build.json
mkdir -p dist/kubelet/cri
cp kubelet/cri/api.proto dist/kubelet/cri/api.proto
