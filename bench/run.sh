#!/usr/bin/env bash
# The asyncops benchmark in one command. See bench/README.md.
#
#   bench/run.sh [--quick] [--sync normal|full|both] [--million]
#                [--rate R] [--e2e-rate R] [--duration S] [--conns N]
#                [--out FILE] [--keep] [--no-build]
#
# Starts a bare cpp-httplib server (the ceiling), then asyncopsd alone (the
# intake with no workers), then asyncopsd with two
# workers on a temp dir, drives them with asyncops-bench-loadgen over
# 127.0.0.1 only, and writes a table to stdout and JSON to
# bench/results/latest.json (or --out).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"

orig_args="$*"
quick=0 sync_arg=normal million=0 rate="" e2e_rate="" duration="" conns=32 keep=0 do_build=1
out="$here/results/latest.json"
usage() { sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --sync) sync_arg="${2:?}"; shift ;;
    --million) million=1 ;;
    --rate) rate="${2:?}"; shift ;;
    --e2e-rate) e2e_rate="${2:?}"; shift ;;
    --duration) duration="${2:?}"; shift ;;
    --conns) conns="${2:?}"; shift ;;
    --out) out="${2:?}"; shift ;;
    --keep) keep=1 ;;
    --no-build) do_build=0 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
case "$sync_arg" in
  normal) modes=(normal) ;; full) modes=(full) ;; both) modes=(normal full) ;;
  *) echo "run.sh: --sync must be normal, full or both" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "run.sh: needs jq (apt-get install -y jq)" >&2; exit 2; }

# Phase lengths in seconds. --quick keeps the whole run under a minute.
if [[ $quick == 1 ]]; then
  profile=quick; d_ceiling=4; d_wrk=3; d_accept=${duration:-5}; d_half=2; g_half=2; d_e2e=4
else
  profile=full; d_ceiling=10; d_wrk=10; d_accept=${duration:-10}; d_half=5; g_half=5; d_e2e=15
fi

if [[ $do_build == 1 ]]; then
  bench_configure "$root" "$build"
  nice -n 10 ninja -C "$build" -j2 asyncopsd asyncops-worker asyncops-bench-ceiling asyncops-bench-beast-ceiling \
    asyncops-bench-loadgen >/dev/null
fi
daemon="$build/daemon/asyncopsd"
worker="$build/workers/asyncops-worker"
ceiling="$build/bench/asyncops-bench-ceiling"
beast_ceiling="$build/bench/asyncops-bench-beast-ceiling"
lg="$build/bench/asyncops-bench-loadgen"
for b in "$daemon" "$worker" "$ceiling" "$beast_ceiling" "$lg"; do
  [[ -x $b ]] || { echo "run.sh: missing $b (build first, or drop --no-build)" >&2; exit 2; }
done

bench_run_dir aob
now_ms() { date +%s%3N; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo null; }
file_size() { [[ -f $1 ]] && stat -c %s "$1" || echo 0; }

start_daemon() {  # DATA_DIR SYNC [FLAG...] -> sets dpid, url
  local data=$1 sync=$2
  rm -f "$data/asyncopsd.url"
  "$daemon" --data-dir "$data" --listen 127.0.0.1:0 --sync "$sync" --log-level warn "${@:3}" >>"$data.daemon.log" 2>&1 &
  dpid=$!; pids+=("$dpid")
  "$lg" ready --url-file "$data/asyncopsd.url" --timeout 30 --out "$data.ready.json" \
    || { echo "asyncopsd did not become ready; log:" >&2; tail -20 "$data.daemon.log" >&2; exit 1; }
  url=$(jq -r .url "$data.ready.json")
}
start_workers() {  # DATA_DIR -> sets w1 w2
  local data=$1
  "$worker" --data-dir "$data" --service users --log-level warn >>"$data.worker1.log" 2>&1 &
  w1=$!; pids+=("$w1")
  "$worker" --data-dir "$data" --service users --log-level warn >>"$data.worker2.log" 2>&1 &
  w2=$!; pids+=("$w2")
}
drain() {  # URL OUT
  "$lg" drain --url "$1" --timeout 300 --poll-ms 5 --out "$2" \
    || { echo "operations did not finish within 300 s" >&2; exit 1; }
}

kernel="$(uname -r)"
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg profile "$profile" --argjson nproc "$(nproc)" \
  --arg cpu "$cpu" --arg kernel "$kernel" --arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg sync "$sync_arg" --argjson conns "$conns" --arg command "bench/run.sh $orig_args" \
  --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{date:$date, profile:$profile, nproc:$nproc, cpu:$cpu, kernel:$kernel, commit:$commit, sync:$sync, conns:$conns, command:$command, loadavg_start:$loadavg}' \
  >"$run/run.json"

# ---------------------------------------------------------------- (1) ceiling
log "ceiling: bare cpp-httplib, $conns connections, ${d_ceiling}s"
"$ceiling" --url-file "$run/ceiling.url" --threads $((conns * 2 > 64 ? conns * 2 : 64)) >"$run/ceiling.log" 2>&1 &
cpid=$!; pids+=("$cpid")
"$lg" ready --url-file "$run/ceiling.url" --timeout 10 --out "$run/ceiling.ready.json" >/dev/null
curl_url=$(jq -r .url "$run/ceiling.ready.json")
"$lg" closed --url "$curl_url" --conns "$conns" --duration "$d_ceiling" --out "$run/ceiling.json"
ceiling_rate=$(jq .rate_2xx_per_s "$run/ceiling.json")
jq --argjson cpu "$(cpu_s "$cpid")" '. + {server_cpu_s: $cpu}' "$run/ceiling.json" >"$run/ceiling.tmp" \
  && mv "$run/ceiling.tmp" "$run/ceiling.json"
if command -v wrk >/dev/null; then
  cat >"$run/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"wrk@example.com","name":"Bench User"}'
LUA
  wrk_rate=$(wrk -t2 -c"$conns" -d"${d_wrk}s" -s "$run/post.lua" "$curl_url/users" | awk '/^Requests\/sec:/ {print $2}')
  printf '{"tool":"wrk -t2 -c%s -d%ss","rate_per_s":%s}\n' "$conns" "$d_wrk" "${wrk_rate:-null}" >"$run/ceiling_wrk.json"
fi
stop_pid "$cpid"
log "ceiling: $(printf '%.0f' "$ceiling_rate") req/s"

# (1b) the Beast ceiling: the same load against a bare Boost.Beast server
# with one I/O thread per core (what an event-loop front end could reach).
log "ceiling: bare Boost.Beast, $(nproc) I/O threads, $conns connections, ${d_ceiling}s"
"$beast_ceiling" --url-file "$run/beast_ceiling.url" --threads "$(nproc)" >"$run/beast_ceiling.log" 2>&1 &
bpid=$!; pids+=("$bpid")
"$lg" ready --url-file "$run/beast_ceiling.url" --timeout 10 --out "$run/beast_ceiling.ready.json" >/dev/null
"$lg" closed --url "$(jq -r .url "$run/beast_ceiling.ready.json")" --conns "$conns" --duration "$d_ceiling" \
  --out "$run/beast_ceiling.json"
jq --argjson cpu "$(cpu_s "$bpid")" --argjson threads "$(nproc)" '. + {server_cpu_s: $cpu, io_threads: $threads}' \
  "$run/beast_ceiling.json" >"$run/beast_ceiling.tmp" && mv "$run/beast_ceiling.tmp" "$run/beast_ceiling.json"
stop_pid "$bpid"
log "ceiling: Beast $(printf '%.0f' "$(jq .rate_2xx_per_s "$run/beast_ceiling.json")") req/s"

half_rate=${rate:-$(jq -n "$ceiling_rate / 2 | floor")}

# ---------------------------------------------------------------- per sync mode
for mode in "${modes[@]}"; do
  dir="$run/$mode"; data="$dir/data"; mkdir -p "$dir"
  # (2a) intake with no workers running (issue 11's figure): the accept path
  # alone, on a daemon of its own, so that the phases below do not start
  # with its backlog. --max-backlog lifts the 503 at 50,000 unfinished.
  log "--sync $mode: intake with no workers, $conns connections, ${d_accept}s"
  start_daemon "$dir/intake_data" "$mode" --max-backlog 100000000
  "$lg" closed --url "$url" --conns "$conns" --duration "$d_accept" --tag "i$mode" --out "$dir/intake.json"
  jq --argjson cpu "$(cpu_s "$dpid")" '. + {server_cpu_s: $cpu}' "$dir/intake.json" >"$dir/intake.tmp" \
    && mv "$dir/intake.tmp" "$dir/intake.json"
  stop_pid "$dpid"
  rm -rf "$dir/intake_data"  # a few hundred MB of operations that nothing will run
  log "--sync $mode: intake $(printf '%.0f' "$(jq .rate_2xx_per_s "$dir/intake.json")")/s"

  log "--sync $mode: asyncopsd + 2 workers in $data"
  start_daemon "$data" "$mode"
  start_workers "$data"
  # Warm up: the workers connect and the tracker subscribes before timing.
  "$lg" closed --url "$url" --conns 4 --requests 200 --tag "w$mode" --out "$dir/warmup.json"
  drain "$url" "$dir/warmup_drain.json"

  # (2) (4) accept rate and latency at saturation; (3) end-to-end rate
  log "--sync $mode: accept rate, $conns connections, ${d_accept}s"
  "$lg" closed --url "$url" --conns "$conns" --duration "$d_accept" --tag "a$mode" --out "$dir/accept.json"
  drain "$url" "$dir/drain.json"
  "$lg" ops --url "$url" --since-ms "$(jq .start_ms "$dir/accept.json")" --out "$dir/accept_ops.json"
  accept_rate=$(jq .rate_2xx_per_s "$dir/accept.json")
  log "--sync $mode: accepted $(printf '%.0f' "$accept_rate")/s; all terminal after $(( $(jq .drained_ms "$dir/drain.json") - $(jq .start_ms "$dir/accept.json") )) ms"

  # (6) accept latency at half the ceiling's rate (open loop)
  log "--sync $mode: open loop at $half_rate/s (half the ceiling) for ${d_half}s"
  "$lg" open --url "$url" --conns "$conns" --rate "$half_rate" --duration "$d_half" --grace "$g_half" \
    --tag "h$mode" --out "$dir/half.json"
  drain "$url" "$dir/half_drain.json"
  "$lg" ops --url "$url" --since-ms "$(jq .start_ms "$dir/half.json")" --out "$dir/half_ops.json"

  # (5) end-to-end latency at a fixed offered rate the pipeline can carry:
  # --e2e-rate, or half of the end-to-end rate just measured.
  this_e2e_rate=${e2e_rate:-$(jq -n --slurpfile a "$dir/accept.json" --slurpfile d "$dir/drain.json" \
    '($a[0].accepted_2xx / (($d[0].drained_ms - $a[0].start_ms) / 1000)) / 2 | floor')}
  log "--sync $mode: open loop at $this_e2e_rate/s for ${d_e2e}s (end-to-end latency)"
  "$lg" open --url "$url" --conns "$conns" --rate "$this_e2e_rate" --duration "$d_e2e" --grace 10 \
    --tag "e$mode" --out "$dir/open.json"
  drain "$url" "$dir/open_drain.json"
  "$lg" ops --url "$url" --since-ms "$(jq .start_ms "$dir/open.json")" --out "$dir/open_ops.json"

  # (7) peak RSS, read before stopping; (8) store size after a clean stop
  # (SIGTERM: SQLite checkpoints and removes the WAL on the last close).
  hd=$(hwm_kib "$dpid"); h1=$(hwm_kib "$w1"); h2=$(hwm_kib "$w2")
  cd_=$(cpu_s "$dpid"); c1=$(cpu_s "$w1"); c2=$(cpu_s "$w2")
  stop_pid "$dpid"; stop_pid "$w1"; stop_pid "$w2"
  ops_total=$(jq -s 'map(.accepted_2xx) | add' "$dir/warmup.json" "$dir/accept.json" "$dir/half.json" "$dir/open.json")
  db=$(file_size "$data/asyncops.db"); wal=$(file_size "$data/asyncops.db-wal"); users=$(file_size "$data/users.db")
  jq -n --argjson hd "$hd" --argjson h1 "$h1" --argjson h2 "$h2" --argjson ops "$ops_total" \
    --argjson db "$db" --argjson wal "$wal" --argjson users "$users" \
    --argjson cd "$cd_" --argjson c1 "$c1" --argjson c2 "$c2" \
    '{cpu:{daemon_s:$cd, worker1_s:$c1, worker2_s:$c2, operations:$ops,
           daemon_us_per_op:($cd * 1e6 / $ops), workers_us_per_op:(($c1 + $c2) * 1e6 / $ops)},
      memory:{daemon_vmhwm_kib:$hd, worker1_vmhwm_kib:$h1, worker2_vmhwm_kib:$h2},
      store:{operations:$ops, db_bytes:$db, wal_bytes:$wal, bytes_per_op:(($db+$wal)/$ops),
             worker_users_db_bytes:$users}}' >"$dir/meta.json"
done

# ---------------------------------------------------------------- --million
if [[ $million == 1 ]]; then
  mode=${modes[0]}; dir="$run/million"; data="$dir/data"; mkdir -p "$dir"
  log "--million: filling 1,000,000 operations through HTTP (--sync $mode)"
  start_daemon "$data" "$mode"
  start_workers "$data"
  "$lg" closed --url "$url" --conns "$conns" --requests 1000000 --tag m --out "$dir/fill.json" &
  fill_pid=$!
  # Every 10 s: seconds, daemon VmRSS (KiB), operations not yet terminal
  # (read-only sqlite3 query, when the CLI is installed), WAL file bytes.
  # At most 1 h.
  fill_t0=$(now_ms)
  for _ in $(seq 360); do
    kill -0 "$fill_pid" 2>/dev/null || break
    open_n=null
    if command -v sqlite3 >/dev/null; then
      open_n=$(sqlite3 -readonly "$data/asyncops.db" \
        "SELECT count(*) FROM operations WHERE state IN ('pending','processing')" 2>/dev/null || echo null)
    fi
    echo "$(( ($(now_ms) - fill_t0) / 1000 )) $(awk '/^VmRSS:/ {print $2}' "/proc/$dpid/status") ${open_n:-null} $(file_size "$data/asyncops.db-wal")" >>"$dir/rss_samples.txt"
    sleep 10
  done
  wait "$fill_pid"
  drain "$url" "$dir/fill_drain.json"
  hd=$(hwm_kib "$dpid")
  stop_pid "$dpid"
  n=$(jq .accepted_2xx "$dir/fill.json")
  db=$(file_size "$data/asyncops.db"); wal=$(file_size "$data/asyncops.db-wal")
  log "--million: restart on $n operations"
  sync; t0=$(now_ms)
  start_daemon "$data" "$mode"
  ready_ms=$(jq .ready_ms "$data.ready.json")
  rss_ready=$(awk '/^VmRSS:/ {print $2}' "/proc/$dpid/status")
  # A short probe load on the full store: reads and writes at 1M rows.
  "$lg" closed --url "$url" --conns "$conns" --duration 3 --tag mp --out "$dir/probe.json"
  drain "$url" "$dir/probe_drain.json"
  hd2=$(hwm_kib "$dpid")
  stop_pid "$dpid"; stop_pid "$w1"; stop_pid "$w2"
  jq -n --slurpfile f "$dir/fill.json" --slurpfile fd "$dir/fill_drain.json" --slurpfile p "$dir/probe.json" \
    --arg sync "$mode" --argjson n "$n" --argjson hd "$hd" --argjson hd2 "$hd2" --argjson rss_ready "$rss_ready" \
    --argjson db "$db" --argjson wal "$wal" --argjson t0 "$t0" --argjson ready "$ready_ms" \
    --rawfile samples "$dir/rss_samples.txt" \
    '{sync:$sync, operations:$n, fill_s:$f[0].elapsed_s, fill_rate_per_s:$f[0].rate_2xx_per_s,
      fill_all_terminal_s:(($fd[0].drained_ms - $f[0].start_ms)/1000),
      daemon_vmhwm_kib:$hd, db_bytes:$db, wal_bytes:$wal, bytes_per_op:(($db+$wal)/$n),
      restart_to_ready_ms:($ready - $t0), restarted_rss_at_ready_kib:$rss_ready,
      restarted_vmhwm_kib:$hd2, probe_rate_per_s:$p[0].rate_2xx_per_s,
      probe_p99_ms:$p[0].latency.p99_ms,
      rss_samples:[$samples | split("\n")[] | select(length > 0) | split(" ")
                   | {t_s:(.[0] | tonumber), daemon_rss_kib:(.[1] | tonumber), not_terminal:(.[2] | fromjson),
                      wal_bytes:(.[3] // "null" | fromjson)}]}' \
    >"$run/million.json"
fi

# ---------------------------------------------------------------- report
mkdir -p "$(dirname "$out")"
"$lg" report --dir "$run" --out "$out"
echo "JSON: $out"
if [[ $keep == 1 ]]; then echo "phase files: $run"; fi
