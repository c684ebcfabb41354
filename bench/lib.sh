# Sourced by bench/run.sh, peers.sh and profile.sh (not run on its own).
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
