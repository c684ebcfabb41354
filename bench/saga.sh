#!/usr/bin/env bash
# What a saga costs next to a plain operation, in one run. See bench/README.md.
#
#   bench/saga.sh [--rate R] [--duration S] [--conns N] [--rounds K] [--out FILE] [--keep] [--no-build]
#
# One asyncopsd on a temp dir serves POST /users (one command to the users
# service) and POST /orders (the three-step saga of examples/orders-saga:
# reserve, charge, create, on the built-in demo services), with one worker
# per service. For each kind, alternating K rounds (default 2):
#   (1) end-to-end rate: --conns connections closed-loop for --duration s,
#       then until every operation is terminal;
#   (2) end-to-end latency at --rate/s (default 100) open-loop for
#       --duration s: created_at to the terminal state, as the store has it;
#   CPU per operation of the daemon and the workers over the whole run.
# Prints a table with the saga/plain ratios; JSON to bench/results/saga.json.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"

orig_args="$*"
rate=100 duration=10 conns=32 rounds=2 keep=0 do_build=1
out="$here/results/saga.json"
usage() { sed -n '4,4p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rate) rate="${2:?}"; shift ;;
    --duration) duration="${2:?}"; shift ;;
    --conns) conns="${2:?}"; shift ;;
    --rounds) rounds="${2:?}"; shift ;;
    --out) out="${2:?}"; shift ;;
    --keep) keep=1 ;;
    --no-build) do_build=0 ;;
    -h|--help) usage ;;
    *) echo "saga.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
command -v jq >/dev/null || { echo "saga.sh: needs jq (apt-get install -y jq)" >&2; exit 2; }

bench_binaries "$root" "$build" "$do_build" saga.sh

bench_run_dir aosaga
data="$run/data"
mkdir -p "$data"

# The users routes (the daemon's default) and the orders saga, in one table.
jq -n --slurpfile saga "$root/examples/orders-saga/routes.json" '{routes: ([
  {method: "POST", path: "/users", command: "create_user", service: "users", resource: "/users/{id}",
   body: {email: {type: "string", required: true}, name: {type: "string", required: true}}}
] + $saga[0].routes)}' >"$run/routes.json"

"$daemon" --data-dir "$data" --listen 127.0.0.1:0 --routes "$run/routes.json" --log-level warn >"$run/daemon.log" 2>&1 &
dpid=$!; pids+=("$dpid")
"$lg" ready --url-file "$data/asyncopsd.url" --timeout 30 --out "$run/ready.json" >/dev/null \
  || { echo "asyncopsd did not become ready; log:" >&2; tail -20 "$run/daemon.log" >&2; exit 1; }
url=$(jq -r .url "$run/ready.json")
declare -A wpid
for s in users inventory payments orders; do
  "$worker" --data-dir "$data" --service "$s" --log-level warn >"$run/worker.$s.log" 2>&1 &
  wpid[$s]=$!; pids+=("$!")
done

order='{"sku":"bench","qty":1,"card":"4000000000000001"}'
path_of() { [[ $1 == plain ]] && echo /users || echo /orders; }
body_args() { [[ $1 == plain ]] || printf '%s\n' --body "$order"; }
drain() { "$lg" drain --url "$url" --timeout 300 --poll-ms 5 --out "$1" || { echo "not all terminal in 300 s" >&2; exit 1; }; }

# Warm-up: every worker connected and the tracker subscribed.
for kind in plain saga; do
  mapfile -t extra < <(body_args "$kind")
  "$lg" closed --url "$url" --conns 4 --requests 200 --path "$(path_of "$kind")" "${extra[@]}" --out "$run/warm.$kind.json"
done
drain "$run/warm.drain.json"

declare -A cpu0
for p in "$dpid" "${wpid[@]}"; do cpu0[$p]=$(cpu_s "$p"); done
declare -A ops_count=([plain]=0 [saga]=0)

for round in $(seq "$rounds"); do
  for kind in plain saga; do
    mapfile -t extra < <(body_args "$kind")
    p=$(path_of "$kind")
    log "round $round, $kind ($p): closed loop, $conns connections, ${duration}s"
    "$lg" closed --url "$url" --conns "$conns" --duration "$duration" --path "$p" "${extra[@]}" \
      --out "$run/$kind.$round.closed.json"
    drain "$run/$kind.$round.closed.drain.json"
    log "round $round, $kind: open loop at $rate/s for ${duration}s"
    "$lg" open --url "$url" --conns "$conns" --rate "$rate" --duration "$duration" --grace 10 --path "$p" "${extra[@]}" \
      --out "$run/$kind.$round.open.json"
    drain "$run/$kind.$round.open.drain.json"
    "$lg" ops --url "$url" --since-ms "$(jq .start_ms "$run/$kind.$round.open.json")" \
      --out "$run/$kind.$round.open.ops.json"
    n=$(jq -s 'map(.accepted_2xx) | add' "$run/$kind.$round.closed.json" "$run/$kind.$round.open.json")
    ops_count[$kind]=$(( ${ops_count[$kind]} + n ))
  done
done

cpu_total=0
for p in "$dpid" "${wpid[@]}"; do cpu_total=$(jq -n "$cpu_total + $(cpu_s "$p") - ${cpu0[$p]}"); done
cpu_d=$(jq -n "$(cpu_s "$dpid") - ${cpu0[$dpid]}")

# One JSON document: per kind and round, the end-to-end rate and latency.
jq -n --arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg command "bench/saga.sh $orig_args" --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --argjson rate "$rate" --argjson conns "$conns" --argjson rounds "$rounds" \
  --argjson cpu_total "$cpu_total" --argjson cpu_daemon "$cpu_d" \
  --argjson n_plain "${ops_count[plain]}" --argjson n_saga "${ops_count[saga]}" \
  --slurpfile files <(for kind in plain saga; do for r in $(seq "$rounds"); do
      jq -n --arg kind "$kind" --argjson round "$r" \
        --slurpfile c "$run/$kind.$r.closed.json" --slurpfile cd "$run/$kind.$r.closed.drain.json" \
        --slurpfile o "$run/$kind.$r.open.ops.json" \
        '{kind: $kind, round: $round,
          e2e_rate: ($c[0].accepted_2xx / (($cd[0].drained_ms - $c[0].start_ms) / 1000)),
          open: $o[0]}'
    done; done) \
  '{date: (now | todate), commit: $commit, command: $command, loadavg_end: $loadavg, rate: $rate, conns: $conns,
    rounds: $rounds, runs: $files,
    cpu: {all_s: $cpu_total, daemon_s: $cpu_daemon, plain_ops: $n_plain, saga_ops: $n_saga,
          note: "the daemon and all four workers over every timed phase, both kinds together"}}' >"$out"

# The table: the median over rounds of each figure, and saga / plain.
jq -r '
  def med: sort | if length == 0 then null else .[(length / 2 | floor)] end;
  def fig(k; f): [.runs[] | select(.kind == k) | f] | med;
  def row(name; f): [name, (fig("plain"; f)), (fig("saga"; f))] as [$n, $p, $s]
    | "\($n)\t\($p | if . == null then "-" else (. * 100 | round / 100 | tostring) end)\t\($s | if . == null then "-" else (. * 100 | round / 100 | tostring) end)\t\(if $p and $s and $p != 0 then ($s / $p * 100 | round / 100 | tostring) + "x" else "-" end)";
  "figure\tplain (POST /users)\tsaga (POST /orders, 3 steps)\tsaga/plain",
  row("end-to-end rate, ops/s"; .e2e_rate),
  row("e2e latency p50 at \(.rate)/s, ms"; .open.latency.p50_ms // .open.e2e.p50_ms // .open.p50_ms),
  row("e2e latency p99 at \(.rate)/s, ms"; .open.latency.p99_ms // .open.e2e.p99_ms // .open.p99_ms),
  "CPU, daemon + 4 workers, all phases\t\(.cpu.all_s * 100 | round / 100) s for \(.cpu.plain_ops + .cpu.saga_ops) operations (\(.cpu.saga_ops) sagas)"
' "$out" | column -t -s $'\t'
log "JSON: $out"
