#!/usr/bin/env bash
# The fault-injection soak in one command (issue 15). See bench/README.md.
#
#   bench/soak/run.sh [--no-build] [soak.py options...]
#
# Builds asyncopsd and asyncops-worker into build/ (or $ASYNCOPS_BUILD_DIR),
# then runs bench/soak/soak.py against them: by default 20,000 requests at
# 50/s with 3 workers, --lease 2s, 12 faults a minute (kill -9, SIGSTOP and
# SIGCONT of workers and of the daemon). Prints a summary; writes JSON to
# bench/results/soak-latest.json unless --out is given. Exit status 1 when an
# invariant broke (lost, stuck, double effect, contradiction, mismatch).
# `bench/soak/run.sh --help` lists every option.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"
build="${ASYNCOPS_BUILD_DIR:-$root/build}"

do_build=1
args=()
has_out=0
for a in "$@"; do
  case "$a" in
    --no-build) do_build=0 ;;
    --out|--out=*) has_out=1; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
command -v python3 >/dev/null || { echo "run.sh: needs python3" >&2; exit 2; }

if [[ $do_build == 1 ]]; then
  bench_configure "$root" "$build"
  nice -n 10 ninja -C "$build" -j2 asyncopsd asyncops-worker >/dev/null
fi
daemon="$build/daemon/asyncopsd"
worker="$build/workers/asyncops-worker"
for b in "$daemon" "$worker"; do
  [[ -x $b ]] || { echo "run.sh: missing $b (build first, or drop --no-build)" >&2; exit 2; }
done
if [[ $has_out == 0 ]]; then args+=(--out "$root/bench/results/soak-latest.json"); fi

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "soak: commit $commit, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
export ASYNCOPS_SOAK_COMMIT="$commit"
exec python3 "$here/soak.py" --daemon "$daemon" --worker "$worker" "${args[@]}"
