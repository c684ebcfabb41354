#!/usr/bin/env bash
# systemd_verify.sh SOURCE_DIR ASYNCOPSD ASYNCOPS_WORKER MANPATH
# The shipped units, with ExecStart pointing at the built binaries, pass
# `systemd-analyze verify` without a single message, and their
# Documentation= pages resolve in MANPATH (the build tree's man/). Exit 77
# (skipped) only when systemd-analyze is missing or cannot run here at all.
set -euo pipefail
src=$1 daemon=$2 worker=$3 manpath=$4
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIPPED: systemd-analyze not found (apt-get install systemd; .ci/deps lists it)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Can it run here? A unit that is valid everywhere must verify.
printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' > "$tmp/probe.service"
if ! probe=$(systemd-analyze verify --man=no "$tmp/probe.service" 2>&1) || [ -n "$probe" ]; then
  echo "SKIPPED: systemd-analyze verify cannot run here: $probe"
  exit 77
fi
rm "$tmp/probe.service"
sed "s|@ASYNCOPSD_BIN@|$daemon|" "$src/packaging/systemd/asyncopsd.service.in" > "$tmp/asyncopsd.service"
sed "s|@ASYNCOPS_WORKER_BIN@|$worker|" "$src/packaging/systemd/asyncops-worker@.service.in" > "$tmp/asyncops-worker@.service"
status=0
if grep -n '@[A-Z_]*@' "$tmp"/*.service; then
  echo "FAIL: a placeholder was left unreplaced"
  status=1
fi
if ! out=$(MANPATH="$manpath" systemd-analyze verify "$tmp/asyncopsd.service" "$tmp/asyncops-worker@.service" 2>&1); then
  echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1
fi
if [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify warned:"; echo "$out"; exit 1
fi
# What the units promise (asyncopsd(8), SERVICE).
expect() {  # FILE LINE
  grep -qxF "$2" "$tmp/$1" || { echo "FAIL: $1 lacks '$2'"; status=1; }
}
expect asyncopsd.service "Type=notify"
expect asyncopsd.service "StateDirectory=asyncops"
for f in asyncopsd.service asyncops-worker@.service; do
  for line in "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes" "ProtectHome=yes" \
              "Environment=ASYNCOPS_DATA_DIR=/var/lib/asyncops" "User=asyncops"; do
    expect "$f" "$line"
  done
done
expect asyncops-worker@.service "ExecStart=$worker --service %i"
[ $status -eq 0 ] && echo "ok: asyncopsd.service and asyncops-worker@.service verify clean"
exit $status
