#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time on its seed corpus.
# Usage: tests/fuzz/run.sh [BUILD_DIR] [SECONDS_PER_TARGET]   (defaults: build-fuzz 60;
# .ci/fuzz passes build-asan, where .ci/sanitize builds them)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build-fuzz}"
secs="${2:-${FUZZ_SECONDS:-60}}"
for t in routing envelope routes http; do
  work="$(mktemp -d)"
  cp "$here/$t"/* "$work"/ 2>/dev/null || true
  echo "fuzz_$t: ${secs}s"
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" 2>&1 | tail -n 12
  rm -rf "$work"
done
