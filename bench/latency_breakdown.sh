#!/usr/bin/env bash
# Where the end-to-end latency at 200/s goes, step by step (issue 11).
# See bench/README.md ("Latency, step by step").
#
#   bench/latency_breakdown.sh [--n N] [--lat-rate R] [--lat-seconds S]
#                              [--no-build] [--keep] [--out FILE] [--label TEXT]
#
# Runs asyncopsd + 2 asyncops-worker --service users as bench/peers.sh does
# (warm-up, then N operations from 50 connections, default 20,000, so the
# store and its WAL are as peers.sh leaves them), then the same latency
# probe (latency_probe.py, POST /users with Prefer: wait=5, R/s for S s),
# all with ASYNCOPS_TIMELINE=1 (shared/timeline.h). Then bench/timeline.py
# prints, for the probe's operations, the time between consecutive steps
# and which step was the longest in the slowest 1 %. JSON to --out
# (default bench/results/latency-breakdown.json), with --label as its
# `build` (default: this checkout's commit, which is not the binaries' when
# ASYNCOPS_BUILD_DIR points at another tree).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"
n=20000 lat_rate=200 lat_seconds=10 do_build=1 keep=0 label=""
out="$here/results/latency-breakdown.json"
usage() { sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --n) n="${2:?}"; shift ;;
    --lat-rate) lat_rate="${2:?}"; shift ;;
    --lat-seconds) lat_seconds="${2:?}"; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    --out) out="${2:?}"; shift ;;
    --label) label="${2:?}"; shift ;;
    -h|--help) usage ;;
    *) echo "latency_breakdown.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
command -v jq >/dev/null || { echo "latency_breakdown.sh: needs jq" >&2; exit 2; }
bench_peers_dir "$root" latency_breakdown.sh
bench_binaries "$root" "$build" "$do_build" latency_breakdown.sh

bench_run_dir aolb
data="$run/data"; mkdir -p "$data"
export ASYNCOPS_TIMELINE=1
log "asyncopsd + 2 workers in $data, ASYNCOPS_TIMELINE=1"
bench_start_users "$data"
"$lg" closed --url "$url" --conns 4 --requests 200 --tag lw --out "$run/warmup.json" >/dev/null
"$lg" drain --url "$url" --timeout 300 --poll-ms 5 --out "$run/warmup_drain.json" >/dev/null
if [[ $n -gt 0 ]]; then
  log "$n operations from 50 connections, until all terminal (as peers.sh)"
  "$lg" closed --url "$url" --conns 50 --requests "$n" --tag le --out "$run/e2e.json" >/dev/null
  "$lg" drain --url "$url" --timeout 300 --poll-ms 5 --out "$run/e2e_drain.json" >/dev/null
fi
sleep 1
log "latency at $lat_rate/s for ${lat_seconds}s (latency_probe.py)"
/usr/bin/python3 "$peers_dir/latency_probe.py" "$url" "$lat_rate" "$lat_seconds" >"$run/latency.json"
cat "$run/latency.json" >&2
probe_n=$(jq '.ok // 0' "$run/latency.json")
[[ $probe_n -ge 1 ]] || { echo "latency_breakdown.sh: the probe had no answered request" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
/usr/bin/python3 "$here/timeline.py" --last "$probe_n" --json "$run/steps.json" \
  "$run/daemon.log" "$run/worker1.log" "$run/worker2.log"
jq -n --slurpfile lat "$run/latency.json" --slurpfile steps "$run/steps.json" \
  --arg commit "${label:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{commit:$commit, loadavg_start:$load, client:$lat[0], daemon_and_workers:$steps[0]}' >"$out"
echo "JSON: $out" >&2
