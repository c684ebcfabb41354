#!/usr/bin/env bash
# Runs one Node test file of tests/browser; ctest registers each. Exit 77
# (ctest: skipped) only when node is not installed; CI installs it and the
# npm packages with .ci/web-deps.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null; then
  echo "SKIPPED: node is not installed, so the Node and browser tests cannot run (bash .ci/web-deps installs it)"
  exit 77
fi
if [ ! -d "$dir/node_modules/@microsoft/signalr" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
  echo "tests/browser/node_modules is missing: run bash .ci/web-deps (npm ci in tests/browser)" >&2
  exit 1
fi
exec node --test --test-reporter=spec "$dir/$1"
