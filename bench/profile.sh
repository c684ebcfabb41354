#!/usr/bin/env bash
# Where does asyncopsd spend its time? See bench/README.md, "Profiling".
#
#   bench/profile.sh [--requests 2000] [--conns 8] [--perf-seconds 8] [--out-dir DIR]
#
# 1. callgrind: asyncopsd runs under valgrind --tool=callgrind with two
#    workers; a fixed load of --requests POST /users is sent and drained;
#    the daemon is stopped with SIGTERM and callgrind_annotate lists the top
#    functions by inclusive cost (instructions, all threads).
# 2. perf (only if `perf record -e cpu-clock` works here): the daemon runs
#    at full speed under a closed-loop 32-connection load and perf samples
#    the whole machine by CPU time (software clock; no PMU needed), split by
#    process, by daemon thread and by symbol.
# Reports go to bench/results/profile-*.txt (or --out-dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"
requests=2000 conns=8 perf_s=8 outdir="$here/results"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --requests) requests="${2:?}"; shift ;;
    --conns) conns="${2:?}"; shift ;;
    --perf-seconds) perf_s="${2:?}"; shift ;;
    --out-dir) outdir="${2:?}"; shift ;;
    *) sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind (apt-get install -y valgrind)" >&2; exit 2; }
bench_configure "$root" "$build"
nice -n 10 ninja -C "$build" -j2 asyncopsd asyncops-worker asyncops-bench-loadgen >/dev/null
daemon="$build/daemon/asyncopsd" worker="$build/workers/asyncops-worker" lg="$build/bench/asyncops-bench-loadgen"
mkdir -p "$outdir"
bench_run_dir aop 100
workers() {
  "$worker" --data-dir "$1" --log-level warn >>"$1.w1.log" 2>&1 & w1=$!; pids+=("$w1")
  "$worker" --data-dir "$1" --log-level warn >>"$1.w2.log" 2>&1 & w2=$!; pids+=("$w2")
}

# ------------------------------------------------------------ callgrind
data="$run/cg"
log "callgrind: asyncopsd under valgrind, $requests requests over $conns connections"
valgrind --tool=callgrind --callgrind-out-file="$run/callgrind.out" \
  "$daemon" --data-dir "$data" --listen 127.0.0.1:0 --log-level warn >"$run/cg.valgrind.log" 2>&1 &
dpid=$!; pids+=("$dpid")
"$lg" ready --url-file "$data/asyncopsd.url" --timeout 120 --out "$run/cg.ready.json" >/dev/null
url=$(jq -r .url "$run/cg.ready.json")
workers "$data"
"$lg" closed --url "$url" --conns "$conns" --requests "$requests" --out "$run/cg.load.json"
# Polled every 500 ms, so that the drain's GETs stay a small part of the profile.
"$lg" drain --url "$url" --timeout 300 --poll-ms 500 --out "$run/cg.drain.json" >/dev/null
stop_pid "$dpid" 600; stop_pid "$w1" 600; stop_pid "$w2" 600  # callgrind writes its file at exit
cg_report="$outdir/profile-callgrind.txt"
{
  echo "# bench/profile.sh: callgrind on asyncopsd, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# load: $requests x POST /users over $conns keep-alive connections, then drained (two workers)"
  echo "# rate under valgrind: $(jq .rate_2xx_per_s "$run/cg.load.json") /s (valgrind serialises threads; read costs, not rates)"
  echo "# drain: $(jq .polls "$run/cg.drain.json") polls of 2 GETs each, until $(( $(jq .drained_ms "$run/cg.drain.json") - $(jq .start_ms "$run/cg.load.json") )) ms after the first request"
  echo "# callgrind_annotate --inclusive=yes (Ir = instructions executed, all threads, startup included)"
  callgrind_annotate --inclusive=yes "$run/callgrind.out" 2>/dev/null | sed -n '1,90p'
  echo
  echo "# callgrind_annotate (exclusive, self cost)"
  callgrind_annotate "$run/callgrind.out" 2>/dev/null | sed -n '1,60p'
} >"$cg_report"
log "wrote $cg_report"

# ------------------------------------------------------------ perf (optional)
if perf record -e cpu-clock -o "$run/probe.data" -- true >/dev/null 2>&1; then
  data="$run/pf"
  log "perf: system-wide cpu-clock for ${perf_s}s under 32-connection closed-loop load"
  "$daemon" --data-dir "$data" --listen 127.0.0.1:0 --log-level warn >"$run/pf.log" 2>&1 &
  dpid=$!; pids+=("$dpid")
  "$lg" ready --url-file "$data/asyncopsd.url" --timeout 30 --out "$run/pf.ready.json" >/dev/null
  url=$(jq -r .url "$run/pf.ready.json")
  workers "$data"
  "$lg" closed --url "$url" --conns 4 --requests 200 --out /dev/null
  "$lg" drain --url "$url" --timeout 60 --out /dev/null
  "$lg" closed --url "$url" --conns 32 --duration $((perf_s + 2)) --out "$run/pf.load.json" &
  lpid=$!
  sleep 1
  perf record -e cpu-clock -F 999 -a -o "$run/perf.data" -- sleep "$perf_s" >/dev/null 2>&1
  wait "$lpid"
  "$lg" drain --url "$url" --timeout 300 --out /dev/null
  stop_pid "$dpid" 600; stop_pid "$w1" 600; stop_pid "$w2" 600  # callgrind writes its file at exit
  pf_report="$outdir/profile-perf.txt"
  rep() { perf report -i "$run/perf.data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$'; }
  {
    echo "# bench/profile.sh: perf record -e cpu-clock -F 999 -a (no call graphs), ${perf_s}s, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# load: closed loop, 32 connections, $(jq .rate_2xx_per_s "$run/pf.load.json") POST/s over the whole load phase"
    echo "# $(nproc) CPUs: 100% = all of them for ${perf_s}s"
    echo
    echo "# CPU time by thread name (comm: asyncopsd's threads are aops-*):"
    rep --sort comm | sed -n '1,12p'
    echo
    echo "# asyncopsd: CPU time by thread (tid:name; their top symbols follow):"
    rep --pid "$dpid" --sort pid | sed -n '1,12p'
    for tid in $(rep --pid "$dpid" --sort pid | awk '{print $2}' | cut -d: -f1 | head -4); do
      echo
      echo "# asyncopsd thread $tid: top symbols (% of all samples)"
      rep --tid "$tid" --sort dso,sym | sed -n '1,10p'
    done
    echo
    echo "# asyncopsd: CPU time by shared object:"
    rep --pid "$dpid" --sort dso | sed -n '1,12p'
    echo
    echo "# asyncopsd: top symbols, self time:"
    rep --pid "$dpid" --sort dso,sym | sed -n '1,40p'
  } >"$pf_report"
  log "wrote $pf_report"
else
  log "perf record -e cpu-clock does not work here: callgrind only"
fi
