#!/usr/bin/env bash
# asyncops next to BullMQ in several rounds of one run: issue 11's
# throughput and latency targets as medians. See bench/README.md ("Peers in
# rounds").
#
#   bench/peers_rounds.sh [--rounds R] [--out-dir DIR] [--celery] [peers.sh options]
#   bench/peers_rounds.sh --summarize DIR
#
# Runs bench/peers.sh R times (default 5) in a row, BullMQ only unless
# --celery, the order alternating (peers first, then asyncops first, ...),
# each run's JSON and table in DIR (default a new bench/results/rounds-<UTC
# stamp>/). Then prints each run's ratio and latencies and their medians,
# with how many runs met each target. A single run moved from 1.35x to
# 2.26x within 13 minutes (bench/RESULTS.md, session 37); the median of a
# run of rounds is the figure to quote. Other options go to peers.sh as
# they are (--no-build is worth passing: each round would check the build).
# --summarize DIR prints (and rewrites) the summary of the runs in DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
rounds=5 out_dir="" celery=0 pass=() summarize=0
usage() { sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="${2:?}"; shift ;;
    --out-dir) out_dir="${2:?}"; shift ;;
    --celery) celery=1 ;;
    --summarize) summarize=1; out_dir="${2:?}"; shift ;;
    --order|--out|--no-peers) echo "peers_rounds.sh: $1 is chosen per round here" >&2; usage ;;
    -h|--help) usage ;;
    --n|--lat-rate|--lat-seconds|--in-flight|--job) pass+=("$1" "${2:?}"); shift ;;
    *) pass+=("$1") ;;
  esac
  shift
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "peers_rounds.sh: --rounds takes a positive integer" >&2; exit 2; }
command -v jq >/dev/null || { echo "peers_rounds.sh: needs jq" >&2; exit 2; }
out_dir="${out_dir:-$here/results/rounds-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out_dir"
[[ $celery == 1 ]] || pass+=(--no-celery)

if [[ $summarize == 1 ]]; then
  compgen -G "$out_dir/run-*.json" >/dev/null || { echo "peers_rounds.sh: no run-*.json in $out_dir" >&2; exit 2; }
  rounds=$(find "$out_dir" -maxdepth 1 -name 'run-*.json' | wc -l)
fi
for ((r = 1; r <= rounds && summarize == 0; r++)); do
  order=peers-first
  ((r % 2 == 0)) && order=asyncops-first
  printf '[%s] round %d of %d, %s\n' "$(date +%T)" "$r" "$rounds" "$order" >&2
  bash "$here/peers.sh" "${pass[@]}" --order "$order" --out "$out_dir/run-$r.json" >/dev/null
done

mapfile -t runs < <(find "$out_dir" -maxdepth 1 -name 'run-*.json' | sort -V)
jq -s "$bench_jq_median"'
  def stat(f; ok): map(f) | map(select(. != null)) as $v |
    {median: ($v | median), min: ($v | min), max: ($v | max),
     runs_meeting: ($v | map(select(ok)) | length), runs: ($v | length)};
  map({date: .run.date, commit: .run.commit, order: .run.order, loadavg_start: .run.loadavg_start,
       asyncops_per_s: .asyncops.e2e_rate_per_s, bullmq_per_s: .bullmq.e2e_rate_per_s_window,
       ratio: (if .bullmq.e2e_rate_per_s_window then .asyncops.e2e_rate_per_s / .bullmq.e2e_rate_per_s_window else null end),
       p50_ms: .asyncops.latency.p50_ms, p99_ms: .asyncops.latency.p99_ms,
       bullmq_p50_ms: .bullmq.latency_p50_ms, bullmq_p99_ms: .bullmq.latency_p99_ms,
       cpu_us_per_op: .asyncops.cpu_us_per_op_daemon_and_workers}) as $runs |
  {tool: "bench/peers_rounds.sh", runs: $runs,
   ratio: ($runs | stat(.ratio; . >= 2)),
   p50_ms: ($runs | stat(.p50_ms; . <= 1)), p99_ms: ($runs | stat(.p99_ms; . <= 2)),
   bullmq_p50_ms: ($runs | stat(.bullmq_p50_ms; true)), bullmq_p99_ms: ($runs | stat(.bullmq_p99_ms; true)),
   cpu_us_per_op: ($runs | stat(.cpu_us_per_op; true))}' \
  "${runs[@]}" >"$out_dir/summary.json"

{
  echo "asyncops next to BullMQ, $rounds rounds ($out_dir)"
  printf '%-5s %-9s %-15s %10s %10s %7s %15s %15s %8s\n' run time order asyncops/s BullMQ/s ratio "p50/p99 (ms)" "BullMQ p50/p99" "CPU us"
  jq -r '.runs | to_entries[] | .key as $k | .value |
    [($k + 1), (.date | .[11:19]), .order, (.asyncops_per_s | round), (.bullmq_per_s // 0 | round),
     ((.ratio // 0) * 100 | round / 100), "\(.p50_ms) / \(.p99_ms)", "\(.bullmq_p50_ms) / \(.bullmq_p99_ms)",
     (.cpu_us_per_op | round)] | join("|")' "$out_dir/summary.json" |
    while IFS='|' read -r a b c d e f g h i; do
      printf '%-5s %-9s %-15s %10s %10s %7s %15s %15s %8s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
    done
  jq -r '
    def r2: . * 100 | round / 100;
    "throughput vs BullMQ: median \(.ratio.median | r2)x, range \(.ratio.min | r2)-\(.ratio.max | r2)x; \(.ratio.runs_meeting) of \(.ratio.runs) runs >= 2x",
    "latency p50: median \(.p50_ms.median) ms, range \(.p50_ms.min)-\(.p50_ms.max); \(.p50_ms.runs_meeting) of \(.p50_ms.runs) runs <= 1 ms (BullMQ median \(.bullmq_p50_ms.median))",
    "latency p99: median \(.p99_ms.median) ms, range \(.p99_ms.min)-\(.p99_ms.max); \(.p99_ms.runs_meeting) of \(.p99_ms.runs) runs <= 2 ms (BullMQ median \(.bullmq_p99_ms.median))",
    "CPU per operation, daemon + workers: median \(.cpu_us_per_op.median | round) us"' "$out_dir/summary.json"
} | tee "$out_dir/summary.txt"
