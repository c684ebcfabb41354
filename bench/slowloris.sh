#!/usr/bin/env bash
# What slow clients cost a new one (issue 11). See bench/README.md ("Slowloris").
#
#   bench/slowloris.sh [--url URL] [--no-build] [--keep] [--out FILE]
#                      [asyncops-bench-slowloris flags: --conns N --interval S
#                       --probe-rate R --probe-seconds S --connect-window W ...]
#
# Without --url it starts asyncopsd (no workers) on a temp dir, with the fd
# limit raised for the connections, and stops it afterwards. Prints the JSON
# and writes it to bench/results/slowloris.json (or --out).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"
url="" do_build=1 keep=0 out="$here/results/slowloris.json" pass=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) url="${2:?}"; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    --out) out="${2:?}"; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    *) pass+=("$1") ;;
  esac
  shift
done
if [[ $do_build == 1 ]]; then
  bench_configure "$root" "$build"
  nice -n 10 ninja -C "$build" -j2 asyncopsd asyncops-bench-slowloris asyncops-bench-loadgen >/dev/null
fi
tool="$build/bench/asyncops-bench-slowloris"
[[ -x $tool ]] || { echo "slowloris.sh: missing $tool" >&2; exit 2; }

# Both sides hold one fd per connection: raise the soft limit (children
# inherit it), at most to the hard limit.
want=65536
hard="$(ulimit -Hn)"
if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then want="$hard"; fi
ulimit -n "$want"

run="$(mktemp -d /tmp/aosl-XXXXXX)"
dpid=""
cleanup() {
  if [[ -n $dpid ]]; then
    kill -TERM "$dpid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dpid" 2>/dev/null || true
  fi
  if [[ $keep == 1 ]]; then echo "kept $run" >&2; else rm -rf "$run"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z $url ]]; then
  "$build/daemon/asyncopsd" --data-dir "$run" --listen 127.0.0.1:0 --log-level warn >>"$run/daemon.log" 2>&1 &
  dpid=$!
  "$build/bench/asyncops-bench-loadgen" ready --url-file "$run/asyncopsd.url" --timeout 30 --out "$run/ready.json" \
    >/dev/null || { echo "asyncopsd did not become ready" >&2; tail -20 "$run/daemon.log" >&2; exit 1; }
  url=$(jq -r .url "$run/ready.json")
fi
echo "slowloris.sh: target $url, ulimit -n $(ulimit -n)" >&2
mkdir -p "$(dirname "$out")"
spid=""
if [[ -n $dpid ]]; then
  # The daemon's threads and RSS once a second while the tool runs.
  ( while kill -0 "$dpid" 2>/dev/null; do
      awk '/^Threads:/ {t=$2} /^VmRSS:/ {r=$2} END {print t, r}' "/proc/$dpid/status" 2>/dev/null
      sleep 1
    done >"$run/samples.txt" ) &
  spid=$!
fi
"$tool" --url "$url" --out "$out" "${pass[@]}"
if [[ -n $dpid ]]; then
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  alive=true; kill -0 "$dpid" 2>/dev/null || alive=false
  max_threads=$(awk 'BEGIN {m=0} $1 > m {m=$1} END {print m}' "$run/samples.txt")
  max_rss=$(awk 'BEGIN {m=0} $2 > m {m=$2} END {print m}' "$run/samples.txt")
  jq --argjson alive "$alive" --argjson threads "${max_threads:-null}" --argjson rss "${max_rss:-null}" \
    '. + {daemon: {alive_at_end: $alive, max_threads: $threads, max_rss_kib: $rss}}' "$out" >"$out.tmp" \
    && mv "$out.tmp" "$out"
fi
cat "$out"
