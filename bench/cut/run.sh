#!/usr/bin/env bash
# bench/cut: a worker's link cut without being closed, under load (issue 18).
#
# One daemon on tcp:// endpoints and three users workers, each with its own
# data dir (its own users.db: three "hosts"), each reaching the daemon only
# through its own cut_proxy (tests/tools/tcp_proxy.h). N creates go in at
# RATE/s (open loop); CUT_AT s in, worker 1's proxy stops forwarding for
# CUT_FOR s while keeping both sockets open; then the load drains and the
# run waits SETTLE s more for anything late. It then counts, from the
# daemon's store and the three users.db files:
#   lost     202s with no operation, or a completed operation whose user is in no db
#   stuck    operations not terminal at the end
#   doubles  users created in more than one db (one create, two effects)
#   late     asyncops_events_late_total (outcomes from attempts that lost the lease)
#   redelivered ops: those sent into the dead link; for each, first dispatch ->
#            terminal, against --lease + 2 s
#
#   bench/cut/run.sh [OUTDIR]
# Env: BUILD (tools: loadgen, cut_proxy; default ./build), DAEMON, WORKER
# (binaries under test; default from BUILD), N (3000), RATE (70), CUT_AT (10),
# CUT_FOR (20), LEASE (3s), SETTLE (15), LABEL (a name for the summary).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DAEMON=${DAEMON:-$BUILD/daemon/asyncopsd}
WORKER=${WORKER:-$BUILD/workers/asyncops-worker}
LOADGEN=$BUILD/bench/asyncops-bench-loadgen
PROXY=$BUILD/tests/cut_proxy
N=${N:-3000}
RATE=${RATE:-70}
CUT_AT=${CUT_AT:-10}
CUT_FOR=${CUT_FOR:-20}
LEASE=${LEASE:-3s}
SETTLE=${SETTLE:-15}
LABEL=${LABEL:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
OUT=${1:-$ROOT/bench/results/cut-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
D=$(mktemp -d /tmp/aocut.XXXXXX)
if [ ! -x "$LOADGEN" ]; then  # a build made by .ci/build has no bench tools
  # shellcheck source=bench/lib.sh
  source "$ROOT/bench/lib.sh"
  bench_configure "$ROOT" "$BUILD"
  ninja -C "$BUILD" -j2 asyncops-bench-loadgen >/dev/null
fi
for b in "$DAEMON" "$WORKER" "$LOADGEN" "$PROXY"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 2; }; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

E=$(free_port); C=$(free_port); K=$(free_port)
"$DAEMON" --data-dir "$D/daemon" --listen 127.0.0.1:0 --events "tcp://127.0.0.1:$E" --dispatch "tcp://127.0.0.1:$C" \
  --control "tcp://127.0.0.1:$K" --lease "$LEASE" --max-backlog 100000 >"$OUT/daemon.log" 2>&1 &
PIDS+=($!)
"$LOADGEN" ready --url-file "$D/daemon/asyncopsd.url" --timeout 30 >/dev/null
URL=$(head -1 "$D/daemon/asyncopsd.url")

declare -A PROXY_PID
for w in 1 2 3; do
  pe=$(free_port); pc=$(free_port); pk=$(free_port)
  "$PROXY" "$pe:127.0.0.1:$E" "$pc:127.0.0.1:$C" "$pk:127.0.0.1:$K" >"$OUT/proxy$w.log" 2>&1 &
  PROXY_PID[$w]=$!
  PIDS+=($!)
  for _ in $(seq 100); do grep -q ready "$OUT/proxy$w.log" && break; sleep 0.05; done
  "$WORKER" --service users --data-dir "$D/w$w" --id "w$w" --events "tcp://127.0.0.1:$pe" \
    --commands "tcp://127.0.0.1:$pc" --control "tcp://127.0.0.1:$pk" >"$OUT/worker$w.log" 2>&1 &
  PIDS+=($!)
done
# Every worker connected: three live in GET /workers.
for _ in $(seq 200); do
  [ "$(curl -s "$URL/workers" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["items"]))' 2>/dev/null)" = 3 ] && break
  sleep 0.1
done

DURATION=$(python3 -c "print($N / $RATE + 0.0001)")
START=$(now_ms)
"$LOADGEN" open --url "$URL" --rate "$RATE" --duration "$DURATION" --conns 16 --out "$OUT/load.json" &
LOAD=$!
sleep "$CUT_AT"
CUT_START=$(now_ms)
kill -USR1 "${PROXY_PID[1]}"
sleep "$CUT_FOR"
CUT_END=$(now_ms)
kill -USR2 "${PROXY_PID[1]}"
wait "$LOAD"
"$LOADGEN" drain --url "$URL" --timeout 120 >"$OUT/drain.json" || true
sleep "$SETTLE"  # anything still queued in the cut link arrives and runs now, if it ever does
curl -s "$URL/metrics" >"$OUT/metrics.txt"

STORE="$D/daemon/asyncops.db"
[ -f "$STORE" ] || STORE=$(ls "$D"/daemon/*.db | head -1)
LEASE_MS=$(python3 -c "
s='$LEASE'; import re; m=re.fullmatch(r'(\d+)(ms|s|m)?', s); n=int(m.group(1)); u=m.group(2) or 's'
print(n if u=='ms' else n*1000 if u=='s' else n*60000)")
python3 - "$STORE" "$D" "$OUT" "$START" "$CUT_START" "$CUT_END" "$LEASE_MS" "$LABEL" <<'PY'
import json, sqlite3, sys
store, d, out, start, cut_start, cut_end, lease_ms, label = sys.argv[1:]
start, cut_start, cut_end, lease_ms = int(start), int(cut_start), int(cut_end), int(lease_ms)
db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
load = json.load(open(f"{out}/load.json"))
ops = db.execute("SELECT seq, id, state, code, resource, attempt FROM operations WHERE name = 'create_user'").fetchall()
hist = {}
for op_seq, kind, at in db.execute("SELECT op_seq, kind, at FROM history"):
    hist.setdefault(op_seq, []).append((kind, at))
users = {}
for w in (1, 2, 3):
    try:
        u = sqlite3.connect(f"file:{d}/w{w}/users.db?mode=ro", uri=True)
        for (uid,) in u.execute("SELECT id FROM users"):
            users.setdefault(uid, []).append(w)
    except sqlite3.Error:
        pass
terminal = {"completed", "rejected", "failed", "canceled"}
stuck = [o for o in ops if o[2] not in terminal]
states = {}
for o in ops:
    states[f"{o[2]}/{o[3]}"] = states.get(f"{o[2]}/{o[3]}", 0) + 1
doubles = [uid for uid, ws in users.items() if len(ws) > 1]
no_effect = [o for o in ops if o[2] == "completed" and o[4].rsplit("/", 1)[-1] not in users]
accepted = load.get("statuses", {}).get("202")
# Operations sent into the dead link: redelivered, first dispatched during
# the cut (or a lease before it). Their delay: first dispatch -> terminal.
delays = []
for o in ops:
    h = sorted(hist.get(o[0], []), key=lambda x: x[1])
    kinds = [k for k, _ in h]
    if "redelivered" not in kinds:
        continue
    first = next((at for k, at in h if k == "dispatched"), None)
    end = next((at for k, at in h if k in terminal), None)
    if first is None or end is None or not (cut_start - lease_ms <= first <= cut_end):
        continue
    delays.append(end - first)
delays.sort()
def pct(p):
    return delays[min(len(delays) - 1, int(p * len(delays)))] if delays else None
metrics = {}
for line in open(f"{out}/metrics.txt"):
    if line.startswith("asyncops_") and " " in line and "{" not in line:
        k, v = line.split()[:2]
        metrics[k] = float(v)
summary = {
    "label": label,
    "planned": load.get("planned"), "answered": load.get("answered"), "accepted_202": accepted,
    "statuses": load.get("statuses"), "operations": len(ops),
    "lost": (accepted or 0) - len(ops) + len(no_effect),
    "states": states, "stuck": len(stuck), "completed_without_effect": len(no_effect),
    "users_total": sum(len(w) for w in users.values()), "users_distinct": len(users),
    "doubles": len(doubles),
    "per_worker_users": {w: sum(1 for ws in users.values() if w in ws) for w in (1, 2, 3)},
    "cut_ms": cut_end - cut_start,
    "redelivered_from_cut": len(delays),
    "their_completion_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": delays[-1] if delays else None},
    "lease_ms": lease_ms, "target_ms": lease_ms + 2000,
    "over_target": sum(1 for x in delays if x > lease_ms + 2000),
    "late_outcomes": metrics.get("asyncops_events_late_total"),
    "events_ignored": metrics.get("asyncops_events_ignored_total"),
    "redeliveries": metrics.get("asyncops_redeliveries_total"),
    "claims_refused": metrics.get("asyncops_claims_refused_total"),
    "worker_connections_lost": metrics.get("asyncops_worker_connections_lost_total"),
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
PY
# When the daemon stopped sending to the cut worker: its log line after the cut.
grep -m1 -E "connection is gone|sent no ready in time" "$OUT/daemon.log" >"$OUT/dropped.txt" || true
echo "cut at $CUT_START ms, restored at $CUT_END ms; results in $OUT"
