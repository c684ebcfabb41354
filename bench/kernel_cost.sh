#!/usr/bin/env bash
# What one operation costs the kernel at a low, steady rate: system calls,
# context switches, CPU migrations and CPU time per operation, thread by
# thread. See bench/README.md ("Kernel cost per operation").
#
#   bench/kernel_cost.sh [--rate R] [--seconds S] [--no-build] [--keep]
#                        [--out FILE] [--label TEXT]
#
# Runs asyncopsd and two asyncops-worker --service users (as peers.sh does),
# warms them up with 2,000 operations, then sends R operations a second for
# S seconds (default 200/s for 10 s) with latency_probe.py (POST /users,
# Prefer: wait=5), while `perf stat --per-thread` counts the daemon's and the
# workers' threads. Counts, unlike timings, hardly move with the machine's
# noise: compare builds with them. JSON to --out (default
# bench/results/kernel-cost.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"
rate=200 seconds=10 do_build=1 keep=0 label=""
out="$here/results/kernel-cost.json"
usage() { sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rate) rate="${2:?}"; shift ;;
    --seconds) seconds="${2:?}"; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    --out) out="${2:?}"; shift ;;
    --label) label="${2:?}"; shift ;;
    -h|--help) usage ;;
    *) echo "kernel_cost.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
command -v jq >/dev/null || { echo "kernel_cost.sh: needs jq" >&2; exit 2; }
command -v perf >/dev/null || { echo "kernel_cost.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
bench_peers_dir "$root" kernel_cost.sh
bench_binaries "$root" "$build" "$do_build" kernel_cost.sh

bench_run_dir aokc
data="$run/data"; mkdir -p "$data"
log "asyncopsd + 2 workers in $data"
bench_start_users "$data"
"$lg" closed --url "$url" --conns 4 --requests 2000 --tag kw --out "$run/warmup.json" >/dev/null
"$lg" drain --url "$url" --timeout 300 --poll-ms 5 --out "$run/warmup_drain.json" >/dev/null
sleep 1

# CPU time (user + system, in clock ticks) of the three processes.
ticks() {
  local p s=0
  for p in "${pids[@]}"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$s"
}
plist=$(IFS=,; echo "${pids[*]}")
t0=$(ticks)
perf stat --per-thread -x, -e context-switches,cpu-migrations,raw_syscalls:sys_enter \
  -p "$plist" -o "$run/perf.csv" -- sleep "$(echo "$seconds + 1" | bc)" &
perf_pid=$!
log "latency_probe.py at $rate/s for ${seconds}s, counted by perf stat"
/usr/bin/python3 "$peers_dir/latency_probe.py" "$url" "$rate" "$seconds" >"$run/latency.json"
wait "$perf_pid"
t1=$(ticks)
ops=$(jq '.ok + .bad' "$run/latency.json")
hz=$(getconf CLK_TCK)

# perf's CSV: "<comm>-<tid>,<count>,,<event>,..." per thread and event.
# Threads are grouped by name (a worker's main thread is named after its
# binary); the idle ones (no system call) are left out.
python3 - "$run/perf.csv" "$ops" "$(( (t1 - t0) * 1000000 / hz ))" "$run/latency.json" \
  "${label:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}" >"$run/cost.json" <<'EOF'
import collections, json, sys
path, ops, cpu_us, lat_path, label = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
names = {"context-switches": "context_switches", "cpu-migrations": "migrations",
         "raw_syscalls:sys_enter": "syscalls"}
by = collections.defaultdict(lambda: collections.Counter())
for line in open(path):
    f = line.strip().split(",")
    if len(f) < 4 or f[3] not in names or not f[1].replace(".", "").isdigit():
        continue
    comm = f[0].rsplit("-", 1)[0]
    by[comm][names[f[3]]] += float(f[1])
threads = {c: {k: round(v / ops, 1) for k, v in sorted(cnt.items())}
           for c, cnt in sorted(by.items(), key=lambda kv: -kv[1]["syscalls"]) if cnt["syscalls"] > 0}
total = collections.Counter()
for cnt in by.values():
    total.update(cnt)
print(json.dumps({"build": label, "operations": ops, "latency": json.load(open(lat_path)),
                  "per_operation": {"cpu_us": round(cpu_us / ops, 1),
                                    **{k: round(v / ops, 1) for k, v in sorted(total.items())}},
                  "per_operation_by_thread": threads}, indent=1))
EOF
mkdir -p "$(dirname "$out")"
cp "$run/cost.json" "$out"
jq -r '"\(.operations) operations at '"$rate"'/s (latency p50 \(.latency.p50_ms) ms, p99 \(.latency.p99_ms) ms); per operation:",
  "  all threads: \(.per_operation.syscalls) system calls, \(.per_operation.context_switches) context switches, \(.per_operation.migrations) migrations, \(.per_operation.cpu_us) µs CPU",
  (.per_operation_by_thread | to_entries[] | "  \(.key): \(.value.syscalls) system calls, \(.value.context_switches) context switches")' "$out" >&2
echo "JSON: $out" >&2
