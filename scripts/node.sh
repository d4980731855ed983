#!/usr/bin/env bash
# Runs a TypeScript entry point from source with the pinned Node 24 (type stripping), whatever `node` is on PATH.
here="$(cd "$(dirname "$0")/.." && pwd)"
exec "$here/node_modules/.bin/node" "$@"
