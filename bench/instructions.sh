#!/usr/bin/env bash
# Instructions per accept (or per operation), thread by thread: asyncopsd
# under valgrind's callgrind, driven by the load generator. See
# bench/README.md ("Instructions per accept").
#
#   bench/instructions.sh [--e2e | --worker] [--n N] [--conns C] [--no-build] [--keep]
#
# Without --e2e: asyncopsd alone (no worker), 500 accepts to warm up, then
# the counters are zeroed and N accepts (default 3000) are counted. With
# --e2e: two asyncops-worker processes (not under valgrind) run the
# operations, and the count runs until all N are terminal. With --worker:
# the other way round, asyncopsd at full speed and one worker, which runs
# every operation, under callgrind: its instructions per operation.
#
# Wall-clock timings on a shared 2-core machine move by 10 % from run to
# run; instruction counts do not, so a change of a few per cent in the
# daemon's own code shows here when run.sh cannot tell it apart. They count
# user-space instructions only: not the kernel's share (the sockets, the
# WAL's writes), and not cache misses. Under valgrind the threads take
# turns, so the commit batches are smaller than at full speed: compare
# builds with each other, not with run.sh's CPU figures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"
e2e=0 worker_only=0 n=3000 conns=8 do_build=1 keep=0
usage() { sed -n '6,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --e2e) e2e=1 ;;
    --worker) worker_only=1 ;;
    --n) n="${2:?}"; shift ;;
    --conns) conns="${2:?}"; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    *) echo "instructions.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
for tool in valgrind callgrind_control jq; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: needs $tool (apt-get install -y valgrind jq)" >&2; exit 2; }
done
bench_binaries "$root" "$build" "$do_build" instructions.sh
bench_run_dir aoi 100

data="$run/data"
if [[ $worker_only == 1 ]]; then
  # The daemon at full speed; the one worker, all its threads in one count
  # (libzmq's own included), is what is counted.
  "$daemon" --data-dir "$data" --listen 127.0.0.1:0 --sync normal --log-level warn --max-backlog 100000000 \
    >"$run/daemon.log" 2>&1 &
  pids+=("$!")
  ready_timeout=30
else
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$run/cg.out" \
    "$daemon" --data-dir "$data" --listen 127.0.0.1:0 --sync normal --log-level warn --max-backlog 100000000 \
    >"$run/daemon.log" 2>&1 &
  counted=$!; pids+=("$counted")
  ready_timeout=120
fi
"$lg" ready --url-file "$data/asyncopsd.url" --timeout "$ready_timeout" --out "$run/ready.json" >/dev/null \
  || { echo "asyncopsd did not become ready; log:" >&2; tail -20 "$run/daemon.log" >&2; exit 1; }
url=$(jq -r .url "$run/ready.json")
if [[ $worker_only == 1 ]]; then
  valgrind --tool=callgrind --callgrind-out-file="$run/cg.out" \
    "$worker" --data-dir "$data" --service users --log-level warn >"$run/worker.log" 2>&1 &
  counted=$!; pids+=("$counted")
  e2e=1
elif [[ $e2e == 1 ]]; then
  for i in 1 2; do
    "$worker" --data-dir "$data" --service users --log-level warn >"$run/worker$i.log" 2>&1 &
    pids+=("$!")
  done
fi
drain() { [[ $e2e == 0 ]] || "$lg" drain --url "$url" --timeout 300 --poll-ms 20 --out "$1" >/dev/null; }

log "warming up: 500 requests"
"$lg" closed --url "$url" --conns "$conns" --requests 500 --tag iw --out "$run/warm.json" >/dev/null
drain "$run/warm-drain.json"
callgrind_control -z "$counted" >/dev/null 2>&1
log "counting: $n requests over $conns connections$([[ $e2e == 1 ]] && echo ', until all are terminal')"
"$lg" closed --url "$url" --conns "$conns" --requests "$n" --tag ic --out "$run/count.json" >/dev/null
drain "$run/count-drain.json"
callgrind_control -d "$counted" >/dev/null 2>&1
# The dump is written by the counted process's own threads: wait for every file.
for _ in $(seq 100); do
  ls "$run"/cg.out.* >/dev/null 2>&1 && ! find "$run" -name 'cg.out.*' -size 0 | grep -q . && break
  sleep 0.1
done

ok=$(jq '.statuses["202"] // 0' "$run/count.json")
[[ $ok == "$n" ]] || { echo "instructions.sh: $ok of $n requests were accepted" >&2; exit 1; }
commit_line() { log "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), binaries from $build"; }
if [[ $worker_only == 1 ]]; then
  ir=$(awk '/^summary:/ {print $2; exit}' "$run"/cg.out.*)
  printf '%-12s %14s\n' process "Ir per operation"
  awk -v ir="$ir" -v n="$n" 'BEGIN { printf "%-12s %14.0f\n", "worker", ir / n }'
  commit_line
  exit 0
fi
# A thread is named by the entry point its file holds.
label() {
  local f=$1
  if grep -q 'GroupCommitter::start()::{lambda' "$f"; then echo commit
  elif grep -q 'Tracker::start()::{lambda' "$f"; then echo tracker
  elif grep -q 'Dispatcher::start()::{lambda' "$f"; then echo dispatch
  elif grep -q 'HttpApi::Impl::start()::{lambda' "$f"; then echo io
  elif grep -q 'Checkpointer' "$f"; then echo checkpoint
  else echo other
  fi
}
unit=$([[ $e2e == 1 ]] && echo operation || echo accept)
printf '%-12s %14s\n' thread "Ir per $unit"
for f in "$run"/cg.out.*-*; do
  ir=$(awk '/^summary:/ {print $2; exit}' "$f")
  [[ -n $ir && $ir -gt 0 ]] || continue
  echo "$(label "$f") $ir"
done | awk -v n="$n" '
  { sum[$1] += $2; total += $2 }
  END {
    for (t in sum) printf "%-12s %14.0f\n", t, sum[t] / n
    printf "%-12s %14.0f\n", "daemon", total / n
  }' | sort -k1,1
commit_line
