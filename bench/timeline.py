#!/usr/bin/env python3
"""Where an operation's end-to-end time goes, step by step.

Reads the `timeline <us> <step> <request id>` lines that asyncopsd and
asyncops-worker write with ASYNCOPS_TIMELINE=1 (shared/timeline.h), from
the log files given, and prints, for the last --last operations that went
all the way (accept to wait_answered), the time between consecutive steps
(p50 / p90 / p99, microseconds), the total, and which step was the longest
in each of the slowest 1 %. Optional --json FILE writes the same figures.

Usage: timeline.py [--last N] [--json FILE] LOG...
"""
import argparse, collections, json, sys

STEPS = ["request_read", "accept", "accept_committed", "command_sent", "command_received", "claim_sent", "grant_sent",
         "grant_received", "started_without_claim", "processing_published", "processing_received", "processing_committed",
         "outcome_published", "outcome_received", "outcome_committed", "wait_answered",
         "response_written"]

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--last", type=int, default=2000)
    ap.add_argument("--json")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    if a.last < 1:
        sys.exit("timeline.py: --last must be 1 or more")
    ops = collections.defaultdict(dict)
    for path in a.logs:
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) != 4 or parts[0] != "timeline":
                    continue
                _, us, step, rid = parts
                ops[rid].setdefault(step, int(us))  # the first time: a redelivery does not move it
    done = [o for o in ops.values() if "accept" in o and "wait_answered" in o]
    done.sort(key=lambda o: o["accept"])
    done = done[-a.last:]
    if not done:
        sys.exit("timeline.py: no operation went from accept to wait_answered (ASYNCOPS_TIMELINE=1 set?)")
    out = {"operations": len(done), "steps": []}
    print(f"{len(done)} operations, microseconds between consecutive steps")
    print(f"{'from':>22} -> {'to':<22} {'p50':>7} {'p90':>7} {'p99':>7}")
    # Between consecutive steps of each operation's own path: a command
    # started without a claim has no claim_sent, grant_sent or grant_received.
    gaps = collections.defaultdict(list)
    for o in done:
        path = [s for s in STEPS if s in o]
        for a_, b in zip(path, path[1:]):
            gaps[(a_, b)].append(o[b] - o[a_])
    pairs = sorted(gaps, key=lambda p: (STEPS.index(p[0]), STEPS.index(p[1])))
    for a_, b in pairs:
        ds = gaps[(a_, b)]
        row = {"from": a_, "to": b, "p50_us": pct(ds, 50), "p90_us": pct(ds, 90), "p99_us": pct(ds, 99), "n": len(ds)}
        out["steps"].append(row)
        print(f"{a_:>22} -> {b:<22} {row['p50_us']:>7} {row['p90_us']:>7} {row['p99_us']:>7}  n={len(ds)}")
    tot = [o["wait_answered"] - o["accept"] for o in done]
    out["total"] = {"p50_us": pct(tot, 50), "p90_us": pct(tot, 90), "p99_us": pct(tot, 99), "max_us": max(tot)}
    print(f"{'accept':>22} -> {'wait_answered':<22} {out['total']['p50_us']:>7} {out['total']['p90_us']:>7} "
          f"{out['total']['p99_us']:>7}  (max {out['total']['max_us']})")
    # The whole time in the daemon, from the request read to the answer's
    # write (asyncopsd since the steps were added).
    whole = [o["response_written"] - o["request_read"] for o in done if "request_read" in o and "response_written" in o]
    if whole:
        out["total_server"] = {"p50_us": pct(whole, 50), "p90_us": pct(whole, 90), "p99_us": pct(whole, 99),
                               "max_us": max(whole), "n": len(whole)}
        t = out["total_server"]
        print(f"{'request_read':>22} -> {'response_written':<22} {t['p50_us']:>7} {t['p90_us']:>7} {t['p99_us']:>7}"
              f"  (max {t['max_us']})")
    slowest = sorted(done, key=lambda o: o["wait_answered"] - o["accept"])[-max(1, len(done) // 100):]
    longest = collections.Counter()
    for o in slowest:
        path = [s for s in STEPS if s in o]
        longest[max((o[b] - o[a_], f"{a_} -> {b}") for a_, b in zip(path, path[1:]))[1]] += 1
    out["slowest_1pct_longest_step"] = dict(longest.most_common())
    print(f"the slowest {len(slowest)}: their longest step")
    for k, v in longest.most_common():
        print(f"  {v:4}  {k}")
    # Inside the worker, in parallel with the daemon's processing_received and
    # processing_committed: its transaction (the dedupe record and the
    # handler's writes), marked for the transaction's first command.
    worker_steps = ["processing_published", "handling_begun", "handled", "handling_committed", "outcome_published"]
    inside = [o for o in done if all(s in o for s in worker_steps)]
    if inside:
        print(f"inside the worker ({len(inside)} operations first in their transaction)")
        out["worker_steps"] = []
        for a_, b in zip(worker_steps, worker_steps[1:]):
            ds = [o[b] - o[a_] for o in inside]
            row = {"from": a_, "to": b, "p50_us": pct(ds, 50), "p90_us": pct(ds, 90), "p99_us": pct(ds, 99),
                   "n": len(ds)}
            out["worker_steps"].append(row)
            print(f"{a_:>22} -> {b:<22} {row['p50_us']:>7} {row['p90_us']:>7} {row['p99_us']:>7}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)

main()
