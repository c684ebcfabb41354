#!/usr/bin/env bash
# asyncops next to BullMQ and Celery, in ONE run (issue 11's Targets table).
# See bench/README.md ("Peers side by side").
#
#   bench/peers.sh [--n N] [--lat-rate R] [--lat-seconds S] [--in-flight K]
#                  [--job users|peer] [--order peers-first|asyncops-first]
#                  [--no-peers] [--no-celery] [--no-build] [--keep] [--out FILE]
#
# 1. The peers: ../shared/peers/run.sh with Celery prefork c=2 and BullMQ
#    `add` (sequential, its latency phase) and `window` (K=50 in flight).
# 2. asyncops on a temp dir: asyncopsd + 2 asyncops-worker running the
#    peers' own job (the built-in peer_job service: check both fields,
#    answer the id; no user table), routed from POST /users;
#    end-to-end throughput = N POST /users from K connections (closed loop)
#    until every operation is terminal; then latency at R/s as the client
#    sees it: latency_probe.py from the peers' folder (POST /users with
#    `Prefer: wait=5`, open loop, latency from each request's due time).
#    --job users: the users service instead, which also looks up and
#    inserts each user in its own database (work the peers' job has not).
#    --order asyncops-first: asyncops before the peers (its processes are
#    stopped before the peers start). In 8 runs the order made no
#    difference, the hour did (bench/RESULTS.md, session 37).
#    --no-celery: BullMQ only (no issue 11 target names Celery);
#    bench/peers_rounds.sh uses it for its rounds.
# Prints a table with ratios, writes JSON to bench/results/peers.json.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"

n=20000 lat_rate=200 lat_seconds=10 in_flight=50 run_peers=1 peers="celery bullmq" do_build=1 keep=0 job=peer order=peers-first
out="$here/results/peers.json"
orig_args="$*"
usage() { sed -n '5,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --n) n="${2:?}"; shift ;;
    --lat-rate) lat_rate="${2:?}"; shift ;;
    --lat-seconds) lat_seconds="${2:?}"; shift ;;
    --in-flight) in_flight="${2:?}"; shift ;;
    --job) job="${2:?}"; shift ;;
    --order) order="${2:?}"; shift ;;
    --no-peers) run_peers=0 ;;
    --no-celery) peers=bullmq ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    --out) out="${2:?}"; shift ;;
    -h|--help) usage ;;
    *) echo "peers.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
command -v jq >/dev/null || { echo "peers.sh: needs jq" >&2; exit 2; }
[[ $job == users || $job == peer ]] || { echo "peers.sh: --job is users or peer" >&2; usage; }
[[ $order == peers-first || $order == asyncops-first ]] || { echo "peers.sh: --order is peers-first or asyncops-first" >&2; usage; }

bench_peers_dir "$root" peers.sh
bench_binaries "$root" "$build" "$do_build" peers.sh

bench_run_dir aop

loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- the peers
run_the_peers() {
  [[ $run_peers == 1 ]] || return 0
  log "peers ($peers): Celery prefork c=2, BullMQ add + window=$in_flight, N=$n ($peers_dir/run.sh)"
  N="$n" LAT_RATE="$lat_rate" LAT_SECONDS="$lat_seconds" WINDOW="$in_flight" PEERS="$peers" \
    CELERY_VARIANTS="prefork:2" BULLMQ_VARIANTS="add window" \
    bash "$peers_dir/run.sh" >"$run/peers.txt" 2>"$run/peers.log" \
    || { echo "peers.sh: the peers' run.sh failed; its log:" >&2; tail -20 "$run/peers.log" >&2; exit 1; }
  cat "$run/peers.txt" >&2
}
# One field of a peer's summary line: peer_field LABEL REGEX -> number or null.
peer_field() {
  local line
  line=$(grep -E "^$1 " "$run/peers.txt" 2>/dev/null | head -1 || true)
  [[ -n $line ]] || { echo null; return; }
  local v
  v=$(sed -nE "s|.*$2.*|\\1|p" <<<"$line" | head -1)
  [[ -n $v ]] && echo "$v" || echo null
}

# ---------------------------------------------------------------- asyncops
run_asyncops() {
  data="$run/data"; mkdir -p "$data"
  service=users routes=()
  if [[ $job == peer ]]; then
    # The same POST /users, as the peers' job: the latency probe's path and
    # body are unchanged.
    service=peer_job
    cat >"$run/routes.json" <<'JSON'
{"routes": [{"method": "POST", "path": "/users", "command": "run_job", "service": "peer_job",
             "resource": "/users/{id}",
             "body": {"email": {"type": "string", "required": true, "min_length": 1, "max_length": 254},
                      "name": {"type": "string", "required": true, "min_length": 1, "max_length": 200}}}]}
JSON
    routes=(--routes "$run/routes.json")
  fi
  log "asyncops: asyncopsd + 2 workers --service $service in $data"
  "$daemon" --data-dir "$data" --listen 127.0.0.1:0 --log-level warn "${routes[@]}" >>"$run/daemon.log" 2>&1 &
  dpid=$!; pids+=("$dpid")
  "$lg" ready --url-file "$data/asyncopsd.url" --timeout 30 --out "$run/ready.json" \
    || { echo "asyncopsd did not become ready" >&2; tail -20 "$run/daemon.log" >&2; exit 1; }
  url=$(jq -r .url "$run/ready.json")
  "$worker" --data-dir "$data" --service "$service" --log-level warn >>"$run/worker1.log" 2>&1 &
  w1=$!; pids+=("$w1")
  "$worker" --data-dir "$data" --service "$service" --log-level warn >>"$run/worker2.log" 2>&1 &
  w2=$!; pids+=("$w2")
  "$lg" closed --url "$url" --conns 4 --requests 200 --tag pw --out "$run/warmup.json"
  "$lg" drain --url "$url" --timeout 300 --poll-ms 5 --out "$run/warmup_drain.json"

  log "asyncops: end-to-end, N=$n from $in_flight connections, until all terminal"
  # Store transactions (asyncops_store_commits_total): how large the batches were.
  commits() { curl -sf "$url/metrics" | awk '/^asyncops_store_commits_total / {print $2}'; }
  k0=$(commits)
  c0=$(cpu_s "$dpid"); c1=$(cpu_s "$w1"); c2=$(cpu_s "$w2")
  "$lg" closed --url "$url" --conns "$in_flight" --requests "$n" --tag pe --out "$run/e2e.json"
  "$lg" drain --url "$url" --timeout 300 --poll-ms 5 --out "$run/e2e_drain.json"
  d0=$(cpu_s "$dpid"); d1=$(cpu_s "$w1"); d2=$(cpu_s "$w2")
  k1=$(commits)
  e2e_rate=$(jq -n --slurpfile a "$run/e2e.json" --slurpfile d "$run/e2e_drain.json" \
    '$a[0].accepted_2xx / (($d[0].drained_ms - $a[0].start_ms) / 1000)')
  n_ok=$(jq .accepted_2xx "$run/e2e.json")
  cpu_us=$(jq -n --argjson n "$n_ok" "(($d0 - $c0) + ($d1 - $c1) + ($d2 - $c2)) * 1e6 / \$n")
  cpu_us_daemon=$(jq -n --argjson n "$n_ok" "($d0 - $c0) * 1e6 / \$n")
  cpu_us_workers=$(jq -n --argjson n "$n_ok" "(($d1 - $c1) + ($d2 - $c2)) * 1e6 / \$n")
  # The drain's GETs commit nothing; the dispatch marks and events do.
  commits_per_op=$(jq -n --argjson n "$n_ok" "(${k1:-0} - ${k0:-0}) / \$n")

  sleep 1
  log "asyncops: latency at $lat_rate/s for ${lat_seconds}s, POST with Prefer: wait=5 (latency_probe.py)"
  /usr/bin/python3 "$peers_dir/latency_probe.py" "$url" "$lat_rate" "$lat_seconds" >"$run/latency.json"
  cat "$run/latency.json" >&2
  if [[ $order == asyncops-first ]]; then
    # The peers get the machine to themselves.
    kill -TERM "$dpid" "$w1" "$w2" 2>/dev/null || true
    wait "$dpid" "$w1" "$w2" 2>/dev/null || true
  fi
}

if [[ $order == asyncops-first ]]; then
  run_asyncops
  run_the_peers
else
  run_the_peers
  run_asyncops
fi

# ---------------------------------------------------------------- report
bull_e2e=$(peer_field 'bullmq-redis\[window\]' 'e2e=([0-9.]+)/s')
bull_seq_e2e=$(peer_field 'bullmq-redis' 'e2e=([0-9.]+)/s')
bull_p50=$(peer_field 'bullmq-redis' 'p50=([0-9.]+)ms')
bull_p99=$(peer_field 'bullmq-redis' 'p99=([0-9.]+)ms')
cel_e2e=$(peer_field 'celery-redis' 'e2e=([0-9.]+)/s')
cel_p50=$(peer_field 'celery-redis' 'p50=([0-9.]+)ms')
cel_p99=$(peer_field 'celery-redis' 'p99=([0-9.]+)ms')
mkdir -p "$(dirname "$out")"
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg command "bench/peers.sh $orig_args" --arg loadavg "$loadavg_start" --argjson n "$n" --arg job "$job" --arg order "$order" \
  --argjson in_flight "$in_flight" --argjson lat_rate "$lat_rate" --argjson lat_seconds "$lat_seconds" \
  --argjson e2e "$e2e_rate" --argjson cpu_us "$cpu_us" --argjson cpu_us_daemon "$cpu_us_daemon" \
  --argjson cpu_us_workers "$cpu_us_workers" --argjson commits_per_op "$commits_per_op" \
  --slurpfile lat "$run/latency.json" \
  --argjson bull_e2e "$bull_e2e" --argjson bull_seq_e2e "$bull_seq_e2e" --argjson bull_p50 "$bull_p50" \
  --argjson bull_p99 "$bull_p99" --argjson cel_e2e "$cel_e2e" --argjson cel_p50 "$cel_p50" --argjson cel_p99 "$cel_p99" \
  --rawfile peers "$( [[ -f $run/peers.txt ]] && echo "$run/peers.txt" || echo /dev/null)" \
  '{run:{date:$date, commit:$commit, command:$command, nproc:'"$(nproc)"', loadavg_start:$loadavg,
         n:$n, in_flight:$in_flight, lat_rate:$lat_rate, lat_seconds:$lat_seconds, job:$job, order:$order},
    asyncops:{e2e_rate_per_s:$e2e, cpu_us_per_op_daemon_and_workers:$cpu_us,
              cpu_us_per_op_daemon:$cpu_us_daemon, cpu_us_per_op_workers:$cpu_us_workers,
              store_commits_per_op:$commits_per_op,
              latency:$lat[0]},
    bullmq:{e2e_rate_per_s_window:$bull_e2e, e2e_rate_per_s_sequential:$bull_seq_e2e,
            latency_p50_ms:$bull_p50, latency_p99_ms:$bull_p99},
    celery:{e2e_rate_per_s:$cel_e2e, latency_p50_ms:$cel_p50, latency_p99_ms:$cel_p99},
    peers_summary:$peers}' >"$out"

f() { jq -r "$1 | if . == null then \"n/a\" elif type == \"number\" then (. * 100 | round / 100 | tostring) else tostring end" "$out"; }
ratio() { jq -r "if ($1) == null or ($2) == null or ($2) == 0 then \"n/a\" else (($1) / ($2) * 100 | round / 100 | tostring) + \"x\" end" "$out"; }
verdict() { jq -r "if ($1) == null then \"\" elif ($1) $2 then \"meets\" else \"MISSES\" end" "$out"; }
{
  echo
  echo "asyncops next to the peers, one run  $(f .run.date)  commit $(f .run.commit)"
  echo "machine: $(nproc) cpus; load average at start: $loadavg_start; N=$n; asyncops job: $job ($service service); order: $order"
  printf '%-44s %14s %14s %14s %12s %18s\n' "measure" "asyncops" "BullMQ" "Celery" "vs BullMQ" "issue target"
  printf '%-44s %14s %14s %14s %12s %18s\n' "end-to-end throughput, $in_flight in flight (/s)" \
    "$(f .asyncops.e2e_rate_per_s)" "$(f .bullmq.e2e_rate_per_s_window)" "$(f .celery.e2e_rate_per_s)" \
    "$(ratio .asyncops.e2e_rate_per_s .bullmq.e2e_rate_per_s_window)" \
    ">=2x $(verdict 'if .bullmq.e2e_rate_per_s_window then .asyncops.e2e_rate_per_s / .bullmq.e2e_rate_per_s_window else null end' '>= 2')"
  printf '%-44s %14s %14s %14s %12s %18s\n' "latency at $lat_rate/s, p50 (ms)" \
    "$(f .asyncops.latency.p50_ms)" "$(f .bullmq.latency_p50_ms)" "$(f .celery.latency_p50_ms)" \
    "$(ratio .asyncops.latency.p50_ms .bullmq.latency_p50_ms)" "<=1ms $(verdict .asyncops.latency.p50_ms '<= 1')"
  printf '%-44s %14s %14s %14s %12s %18s\n' "latency at $lat_rate/s, p99 (ms)" \
    "$(f .asyncops.latency.p99_ms)" "$(f .bullmq.latency_p99_ms)" "$(f .celery.latency_p99_ms)" \
    "$(ratio .asyncops.latency.p99_ms .bullmq.latency_p99_ms)" "<=2ms $(verdict .asyncops.latency.p99_ms '<= 2')"
  printf '%-44s %14s\n' "asyncops CPU per op, daemon + workers (us)" "$(f .asyncops.cpu_us_per_op_daemon_and_workers)"
  printf '%-44s %14s\n' "  of which the daemon / the workers (us)" \
    "$(f .asyncops.cpu_us_per_op_daemon) / $(f .asyncops.cpu_us_per_op_workers)"
  printf '%-44s %14s\n' "asyncops store commits per op, end to end" "$(f .asyncops.store_commits_per_op)"
  printf '%-44s %14s\n' "asyncops latency: answered / failed" "$(f .asyncops.latency.ok) / $(f .asyncops.latency.bad)"
  echo "(BullMQ throughput: 'window' variant, $in_flight add() in flight; its latency: sequential 'add' variant."
  echo " Celery: prefork c=2. asyncops throughput: closed loop, $in_flight keep-alive connections, drain polled every 5 ms;"
  echo " latency: latency_probe.py, POST /users with Prefer: wait=5, from each request's due time.)"
} | tee "$out.txt"
echo "JSON: $out"
