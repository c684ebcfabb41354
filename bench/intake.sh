#!/usr/bin/env bash
# Intake with no workers as a share of the bare ceilings, measured in
# alternating rounds. See bench/README.md ("Intake in rounds").
#
#   bench/intake.sh [--rounds R] [--seconds S] [--conns C] [--compare BUILD]
#                   [--out FILE] [--no-build] [--keep]
#
# Each round measures, in an order that rotates from round to round, the
# bare cpp-httplib server, the bare Beast server and asyncopsd with no
# worker (and, with --compare, asyncopsd from a second build directory):
# each a fresh process on a fresh data directory, driven for S seconds
# (default 3) by the load generator's closed loop over C connections
# (default 32). R rounds (default 5). A share is taken within one round,
# where the machine's mood is shared; the figure is the median of the
# rounds' shares, printed with their range.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"
rounds=5 seconds=3 conns=32 compare="" out="" do_build=1 keep=0
usage() { sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="${2:?}"; shift ;;
    --seconds) seconds="${2:?}"; shift ;;
    --conns) conns="${2:?}"; shift ;;
    --compare) compare="${2:?}"; shift ;;
    --out) out="${2:?}"; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    *) echo "intake.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
for n in "$rounds" "$seconds" "$conns"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "intake.sh: --rounds, --seconds and --conns take a positive integer" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "intake.sh: needs jq (apt-get install -y jq)" >&2; exit 2; }
if [[ $do_build == 1 ]]; then
  bench_configure "$root" "$build"
  nice -n 10 ninja -C "$build" -j2 asyncopsd asyncops-bench-loadgen asyncops-bench-ceiling \
    asyncops-bench-beast-ceiling >/dev/null
fi
daemon="$build/daemon/asyncopsd" lg="$build/bench/asyncops-bench-loadgen"
ceiling="$build/bench/asyncops-bench-ceiling" beast="$build/bench/asyncops-bench-beast-ceiling"
contenders=(httplib beast asyncopsd)
if [[ -n $compare ]]; then
  daemon_b="$compare/daemon/asyncopsd"
  [[ -x $daemon_b ]] || { echo "intake.sh: missing $daemon_b" >&2; exit 2; }
  contenders+=(asyncopsd_b)
fi
for b in "$daemon" "$lg" "$ceiling" "$beast"; do
  [[ -x $b ]] || { echo "intake.sh: missing $b (build first, or drop --no-build)" >&2; exit 2; }
done

bench_run_dir aoin

# start NAME DIR: starts one contender on a free port; sets $spid and $surl.
start() {
  local name=$1 dir=$2 url_file
  mkdir -p "$dir"
  case "$name" in
    httplib) "$ceiling" --url-file "$dir/url" --threads $((conns * 2 > 64 ? conns * 2 : 64)) >"$dir/log" 2>&1 &
      url_file="$dir/url" ;;
    beast) "$beast" --url-file "$dir/url" --threads "$(nproc)" >"$dir/log" 2>&1 &
      url_file="$dir/url" ;;
    asyncopsd|asyncopsd_b)
      local bin=$daemon
      [[ $name == asyncopsd_b ]] && bin=$daemon_b
      # --max-backlog lifts the 503 at 50,000 unfinished: no worker runs.
      "$bin" --data-dir "$dir/data" --listen 127.0.0.1:0 --sync normal --log-level warn \
        --max-backlog 100000000 >"$dir/log" 2>&1 &
      url_file="$dir/data/asyncopsd.url" ;;
  esac
  spid=$!
  pids+=("$spid")
  "$lg" ready --url-file "$url_file" --timeout 30 --out "$dir/ready.json" >/dev/null \
    || { echo "intake.sh: $name did not become ready; log:" >&2; tail -20 "$dir/log" >&2; exit 1; }
  surl=$(jq -r .url "$dir/ready.json")
}

log "intake in $rounds rounds of ${seconds}s each: ${contenders[*]}; $conns connections"
loadavg="$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$run/rounds.jsonl"
n=${#contenders[@]}
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    name=${contenders[$(((k + r) % n))]}
    dir="$run/r$r-$name"
    start "$name" "$dir"
    "$lg" closed --url "$surl" --conns "$conns" --duration "$seconds" --tag "n$r" --out "$dir/closed.json"
    cpu=$(cpu_s "$spid")
    stop_pid "$spid"
    rm -rf "$dir/data"  # operations that nothing will run
    jq -c --arg name "$name" --argjson round "$r" --argjson order "$k" --argjson cpu "$cpu" \
      '{round:$round, order:$order, name:$name, rate_per_s:.rate_2xx_per_s, errors:.errors,
        p50_ms:.latency.p50_ms, p99_ms:.latency.p99_ms, server_cpu_s:$cpu,
        server_cpu_us_per_request:(if .accepted_2xx > 0 then $cpu * 1e6 / .accepted_2xx else null end)}' \
      "$dir/closed.json" >>"$run/rounds.jsonl"
    log "round $r: $name $(jq -r .rate_2xx_per_s "$dir/closed.json" | xargs printf '%.0f')/s"
  done
done

summary=$(jq -s --arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg loadavg "$loadavg" --arg compare "$compare" \
  --argjson seconds "$seconds" --argjson conns "$conns" "$bench_jq_median"'
  def of($r; $n): map(select(.round == $r and .name == $n))[0];
  . as $all | ($all | map(.round) | unique) as $rs |
  [$rs[] as $r | {round: $r,
     httplib: of($r; "httplib").rate_per_s, beast: of($r; "beast").rate_per_s,
     asyncopsd: of($r; "asyncopsd").rate_per_s, asyncopsd_b: of($r; "asyncopsd_b").rate_per_s,
     cpu_us: {httplib: of($r; "httplib").server_cpu_us_per_request, beast: of($r; "beast").server_cpu_us_per_request,
              asyncopsd: of($r; "asyncopsd").server_cpu_us_per_request,
              asyncopsd_b: of($r; "asyncopsd_b").server_cpu_us_per_request}}
   | . + {share_httplib: (.asyncopsd / .httplib), share_beast: (.asyncopsd / .beast),
          share_b_httplib: (if .asyncopsd_b then .asyncopsd_b / .httplib else null end),
          share_b_beast: (if .asyncopsd_b then .asyncopsd_b / .beast else null end),
          b_over_a: (if .asyncopsd_b then .asyncopsd_b / .asyncopsd else null end)}] as $per |
  def stat($k): ($per | map(.[$k]) | map(select(. != null))) as $v |
    if ($v | length) == 0 then null
    else {median: ($v | median), min: ($v | min), max: ($v | max),
          rounds_at_least_half: ($v | map(select(. >= 0.5)) | length), rounds: ($v | length)} end;
  def cpu($n): $per | map(.cpu_us[$n]) | map(select(. != null)) | median;
  {tool: "bench/intake.sh", commit: $commit, date: $date, loadavg_start: $loadavg, compare: $compare,
   seconds: $seconds, conns: $conns, rounds: $per, measurements: $all,
   share_of_httplib: stat("share_httplib"), share_of_beast: stat("share_beast"),
   b_share_of_httplib: stat("share_b_httplib"), b_share_of_beast: stat("share_b_beast"),
   b_over_a: stat("b_over_a"),
   median_rate_per_s: {httplib: ($per | map(.httplib) | median), beast: ($per | map(.beast) | median),
                       asyncopsd: ($per | map(.asyncopsd) | median),
                       asyncopsd_b: ($per | map(.asyncopsd_b) | map(select(. != null)) | median)},
   median_server_cpu_us_per_request: {httplib: cpu("httplib"), beast: cpu("beast"),
                                      asyncopsd: cpu("asyncopsd"), asyncopsd_b: cpu("asyncopsd_b")}}' \
  "$run/rounds.jsonl")
if [[ -n $out ]]; then printf '%s\n' "$summary" >"$out"; fi

pct() { jq -r "$1 | if . == null then \"-\" else . * 1000 | round / 10 | tostring + \"%\" end" <<<"$summary"; }
num() { jq -r "$1 | if . == null then \"-\" else . | round | tostring end" <<<"$summary"; }
echo "intake with no workers, $rounds rounds of ${seconds}s, $conns connections (commit $(jq -r .commit <<<"$summary"), load $loadavg)"
printf '%-7s %10s %10s %10s %10s %16s %16s\n' round httplib beast asyncopsd "${compare:+asyncopsd_b}" "share of httplib" "share of Beast"
jq -r '.rounds[] | [.round, (.httplib | round), (.beast | round), (.asyncopsd | round),
  (if .asyncopsd_b then (.asyncopsd_b | round) else "" end),
  (.share_httplib * 1000 | round / 10 | tostring + "%"), (.share_beast * 1000 | round / 10 | tostring + "%")] | join("|")' \
  <<<"$summary" | while IFS='|' read -r a b c d e f g; do
  printf '%-7s %10s %10s %10s %10s %16s %16s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
done
echo "share of the httplib ceiling: median $(pct .share_of_httplib.median), range $(pct .share_of_httplib.min)-$(pct .share_of_httplib.max), $(jq -r '.share_of_httplib | "\(.rounds_at_least_half) of \(.rounds)"' <<<"$summary") rounds >= 50%"
echo "share of the Beast ceiling:   median $(pct .share_of_beast.median), range $(pct .share_of_beast.min)-$(pct .share_of_beast.max), $(jq -r '.share_of_beast | "\(.rounds_at_least_half) of \(.rounds)"' <<<"$summary") rounds >= 50%"
if [[ -n $compare ]]; then
  echo "asyncopsd_b ($compare): share of httplib median $(pct .b_share_of_httplib.median), of Beast $(pct .b_share_of_beast.median); b/a median $(jq -r '.b_over_a.median * 1000 | round / 1000' <<<"$summary") (range $(jq -r '.b_over_a | "\(.min * 1000 | round / 1000)-\(.max * 1000 | round / 1000)"' <<<"$summary"))"
fi
echo "server CPU per request (median, us): httplib $(num .median_server_cpu_us_per_request.httplib), Beast $(num .median_server_cpu_us_per_request.beast), asyncopsd $(num .median_server_cpu_us_per_request.asyncopsd)${compare:+, asyncopsd_b $(num .median_server_cpu_us_per_request.asyncopsd_b)}"
