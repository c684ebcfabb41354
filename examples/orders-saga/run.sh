#!/usr/bin/env bash
# Runs the orders saga: asyncopsd with routes.json here, and one
# asyncops-worker per demo service (inventory, payments, orders), all on one
# data dir. Prints the daemon's URL, then waits; Ctrl-C stops them all.
#
#   examples/orders-saga/run.sh [DATA_DIR]
#
# The programs are $ASYNCOPSD and $ASYNCOPS_WORKER when set, else taken from
# $ASYNCOPS_BIN_DIR, else from PATH, else from the build tree (build/daemon,
# build/workers). LISTEN (default 127.0.0.1:8080; port 0: any free port) is
# where the daemon serves HTTP.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-${ASYNCOPS_DATA_DIR:-$(mktemp -d /tmp/orders-saga-XXXXXX)}}
listen=${LISTEN:-127.0.0.1:8080}

find_program() {
  if [ -n "${ASYNCOPS_BIN_DIR:-}" ]; then echo "$ASYNCOPS_BIN_DIR/$1"; return; fi
  if command -v "$1" >/dev/null; then command -v "$1"; return; fi
  for dir in "$here/../../build/daemon" "$here/../../build/workers"; do
    if [ -x "$dir/$1" ]; then echo "$dir/$1"; return; fi
  done
  echo "run.sh: cannot find $1 (set ASYNCOPS_BIN_DIR)" >&2
  exit 1
}
daemon_bin=${ASYNCOPSD:-$(find_program asyncopsd)}
worker_bin=${ASYNCOPS_WORKER:-$(find_program asyncops-worker)}

mkdir -p "$data"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop EXIT
trap 'exit 130' INT TERM

rm -f "$data/asyncopsd.url"
"$daemon_bin" --data-dir "$data" --listen "$listen" --routes "$here/routes.json" >>"$data/asyncopsd.log" 2>&1 &
pids+=($!)
for service in inventory payments orders; do
  "$worker_bin" --data-dir "$data" --service "$service" >>"$data/$service.log" 2>&1 &
  pids+=($!)
done

# The daemon writes its URL once it serves.
for _ in $(seq 1 300); do
  if [ -s "$data/asyncopsd.url" ]; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "run.sh: asyncopsd exited; see $data/asyncopsd.log" >&2
    tail -n 5 "$data/asyncopsd.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$data/asyncopsd.url" ]; then
  echo "run.sh: asyncopsd did not start in 30 s; see $data/asyncopsd.log" >&2
  exit 1
fi
echo "data dir: $data (logs: asyncopsd.log, inventory.log, payments.log, orders.log)"
cat "$data/asyncopsd.url"
wait -n "${pids[@]}" || true
echo "run.sh: a process exited; stopping the others" >&2
