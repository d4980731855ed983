#!/usr/bin/env bash
# `npm run bench -- <name> [args]`: runs bench/<name>.ts with the pinned Node 24. Benchmarks print their own
# figures beside the reference they compare with; nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
if [ -z "$name" ] || [ ! -f "bench/$name.ts" ]; then
  echo "usage: npm run bench -- <name>   where <name> is one of:" >&2
  for f in bench/*.ts; do b=$(basename "$f" .ts); case "$b" in compare|proc) ;; *) echo "  $b" >&2 ;; esac; done
  exit 2
fi
shift
bash test/setup.sh
exec node_modules/.bin/node "bench/$name.ts" "$@"
