# Sourced by the bench/*.sh scripts (not run on its own).
#
# bench_run_dir PREFIX [STOP_TENTHS]: makes a short temp dir in $run (ipc://
# endpoints inside it must stay under 107 bytes), starts an empty $pids, and
# on exit stops every pid in $pids (SIGTERM, then SIGKILL after STOP_TENTHS
# tenths of a second, default 50) and removes $run, unless keep=1.
bench_run_dir() {
  run="$(mktemp -d "/tmp/$1-XXXXXX")"
  pids=()
  bench_stop_tenths="${2:-50}"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq "$bench_stop_tenths"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ ${keep:-0} == 1 ]]; then echo "kept $run" >&2; else rm -rf "$run"; fi
}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# cpu_s PID: the CPU seconds (user + system) a process of ours has used so
# far; null when it is gone.
cpu_s() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / hz}' || echo null; }

# A jq definition to put before a jq program: median of an array of
# numbers (the mean of the middle two for an even count; null when empty).
bench_jq_median='def median: sort | if length == 0 then null
  elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;'

# stop_pid PID [TENTHS]: stops one process we started: SIGTERM, then SIGKILL
# after TENTHS tenths of a second (default 300), and drops it from $pids.
stop_pid() {
  local p=$1 tenths=${2:-300}
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq "$tenths"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  local keep_pids=() q
  for q in "${pids[@]}"; do [[ $q == "$p" ]] || keep_pids+=("$q"); done
  pids=("${keep_pids[@]}")
}

# bench_configure ROOT BUILD: makes BUILD a Ninja build of ROOT with the
# bench tools on. A new BUILD is configured RelWithDebInfo; an existing one
# keeps its settings, except that the bench tools are turned on when it was
# made without them (.ci/build leaves them out, to keep CI short).
bench_configure() {
  if [[ ! -f "$2/build.ninja" ]]; then
    cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASYNCOPS_BUILD_BENCH=ON >/dev/null
  elif grep -q '^ASYNCOPS_BUILD_BENCH:BOOL=OFF' "$2/CMakeCache.txt" 2>/dev/null; then
    cmake -S "$1" -B "$2" -DASYNCOPS_BUILD_BENCH=ON >/dev/null
  fi
}

# bench_peers_dir ROOT NAME: sets $peers_dir to $PEERS_DIR, or else to
# ../shared/peers next to ROOT (or next to the directory holding the
# worktrees); exits 2, naming the script NAME, when it has no
# latency_probe.py.
bench_peers_dir() {
  peers_dir="${PEERS_DIR:-}"
  if [[ -z $peers_dir ]]; then
    local d
    for d in "$1/../shared/peers" "$1/../../shared/peers"; do
      if [[ -f $d/latency_probe.py ]]; then peers_dir="$(cd "$d" && pwd)"; break; fi
    done
  fi
  [[ -n $peers_dir && -f $peers_dir/latency_probe.py ]] || {
    echo "$2: cannot find ../shared/peers (set PEERS_DIR)" >&2; exit 2; }
}

# bench_binaries ROOT BUILD DO_BUILD NAME: builds asyncopsd, the worker and
# the load generator into BUILD (unless DO_BUILD is 0), and sets $daemon,
# $worker and $lg; exits 2, naming the script NAME, when one is missing.
bench_binaries() {
  if [[ $3 == 1 ]]; then
    bench_configure "$1" "$2"
    nice -n 10 ninja -C "$2" -j2 asyncopsd asyncops-worker asyncops-bench-loadgen >/dev/null
  fi
  daemon="$2/daemon/asyncopsd" worker="$2/workers/asyncops-worker" lg="$2/bench/asyncops-bench-loadgen"
  local b
  for b in "$daemon" "$worker" "$lg"; do
    [[ -x $b ]] || { echo "$4: missing $b (build first, or drop --no-build)" >&2; exit 2; }
  done
}

# bench_start_users DATA: starts asyncopsd on a free port with DATA as its
# data dir, then two asyncops-worker --service users, logging to
# $run/daemon.log and $run/worker{1,2}.log; adds their pids to $pids and
# sets $url. Exits 1 when the daemon does not become ready.
bench_start_users() {
  "$daemon" --data-dir "$1" --listen 127.0.0.1:0 --log-level warn 2>"$run/daemon.log" &
  pids+=("$!")
  "$lg" ready --url-file "$1/asyncopsd.url" --timeout 30 --out "$run/ready.json" >/dev/null \
    || { echo "asyncopsd did not become ready" >&2; tail -20 "$run/daemon.log" >&2; exit 1; }
  url=$(jq -r .url "$run/ready.json")
  local w
  for w in 1 2; do
    "$worker" --data-dir "$1" --service users --log-level warn 2>"$run/worker$w.log" &
    pids+=("$!")
  done
}
