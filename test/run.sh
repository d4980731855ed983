#!/usr/bin/env bash
# The one test command (`npm test`): set-up, type check, lint, build, unit tests, then end-to-end tests on real
# parts. Extra arguments go to vitest (e.g. a file filter). Ends with a plain "N passed, N failed" line.
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

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0
echo "== unit tests"
vitest run --project unit --reporter=default --reporter=json --outputFile.json="$reports/unit.json" "$@" || status=$?
if [ "$status" = 0 ]; then
  echo "== end-to-end tests"
  vitest run --project e2e --reporter=default --reporter=json --outputFile.json="$reports/e2e.json" "$@" || status=$?
fi
node -e '
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    try {
      const r = JSON.parse(require("fs").readFileSync(f, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    } catch {}
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports"/*.json
exit "$status"
