#!/usr/bin/env bash
# Builds asyncopsd, asyncops-worker and asyncops-bench-sse, then runs the SSE
# watchers benchmark on a fresh temp data dir. Usage:
#
#   bash bench/sse/run.sh                 # 1000 watchers, 5000 commands per phase
#   bash bench/sse/run.sh --quick         # 200 watchers, 1000 commands (< 30 s)
#   bash bench/sse/run.sh --watchers 2000 --commands 10000 --out /tmp/r.json
#
# Every argument is passed to asyncops-bench-sse (see --help). Environment:
#   BUILD_DIR  build directory (default: <repo>/build)
#   NO_BUILD=1 do not run cmake/ninja
#   KEEP=1     keep the data dir (daemon.log, worker.log, asyncops.db)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
build="${BUILD_DIR:-$repo/build}"

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  bench_configure "$repo" "$build"
  nice -n 10 ninja -C "$build" -j2 asyncopsd asyncops-worker asyncops-bench-sse
fi

# The daemon holds one socket (and one thread) per watcher. Raise the fd
# limit before anything starts; children inherit it. The hard limit may be
# below 65536 (it is 20000 on some hosts): then take the hard limit.
want=65536
hard="$(ulimit -Hn)"
if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then want="$hard"; fi
ulimit -n "$want"

# Short path: the ipc:// endpoints live in the data dir.
data="$(mktemp -d /tmp/aosse-XXXX)"
cleanup() {
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "data dir kept: $data" >&2
  else
    rm -rf "$data"
  fi
}
trap cleanup EXIT

out_default=(--out "$here/results.json")
for a in "$@"; do
  if [[ "$a" == --out || "$a" == --out=* ]]; then out_default=(); fi
done

echo "ulimit -n $(ulimit -n); data dir $data" >&2
rc=0
nice -n 10 "$build/bench/sse/asyncops-bench-sse" \
  --daemon "$build/daemon/asyncopsd" --worker "$build/workers/asyncops-worker" \
  --data-dir "$data" "${out_default[@]}" "$@" || rc=$?
if [[ $rc -ne 0 && -f "$data/daemon.log" ]]; then
  echo "--- last lines of daemon.log" >&2
  tail -n 20 "$data/daemon.log" >&2
fi
exit $rc
