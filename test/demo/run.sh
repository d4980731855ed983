#!/usr/bin/env bash
# `npm run demo [-- --once]`: set-up when needed, then the demo cluster on this machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/setup.sh
exec node_modules/.bin/node test/demo/main.ts "$@"
