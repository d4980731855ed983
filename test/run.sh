#!/usr/bin/env bash
# The one test command (`npm test`): set-up, type check, lint, unit tests, then end-to-end tests on real parts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

echo "== type check"
tsc -p tsconfig.src-shared.json
tsc -p tsconfig.json
echo "== lint"
eslint .
echo "== build"
npm run --silent build
echo "== unit tests"
vitest run --project unit "$@"
echo "== end-to-end tests"
vitest run --project e2e "$@"
