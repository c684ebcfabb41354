#!/usr/bin/env python3
"""Fault-injection soak for asyncops (issue 15, "Also"). See bench/README.md.

Starts one asyncopsd and several asyncops-worker processes (users service) on
a temp data dir and a fixed free port, and for a bounded time / number of
operations sends random SIGKILL, SIGSTOP and SIGCONT to them (a killed
process is started again: the daemon on the same data dir and port) while
client threads submit POST /users, PUT /users/{id} and DELETE /users/{id},
each with its own Idempotency-Key. A request whose connection fails, times
out or gets 503/429 is sent again with the same key and body, as a careful
client would. Every accepted operation is followed to its terminal state
with GET /operations/{id}?wait=N.

Afterwards (all processes running again, every operation terminal, the
service database quiet, the workers stopped with SIGTERM) it compares, row
by row:
  claims     every operation's final state and code (GET /operations/{id})
  records    the outcome the worker recorded for it (users.db, table handled)
  service    the users rows (users.db, table users)
  read model GET /users/{id} for every user id seen, and the GET /users pages
and prints a summary; the exit status is 1 if an invariant broke (lost,
stuck, double effect, claim/record or claim/service contradiction,
read-model mismatch), 2 on a usage or setup error, 0 otherwise.

Python 3 standard library only. Every loop is bounded by a deadline.
"""

import argparse
import collections
import ctypes
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# ------------------------------------------------------------------ helpers


def now():
    return time.monotonic()


def parse_duration(text):
    """'2s', '500ms', '1m', or a bare number of seconds -> seconds (float)."""
    t = str(text).strip()
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if t.endswith(suffix) and t[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(t[: -len(suffix)]) * mult
    return float(t)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: a child gets SIGKILL if the soak itself dies, so
    # no daemon or worker outlives it. (The signal also arrives if the thread
    # that forked ends, so all spawns happen on the main thread.)
    _libc.prctl(1, signal.SIGKILL)
    os.setsid()  # Ctrl-C on the terminal reaches the soak, not the children


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


class Counter:
    """Thread-safe named counts."""

    def __init__(self):
        self._lock = threading.Lock()
        self._c = collections.Counter()

    def add(self, key, n=1):
        with self._lock:
            self._c[key] += n

    def get(self, key):
        with self._lock:
            return self._c[key]

    def snapshot(self):
        with self._lock:
            return dict(self._c)


# ------------------------------------------------------------------ processes


class Proc:
    """One child process we own: started, signalled and reaped by pid only."""

    def __init__(self, name, argv, log_path, env):
        self.name, self.argv, self.log_path, self.env = name, argv, log_path, env
        self.popen = None
        self.stopped = False
        self.starts = 0

    def start(self):
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      env=self.env, preexec_fn=_die_with_parent)
        log.close()
        self.stopped = False
        self.starts += 1

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.popen.pid, sig)

    def kill9(self):
        if self.popen is None:
            return
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.stopped = False

    def stop(self):
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        self.signal(signal.SIGCONT)
        self.stopped = False

    def terminate(self, timeout=20):
        """SIGCONT + SIGTERM, then SIGKILL after timeout seconds."""
        if not self.alive():
            return
        self.cont()
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()


# ------------------------------------------------------------------ HTTP


class Http:
    """One keep-alive HTTP/1.1 connection, reopened after any failure."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """-> (status, headers dict lower-cased, body bytes). Raises OSError /
        http.client.HTTPException on a transport failure (the connection is
        then dropped)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self.conn.timeout = timeout
        if self.conn.sock is not None:
            self.conn.sock.settimeout(timeout)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else body.encode()
            h.setdefault("Content-Type", "application/json")
        elif method in ("POST", "PUT", "PATCH"):
            data = b""
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if hdrs.get("connection", "").lower() == "close":
                self.close()
            return r.status, hdrs, payload
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


# ------------------------------------------------------------------ the model


class Request:
    """One logical client request (one Idempotency-Key)."""

    __slots__ = ("seq", "key", "kind", "method", "path", "body", "user_id", "email", "name",
                 "op_ids", "status", "sends", "replays", "accepted_at", "final", "first_terminal",
                 "terminal_at", "follow_404", "problem")

    def __init__(self, seq, key, kind, method, path, body, user_id, email, name):
        self.seq, self.key, self.kind = seq, key, kind
        self.method, self.path, self.body = method, path, body
        self.user_id, self.email, self.name = user_id, email, name
        self.op_ids = []        # distinct operation ids answered for this key, in order
        self.status = None      # the final HTTP status of the submit (None: never answered)
        self.sends = 0
        self.replays = 0
        self.accepted_at = None
        self.final = None       # last operation JSON seen
        self.first_terminal = None  # (state, code) when first seen terminal
        self.terminal_at = None
        self.follow_404 = 0
        self.problem = None


class Soak:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.rng_lock = threading.Lock()
        self.c = Counter()
        self.kills = Counter()
        self.lock = threading.Lock()
        self.requests = []                  # every Request, in submit order
        self.by_op = {}                     # op id -> Request
        self.known_users = []               # user ids of accepted creates
        self.emails = []                    # emails of creates sent
        self.follow_q = collections.deque()
        self.follow_cv = threading.Condition()
        self.inflight = threading.BoundedSemaphore(args.max_inflight)
        self.submitting = True
        self.following = True
        self.next_due = now()
        self.seq = 0
        self.reserved = 0                   # new requests begun (at most --ops)
        self.e2e_ms = []
        self.host = "127.0.0.1"
        self.port = args.port or free_port()
        self.daemon = None
        self.workers = []
        self.run_dir = None
        self.errors = []                    # setup problems
        self.resend_pool = []               # accepted requests to send again later
        self.resubmit_refusals = []         # a resend refused (e.g. 422 idempotency_key_reused)

    # ---------------------------------------------------------- processes

    def setup(self):
        a = self.a
        # Short: ipc:// paths under the data dir must stay below 107 bytes.
        self.run_dir = tempfile.mkdtemp(prefix="aos-", dir="/tmp")
        self.data = os.path.join(self.run_dir, "data")
        os.makedirs(self.data)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCOPS_")}
        env["ASYNCOPS_CONFIG"] = "/dev/null"
        lease_ms = int(parse_duration(a.lease) * 1000)
        hb = max(50, min(1000, lease_ms // 4))
        dargv = [a.daemon, "--data-dir", self.data, "--listen", "%s:%d" % (self.host, self.port),
                 "--lease", a.lease, "--backoff", a.backoff, "--max-attempts", str(a.max_attempts),
                 "--log-level", "warn"] + a.daemon_arg
        self.daemon = Proc("asyncopsd", dargv, os.path.join(self.run_dir, "daemon.log"), env)
        for i in range(a.workers):
            wargv = [a.worker, "--data-dir", self.data, "--service", "users", "--heartbeat-ms", str(hb),
                     "--log-level", "warn"]
            self.workers.append(Proc("worker%d" % (i + 1), wargv,
                                     os.path.join(self.run_dir, "worker%d.log" % (i + 1)), env))
        self.start_daemon()
        for w in self.workers:
            w.start()

    def start_daemon(self, deadline_s=60):
        """Starts asyncopsd and waits for /readyz 200. A restart right after a
        kill may find the port or pid lock still held for a moment: retried
        until the deadline."""
        end = now() + deadline_s
        http_ = Http(self.host, self.port)
        while now() < end:
            if not self.daemon.alive():
                self.daemon.start()
            try:
                st, _, _ = http_.request("GET", "/readyz", timeout=2)
                if st == 200:
                    http_.close()
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)  # poll, bounded by the deadline
        http_.close()
        raise RuntimeError("asyncopsd did not become ready within %ds; see %s" % (deadline_s, self.daemon.log_path))

    def teardown(self):
        for p in self.workers + ([self.daemon] if self.daemon else []):
            try:
                p.terminate(timeout=10)
            except Exception:
                pass

    # ---------------------------------------------------------- chaos

    def chaos(self, end_at):
        """Runs on the main thread (children are forked from it) until end_at
        or until submitting ends. Random faults at --kill-rate per minute."""
        a, rng = self.a, random.Random(self.a.seed + 1)
        rate_per_s = a.kill_rate / 60.0
        pending = []  # (time, action, proc)
        next_fault = now() + (rng.expovariate(rate_per_s) if rate_per_s > 0 else 1e18)
        weights = [("worker_kill9", a.w_worker_kill), ("worker_stop", a.w_worker_stop),
                   ("daemon_kill9", a.w_daemon_kill), ("daemon_stop", a.w_daemon_stop)]
        last_report = now()
        while self.submitting and now() < end_at:
            t = now()
            for item in [p for p in pending if p[0] <= t]:
                pending.remove(item)
                _, action, proc = item
                if action == "cont":
                    proc.cont()
                elif action == "restart":
                    if proc is self.daemon:
                        self.safe_start_daemon()
                    else:
                        proc.start()
            if t >= next_fault:
                next_fault = t + rng.expovariate(rate_per_s)
                self.fault(rng, weights, pending)
            for w in self.workers:  # a worker that died by itself is counted and restarted
                if w.popen is not None and not w.alive() and not any(p[2] is w for p in pending):
                    self.kills.add("worker_died_by_itself")
                    # Its exit status says why: a code of its own, or -N for signal N.
                    print("soak: %s exited by itself with status %s; restarting it (log: %s)"
                          % (w.name, w.popen.returncode, w.log_path), file=sys.stderr, flush=True)
                    w.start()
            if not self.daemon.alive() and not any(p[2] is self.daemon for p in pending):
                self.kills.add("daemon_died_by_itself")
                if self.daemon.popen is not None:
                    print("soak: asyncopsd exited by itself with status %s; restarting it (log: %s)"
                          % (self.daemon.popen.returncode, self.daemon.log_path), file=sys.stderr, flush=True)
                self.safe_start_daemon()
            if t - last_report >= a.progress_s:
                last_report = t
                self.progress()
            time.sleep(0.02)  # the chaos loop's tick
        # Undo every fault: continue stopped processes, start dead ones.
        for _, action, proc in sorted(pending, key=lambda p: p[0]):
            if action == "cont":
                proc.cont()
            elif action == "restart" and proc is not self.daemon:
                proc.start()
        if not self.daemon.alive():
            self.safe_start_daemon()
        for w in self.workers:
            if not w.alive():
                w.start()
            w.cont()
        self.daemon.cont()

    def safe_start_daemon(self):
        try:
            self.start_daemon()
        except RuntimeError as e:
            self.errors.append(str(e))
            self.kills.add("daemon_restart_failed")

    def fault(self, rng, weights, pending):
        a = self.a
        busy = {p[2] for p in pending}
        total = sum(w for _, w in weights)
        if total <= 0:
            return
        x, action = rng.random() * total, weights[-1][0]
        for name, w in weights:
            if x < w:
                action = name
                break
            x -= w
        if action.startswith("worker"):
            free = [w for w in self.workers if w not in busy and w.alive()]
            if not free:
                return
            w = rng.choice(free)
            if action == "worker_kill9":
                w.kill9()
                self.kills.add("worker_kill9")
                pending.append((now() + rng.uniform(0, a.restart_delay_max), "restart", w))
            else:
                w.stop()
                self.kills.add("worker_stop")
                pending.append((now() + rng.uniform(a.min_stop, a.max_stop), "cont", w))
        else:
            if self.daemon in busy or not self.daemon.alive():
                return
            if action == "daemon_kill9":
                self.daemon.kill9()
                self.kills.add("daemon_kill9")
                pending.append((now() + rng.uniform(0, a.restart_delay_max), "restart", self.daemon))
            else:
                self.daemon.stop()
                self.kills.add("daemon_stop")
                pending.append((now() + rng.uniform(0.1, a.max_daemon_stop), "cont", self.daemon))

    def progress(self):
        c, k = self.c.snapshot(), self.kills.snapshot()
        print("[%s] submitted %d accepted %d terminal %d in-flight %d | kills %s" % (
            time.strftime("%H:%M:%S"), c.get("submitted", 0), c.get("accepted", 0), c.get("terminal", 0),
            c.get("accepted", 0) - c.get("terminal", 0),
            " ".join("%s=%d" % kv for kv in sorted(k.items()))), file=sys.stderr, flush=True)

    # ---------------------------------------------------------- clients

    def pick(self, f):
        with self.rng_lock:
            return f(self.rng)

    def next_request(self):
        a = self.a
        with self.lock:
            self.seq += 1
            seq = self.seq
            users = list(self.known_users[-a.hot_users:]) if self.known_users else []
            n_users = len(self.known_users)
        key = "soak-%d-%d" % (a.seed, seq)
        r = self.pick(lambda g: g.random())
        if n_users == 0 or r < a.p_create:
            dup = self.pick(lambda g: g.random()) < a.p_dup_email and self.emails
            if dup:
                with self.lock:
                    email = self.pick(lambda g: g.choice(self.emails))
            else:
                email = "s%d-%d@soak.example.com" % (a.seed, seq)
            name = "c-%d" % seq
            with self.lock:
                self.emails.append(email)
            body = json.dumps({"email": email, "name": name})
            return Request(seq, key, "create", "POST", "/users", body, None, email, name)
        with self.lock:
            hot = self.pick(lambda g: g.random()) < a.p_hot
            uid = self.pick(lambda g: g.choice(users if hot else self.known_users))
        if r < a.p_create + a.p_put:
            name = "p-%d" % seq
            fields = {"name": name}
            email = None
            if self.pick(lambda g: g.random()) < 0.1:
                email = "u%d-%d@soak.example.com" % (a.seed, seq)
                fields["email"] = email
            return Request(seq, key, "put", "PUT", "/users/" + uid, json.dumps(fields), uid, email, name)
        return Request(seq, key, "delete", "DELETE", "/users/" + uid, None, uid, None, None)

    def wait_turn(self):
        """Global pacing at --rate requests per second (0: as fast as the
        in-flight window allows). Falls behind at most one second."""
        if self.a.rate <= 0:
            return
        with self.lock:
            t = now()
            self.next_due = max(self.next_due, t - 1.0)
            due = self.next_due
            self.next_due += 1.0 / self.a.rate
        if due > t:
            time.sleep(due - t)

    def submitter(self, idx, end_at):
        a = self.a
        http_ = Http(self.host, self.port)
        while self.submitting and now() < end_at:
            with self.lock:
                if self.reserved >= a.ops:
                    break
            # The in-flight window: at most --max-inflight accepted, unfinished.
            while not self.inflight.acquire(timeout=0.5):
                if not self.submitting or now() >= end_at:
                    return
            self.wait_turn()
            if self.resend_pool and self.pick(lambda g: g.random()) < a.p_resend:
                # A client unsure whether it was heard sends the same request
                # (same key and body) again, maybe across a daemon restart:
                # it must get the same operation back.
                with self.lock:
                    n = len(self.resend_pool)
                    old = self.resend_pool.pop(self.pick(lambda g: g.randrange(n))) if n else None
                self.inflight.release()
                if old is not None:
                    self.resubmit(http_, old)
                continue
            with self.lock:
                if self.reserved >= a.ops:
                    self.inflight.release()
                    break
                self.reserved += 1
            req = self.next_request()
            with self.lock:
                self.requests.append(req)
            self.c.add("submitted")
            self.c.add("submitted_" + req.kind)
            if not self.submit(http_, req):
                self.inflight.release()
            elif len(self.resend_pool) < 1000 and self.pick(lambda g: g.random()) < a.p_resend:
                with self.lock:
                    self.resend_pool.append(req)
        http_.close()

    def submit(self, http_, req):
        """Sends req until it is answered (not 503/429) or --request-timeout.
        Returns True if an operation was accepted (and is now followed)."""
        a = self.a
        headers = {"Idempotency-Key": req.key}
        deadline = now() + a.request_timeout
        backoff = 0.05
        while True:
            req.sends += 1
            if req.sends > 1:
                self.c.add("resends")
            try:
                st, h, body = http_.request(req.method, req.path, req.body, headers, timeout=a.http_timeout)
            except (OSError, http.client.HTTPException):
                st, h, body = None, {}, b""
                self.c.add("transport_errors")
            if st in (200, 202):
                try:
                    op = json.loads(body)
                    op_id = op["id"]
                except (ValueError, KeyError, TypeError):
                    req.status = st
                    req.problem = "unparsable %d body: %r" % (st, body[:200])
                    self.c.add("bad_answers")
                    return False
                if h.get("idempotent-replayed") == "true":
                    req.replays += 1
                    self.c.add("replays")
                with self.lock:
                    if op_id not in req.op_ids:
                        req.op_ids.append(op_id)
                    self.by_op[op_id] = req
                    if req.kind == "create" and req.user_id is None:
                        res = h.get("x-resource", "")
                        if res.startswith("/users/"):
                            req.user_id = res[len("/users/"):]
                            self.known_users.append(req.user_id)
                # A retry after a lost answer must get the same operation.
                if req.accepted_at is None:
                    req.accepted_at = now()
                    req.status = st
                    self.c.add("accepted")
                    self.enqueue_follow(req, op_id)
                    return True
                return False
            if st in (503, 429) or st is None:
                if st is not None:
                    self.c.add("answered_%d" % st)
                if now() >= deadline:
                    req.status = st
                    self.c.add("gave_up")
                    return False
                retry_after = h.get("retry-after")
                pause = backoff
                if retry_after and retry_after.isdigit():
                    pause = min(float(retry_after), 2.0)
                time.sleep(pause * self.pick(lambda g: g.uniform(0.5, 1.0)))
                backoff = min(backoff * 2, 1.0)
                continue
            req.status = st
            try:
                req.problem = json.loads(body).get("code")
            except (ValueError, AttributeError):
                req.problem = body[:200].decode("utf-8", "replace")
            self.c.add("refused_%d_%s" % (st, req.problem))
            return False

    def resubmit(self, http_, req):
        """Sends an accepted request again; counts whether the answer names
        the same operation (a different one is a double effect, found in
        verify through req.op_ids)."""
        deadline = now() + self.a.request_timeout
        backoff = 0.05
        while now() < deadline:
            try:
                st, h, body = http_.request(req.method, req.path, req.body, {"Idempotency-Key": req.key},
                                            timeout=self.a.http_timeout)
            except (OSError, http.client.HTTPException):
                st, h, body = None, {}, b""
            if st in (200, 202):
                try:
                    op_id = json.loads(body)["id"]
                except (ValueError, KeyError, TypeError):
                    self.c.add("bad_answers")
                    return
                self.c.add("resubmits")
                if h.get("idempotent-replayed") == "true":
                    self.c.add("resubmits_replayed")
                with self.lock:
                    if op_id not in req.op_ids:
                        req.op_ids.append(op_id)
                        self.by_op[op_id] = req
                return
            if st not in (None, 503, 429):
                try:
                    code = json.loads(body).get("code")
                except (ValueError, AttributeError):
                    code = str(st)
                self.c.add("resubmit_refused_%d_%s" % (st, code))
                with self.lock:
                    self.resubmit_refusals.append("%s %s key %s: %d %s" % (req.method, req.path, req.key, st, code))
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        self.c.add("resubmit_gave_up")

    def enqueue_follow(self, req, op_id, delay=0.0):
        with self.follow_cv:
            self.follow_q.append((now() + delay, req, op_id))
            self.follow_cv.notify()

    def follower(self):
        a = self.a
        http_ = Http(self.host, self.port)
        while True:
            with self.follow_cv:
                while not self.follow_q and self.following:
                    self.follow_cv.wait(0.5)
                if not self.follow_q:
                    break
                due, req, op_id = self.follow_q.popleft()
            wait = due - now()
            if wait > 0:
                time.sleep(min(wait, 0.2))
                if due > now():
                    self.enqueue_follow(req, op_id, max(0.0, due - now()))
                    continue
            try:
                self.follow_once(http_, req, op_id)
            except Exception as e:  # a bug here must not drop the operation with its thread
                self.c.add("follower_errors")
                print("soak: follower: %r" % e, file=sys.stderr, flush=True)
                self.enqueue_follow(req, op_id, 0.5)
        http_.close()

    def follow_once(self, http_, req, op_id):
        """One GET /operations/{id}?wait=N; requeues the operation unless it is terminal."""
        a = self.a
        try:
            st, _, body = http_.request("GET", "/operations/%s?wait=%d" % (op_id, a.follow_wait),
                                        timeout=a.follow_wait + a.http_timeout)
        except (OSError, http.client.HTTPException):
            self.enqueue_follow(req, op_id, 0.2)
            return
        if st == 200:
            try:
                op = json.loads(body)
            except ValueError:
                self.enqueue_follow(req, op_id, 0.2)
                return
            req.final = op
            if op.get("done"):
                if req.first_terminal is None:
                    req.first_terminal = (op.get("state"), op.get("code"))
                    req.terminal_at = now()
                    self.e2e_ms.append((req.terminal_at - req.accepted_at) * 1000.0)
                    self.c.add("terminal")
                    self.inflight.release()
                return
            self.enqueue_follow(req, op_id)
        elif st == 404:
            # Maybe a daemon that restarts has not opened the store yet;
            # the final check decides whether it is lost.
            req.follow_404 += 1
            self.c.add("follow_404")
            if req.follow_404 >= 20:
                self.c.add("terminal")
                self.inflight.release()
                return
            self.enqueue_follow(req, op_id, 0.5)
        else:
            self.enqueue_follow(req, op_id, 0.5)

    # ---------------------------------------------------------- run

    def run(self):
        a = self.a
        t0 = now()
        self.setup()
        print("soak: asyncopsd on %s:%d (pid %d), %d workers, data %s" % (
            self.host, self.port, self.daemon.pid, len(self.workers), self.data), file=sys.stderr, flush=True)
        end_at = t0 + a.duration
        followers = [threading.Thread(target=self.follower, daemon=True) for _ in range(a.followers)]
        submitters = [threading.Thread(target=self.submitter, args=(i, end_at), daemon=True)
                      for i in range(a.clients)]
        for t in followers + submitters:
            t.start()
        load_start = now()

        def watch_submitters():
            for t in submitters:
                t.join()
            self.submitting = False

        threading.Thread(target=watch_submitters, daemon=True).start()
        self.chaos(end_at)
        self.submitting = False
        for t in submitters:
            t.join(timeout=a.request_timeout + 30)
        load_s = now() - load_start
        print("soak: load phase over after %.0fs; draining (all processes running)" % load_s,
              file=sys.stderr, flush=True)

        # Drain: every accepted operation followed to a terminal state.
        drain_end = now() + a.drain_timeout
        while now() < drain_end:
            if self.c.get("terminal") >= self.c.get("accepted"):
                break
            self.progress()
            time.sleep(2)  # progress tick, bounded by the drain deadline
        drain_s = now() - load_start - load_s
        self.following = False
        with self.follow_cv:
            self.follow_cv.notify_all()
        for t in followers:
            t.join(timeout=a.follow_wait + a.http_timeout + 5)

        # Quiet: late work from a continued worker lands in users.db; wait
        # until its handled table stops growing, then stop the workers.
        quiet_s = self.wait_quiet()
        for w in self.workers:
            w.terminate(timeout=20)
        time.sleep(0.5)  # let the tracker apply events the workers flushed on exit
        report = self.verify()
        report["timing"] = {"load_s": round(load_s, 1), "drain_s": round(drain_s, 1),
                            "quiet_wait_s": round(quiet_s, 1), "total_s": round(now() - t0, 1)}
        return report

    def wait_quiet(self):
        a = self.a
        db = os.path.join(self.data, "users.db")
        need = max(3.0, 2 * parse_duration(a.lease))
        start = now()
        end = start + a.quiet_timeout
        last, stable_since = None, now()
        while now() < end:
            try:
                con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
                n = con.execute("SELECT count(*), max(at) FROM handled").fetchone()
                con.close()
            except sqlite3.Error:
                n = None
            if n != last:
                last, stable_since = n, now()
            elif now() - stable_since >= need:
                break
            time.sleep(0.5)  # poll, bounded by --quiet-timeout
        return now() - start

    # ---------------------------------------------------------- verification

    def get_json(self, http_, path, tries=20):
        for _ in range(tries):
            try:
                st, _, body = http_.request("GET", path, timeout=30)
                if st in (200, 404):
                    return st, (json.loads(body) if body else None)
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("GET %s kept failing" % path)

    def parallel_get(self, paths, threads=8):
        out = {}
        todo = collections.deque(paths)
        lock = threading.Lock()
        failures = []

        def run():
            h = Http(self.host, self.port)
            while True:
                with lock:
                    if not todo:
                        break
                    p = todo.popleft()
                try:
                    res = self.get_json(h, p)
                except RuntimeError as e:
                    with lock:
                        failures.append(str(e))
                    continue
                with lock:
                    out[p] = res
            h.close()

        ts = [threading.Thread(target=run) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if failures:
            raise RuntimeError("%d reads failed, e.g. %s" % (len(failures), failures[0]))
        return out

    def list_all(self, http_, path):
        items, cursor = [], None
        for _ in range(100000):
            q = path + ("&" if "?" in path else "?") + "limit=1000" + (
                "&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
            st, page = self.get_json(http_, q)
            if st != 200:
                raise RuntimeError("GET %s: %d" % (q, st))
            items.extend(page["items"])
            cursor = page.get("next")
            if not cursor:
                return items
        raise RuntimeError("GET %s: too many pages" % path)

    def verify(self):
        a = self.a
        http_ = Http(self.host, self.port)
        accepted = [r for r in self.requests if r.op_ids]

        # Claims: every operation's final state, read again now.
        op_ids = sorted({op for r in accepted for op in r.op_ids})
        ops = self.parallel_get(["/operations/" + op for op in op_ids])
        claims = {}
        for op in op_ids:
            st, body = ops["/operations/" + op]
            claims[op] = body if st == 200 else None

        # Every operation the daemon holds, to find ones no client was answered.
        daemon_ops = self.list_all(http_, "/operations?")

        # Records and service rows, straight from the users service's database.
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.data, "users.db"), uri=True, timeout=30)
        records = {}
        for rid, ev in con.execute("SELECT request_id, event FROM handled"):
            try:
                records[rid] = json.loads(ev)
            except ValueError:
                records[rid] = {"state": "undecodable"}
        service = {}
        for row in con.execute("SELECT id, email, name, created_at, updated_at FROM users"):
            service[row[0]] = dict(zip(("id", "email", "name", "created_at", "updated_at"), row))
        con.close()

        # The read model: GET /users pages, and GET /users/{id} of every id seen.
        listing = {u["id"]: u for u in self.list_all(http_, "/users?")}
        created_ids = {r.user_id for r in self.requests if r.kind == "create" and r.user_id}
        all_ids = sorted(created_ids | set(service) | set(listing))
        singles = self.parallel_get(["/users/" + uid for uid in all_ids])
        http_.close()

        info = collections.Counter()
        # invariant -> {key: message}; one finding per key (an operation id,
        # or a user id), however many checks see it.
        bad = collections.defaultdict(dict)

        def found(kind, key, msg):
            if key not in bad[kind] and kind == "failed_but_applied":
                r = self.by_op.get(key)
                info["failed_but_applied_" + (r.kind if r else "other")] += 1
            bad[kind].setdefault(key, msg)
        states = collections.Counter()
        codes = collections.Counter()

        # --- per request / per operation: the claim against the service's record
        for r in accepted:
            if len(r.op_ids) > 1:
                found("double_effects", "key:" + r.key, "key %s was answered with %d operations: %s" % (
                    r.key, len(r.op_ids), ", ".join(r.op_ids)))
            for op_id in r.op_ids:
                claim = claims.get(op_id)
                if claim is None:
                    found("lost", op_id, "%s %s: 202 with operation %s, now 404" % (r.method, r.path, op_id))
                    continue
                if not claim.get("done"):
                    found("stuck", op_id, "%s %s: operation %s still %s after the drain" % (
                        r.method, r.path, op_id, claim.get("state")))
                    continue
                state, code = claim.get("state"), claim.get("code")
                states[state] += 1
                codes["%s/%s" % (state, code)] += 1
                if op_id == r.op_ids[0] and r.first_terminal and r.first_terminal != (state, code):
                    info["terminal_state_changed"] += 1
                    found("_terminal_state_changed (info, not an invariant)", op_id,
                          "%s: first seen %s/%s, now %s/%s" % (op_id, r.first_terminal[0], r.first_terminal[1],
                                                              state, code))
                rec = records.get(op_id)
                rstate = rec.get("state") if rec else None
                rcode = rec.get("code") if rec else None
                what = "%s %s: operation %s is %s/%s, " % (r.method, r.path, op_id, state, code)
                if state in ("completed", "rejected"):
                    # Only a worker reports these, and it records them first.
                    if rec is None:
                        found("claim_service_mismatch", op_id, what + "the service recorded no outcome")
                    elif (rstate, rcode) != (state, code):
                        found("claim_service_mismatch", op_id, what + "the service recorded %s/%s" % (rstate, rcode))
                elif rec is not None and rstate != state:
                    found("failed_but_applied" if rstate == "completed" else "claim_service_mismatch", op_id,
                          what + "the service recorded %s/%s" % (rstate, rcode))

        for i, msg in enumerate(self.resubmit_refusals):
            found("idempotency_violations", i, msg)

        # Operations the daemon holds that no client was answered with (a
        # resend that made a second operation instead of replaying the first).
        ours = set(op_ids)
        strangers = [o for o in daemon_ops if o.get("id") not in ours]
        for o in strangers:
            rec = records.get(o["id"])
            if rec and rec.get("state") == "completed":
                found("double_effects", o["id"], "operation %s (%s, %s) was answered to no client but took effect" % (
                    o["id"], o.get("origin"), o.get("state")))
            else:
                info["operations_answered_to_no_client"] += 1
        daemon_ids = {o.get("id") for o in daemon_ops}
        for rid, rec in records.items():
            if rid not in daemon_ids and rid not in ours:
                found("double_effects", rid, "the service recorded %s for request %s, which the daemon does not know" % (
                    rec.get("state"), rid))

        # --- per user: what the claims imply, what the service holds, what is read
        by_user = collections.defaultdict(list)
        for r in accepted:
            if r.user_id:
                by_user[r.user_id].append(r)
        name_owner = {r.name: r for r in accepted if r.name}
        create_of = {r.user_id: r for r in accepted if r.kind == "create" and r.user_id}

        def claim_of(r):
            return claims.get(r.op_ids[0]) or {}

        for uid in all_ids:
            rs = by_user.get(uid, [])
            create = create_of.get(uid)
            row = service.get(uid)
            created = create is not None and claim_of(create).get("state") == "completed"
            deletes = [x for x in rs if x.kind == "delete"]
            done_deletes = [x for x in deletes if claim_of(x).get("state") == "completed"]
            claimed_exists = created and not done_deletes
            if create is None and row is not None:
                found("double_effects", "user:" + uid, "user %s is in users.db, but no create named it" % uid)
            elif row is not None and not claimed_exists:
                if not created:
                    found("failed_but_applied", create.op_ids[0], "user %s is in users.db, but its create %s is %s/%s" % (
                        uid, create.op_ids[0], claim_of(create).get("state"), claim_of(create).get("code")))
                else:
                    found("claim_service_mismatch", done_deletes[0].op_ids[0],
                          "user %s is in users.db, but delete %s completed" % (uid, done_deletes[0].op_ids[0]))
            elif row is None and claimed_exists:
                unclaimed = [x for x in deletes if claim_of(x).get("state") in ("failed", "canceled")]
                if unclaimed:
                    x = unclaimed[0]
                    found("failed_but_applied", x.op_ids[0], "user %s is gone from users.db, its delete %s is %s/%s" % (
                        uid, x.op_ids[0], claim_of(x).get("state"), claim_of(x).get("code")))
                else:
                    found("claim_service_mismatch", "user:" + uid,
                          "user %s: its create completed, no delete did, but users.db has no row" % uid)
            if row is not None:
                # Names are unique per request: the row says whose write it holds.
                writer = name_owner.get(row["name"])
                if writer is None or writer.user_id != uid:
                    found("claim_service_mismatch", "user:" + uid,
                          "user %s: users.db holds name %r, which no request for it sent" % (uid, row["name"]))
                elif claim_of(writer).get("state") != "completed":
                    found("failed_but_applied", writer.op_ids[0],
                          "user %s: users.db holds the name sent by %s %s (%s), whose operation is %s/%s" % (
                              uid, writer.method, writer.path, writer.op_ids[0], claim_of(writer).get("state"),
                              claim_of(writer).get("code")))
            # The read model against the service, field by field.
            st, body = singles["/users/" + uid]
            rm = body if st == 200 else None
            if (rm is None) != (row is None):
                info["read_model_shows_a_user_users_db_lacks" if row is None
                     else "read_model_lacks_a_user_users_db_has"] += 1
                found("read_model_mismatch", uid, "user %s: GET /users/{id} is %d, users.db %s" % (
                    uid, st, "has the row" if row else "has no row"))
            elif rm is not None:
                diff = [f for f in ("email", "name", "created_at", "updated_at") if rm.get(f) != row[f]]
                if diff:
                    info["read_model_fields_differ"] += 1
                    found("read_model_mismatch", uid, "user %s: GET /users/{id} has %s, users.db %s" % (
                        uid, {f: rm.get(f) for f in diff}, {f: row[f] for f in diff}))
            lrow = listing.get(uid)
            if lrow != rm:
                info["listing_differs_from_get"] += 1
                found("read_model_mismatch", uid, "user %s: GET /users lists %s, GET /users/{id} gives %s" % (
                    uid, lrow, rm))

        # Every row's email was sent by some request of ours (emails are
        # unique per create, so a second row for one create shows here).
        sent_emails = {r.email.lower() for r in accepted if r.email}
        for row in service.values():
            if row["email"].lower() not in sent_emails:
                found("double_effects", "user:" + row["id"], "user %s has email %s, which no request sent" % (
                    row["id"], row["email"]))

        kinds = collections.Counter(r.kind for r in self.requests)
        c = self.c.snapshot()
        report = {
            "seed": a.seed,
            "operations": {
                "submitted": len(self.requests),
                "submitted_by_kind": dict(kinds),
                "accepted": len(accepted),
                "not_accepted": len(self.requests) - len(accepted),
                "completed": states["completed"], "rejected": states["rejected"],
                "failed": states["failed"], "canceled": states["canceled"],
                "by_state_code": dict(sorted(codes.items())),
                "resends": c.get("resends", 0), "idempotent_replays": c.get("replays", 0),
                "resubmits": c.get("resubmits", 0), "resubmits_replayed": c.get("resubmits_replayed", 0),
                "transport_errors": c.get("transport_errors", 0),
                "answers_503": c.get("answered_503", 0), "answers_429": c.get("answered_429", 0),
                "gave_up": c.get("gave_up", 0),
                "refused": {k[len("refused_"):]: v for k, v in c.items() if k.startswith("refused_")},
                "daemon_operations_total": len(daemon_ops),
            },
            "service": {"users_rows": len(service), "handled_rows": len(records),
                        "read_model_users": len(listing)},
            "latency_ms": {"accept_to_terminal_p50": percentile(self.e2e_ms, 50),
                           "accept_to_terminal_p99": percentile(self.e2e_ms, 99),
                           "accept_to_terminal_max": max(self.e2e_ms) if self.e2e_ms else None},
            "faults": self.kills.snapshot(),
            "invariants": {k: len(bad.get(k, [])) for k in
                           ("lost", "stuck", "double_effects", "idempotency_violations", "read_model_mismatch",
                            "claim_service_mismatch", "failed_but_applied")},
            "info": dict(info),
            "examples": {k: list(v.values())[:a.examples] for k, v in bad.items() if v},
            "setup_errors": self.errors,
        }
        return report


# ------------------------------------------------------------------ main


def print_report(rep, out):
    o, inv = rep["operations"], rep["invariants"]
    w = out.write
    w("\n== asyncops soak (seed %d, commit %s) ==\n" % (rep["seed"], rep.get("commit")))
    w("operations  submitted %d (%s)  accepted %d  not accepted %d (gave up %d, refused %s)\n" % (
        o["submitted"], ", ".join("%s %d" % kv for kv in sorted(o["submitted_by_kind"].items())),
        o["accepted"], o["not_accepted"], o["gave_up"], o["refused"] or "none"))
    w("final       completed %d  rejected %d  failed %d  canceled %d\n" % (
        o["completed"], o["rejected"], o["failed"], o["canceled"]))
    w("codes       %s\n" % ", ".join("%s %d" % kv for kv in o["by_state_code"].items()))
    w("client      resends %d  replays %d  transport errors %d  503s %d  429s %d  "
      "resubmits of accepted requests %d (replayed %d)\n" % (
        o["resends"], o["idempotent_replays"], o["transport_errors"], o["answers_503"], o["answers_429"],
        o["resubmits"], o["resubmits_replayed"]))
    w("faults      %s\n" % (", ".join("%s %d" % kv for kv in sorted(rep["faults"].items())) or "none"))
    s = rep["service"]
    w("service     users.db rows %d, handled rows %d; read model users %d; daemon operations %d\n" % (
        s["users_rows"], s["handled_rows"], s["read_model_users"], o["daemon_operations_total"]))
    lat = rep["latency_ms"]
    if lat["accept_to_terminal_p50"] is not None:
        w("latency     accept->terminal p50 %.0f ms, p99 %.0f ms, max %.0f ms\n" % (
            lat["accept_to_terminal_p50"], lat["accept_to_terminal_p99"], lat["accept_to_terminal_max"]))
    t = rep["timing"]
    w("timing      load %.0fs, drain %.0fs, quiet wait %.0fs, total %.0fs\n" % (
        t["load_s"], t["drain_s"], t["quiet_wait_s"], t["total_s"]))
    if rep["info"]:
        w("info        %s\n" % ", ".join("%s %d" % kv for kv in sorted(rep["info"].items())))
    w("invariants  lost %d | stuck %d | double effects %d | read-model mismatches %d | "
      "claim/service mismatches %d | failed-but-applied %d | idempotency violations %d\n" % (
          inv["lost"], inv["stuck"], inv["double_effects"], inv["read_model_mismatch"],
          inv["claim_service_mismatch"], inv["failed_but_applied"], inv["idempotency_violations"]))
    for k, ex in rep["examples"].items():
        w("  %s, e.g.:\n" % k.lstrip("_"))
        for e in ex:
            w("    %s\n" % e)
    for e in rep["setup_errors"]:
        w("setup error: %s\n" % e)
    broken = [k for k, v in inv.items() if v]
    w("RESULT: %s\n" % ("FAIL (%s)" % ", ".join(broken) if broken else "PASS"))


def main(argv=None):
    p = argparse.ArgumentParser(description="asyncops fault-injection soak (see bench/README.md)")
    p.add_argument("--daemon", required=True, help="path of asyncopsd")
    p.add_argument("--worker", required=True, help="path of asyncops-worker")
    p.add_argument("--ops", type=int, default=20000, help="requests to submit (default 20000)")
    p.add_argument("--duration", type=float, default=600, help="longest load phase, seconds (default 600)")
    p.add_argument("--rate", type=float, default=50, help="requests per second offered, 0 = unpaced (default 50)")
    p.add_argument("--clients", type=int, default=8, help="submitting threads (default 8)")
    p.add_argument("--followers", type=int, default=8, help="threads following operations (default 8)")
    p.add_argument("--max-inflight", type=int, default=1000, help="accepted, unfinished operations at most (default 1000)")
    p.add_argument("--workers", type=int, default=3, help="asyncops-worker processes (default 3)")
    p.add_argument("--kill-rate", type=float, default=12, help="faults per minute (default 12)")
    p.add_argument("--w-worker-kill", type=float, default=35, help="weight of kill -9 of a worker")
    p.add_argument("--w-worker-stop", type=float, default=35, help="weight of SIGSTOP of a worker")
    p.add_argument("--w-daemon-kill", type=float, default=20, help="weight of kill -9 of asyncopsd")
    p.add_argument("--w-daemon-stop", type=float, default=10, help="weight of SIGSTOP of asyncopsd")
    p.add_argument("--min-stop", type=float, default=0.5, help="shortest worker SIGSTOP, seconds")
    p.add_argument("--max-stop", type=float, default=40, help="longest worker SIGSTOP, seconds (default 40)")
    p.add_argument("--max-daemon-stop", type=float, default=3, help="longest asyncopsd SIGSTOP, seconds")
    p.add_argument("--restart-delay-max", type=float, default=1.0, help="longest wait before a killed process restarts")
    p.add_argument("--lease", default="2s", help="asyncopsd --lease (default 2s)")
    p.add_argument("--backoff", default="500ms", help="asyncopsd --backoff (default 500ms)")
    p.add_argument("--max-attempts", type=int, default=5, help="asyncopsd --max-attempts (default 5)")
    p.add_argument("--daemon-arg", action="append", default=[], help="extra asyncopsd argument (repeat)")
    p.add_argument("--p-create", type=float, default=0.45, help="share of creates (default 0.45)")
    p.add_argument("--p-put", type=float, default=0.42, help="share of PUTs (default 0.42); the rest are DELETEs")
    p.add_argument("--p-dup-email", type=float, default=0.03, help="share of creates reusing an email")
    p.add_argument("--p-resend", type=float, default=0.03, help="share of accepted requests sent again later")
    p.add_argument("--p-hot", type=float, default=0.5, help="share of PUT/DELETE on the newest --hot-users users")
    p.add_argument("--hot-users", type=int, default=40, help="size of the hot set (default 40)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    p.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    p.add_argument("--http-timeout", type=float, default=10, help="seconds before a request is given up and resent")
    p.add_argument("--request-timeout", type=float, default=300, help="seconds a client keeps resending one request")
    p.add_argument("--follow-wait", type=int, default=2, help="N of GET /operations/{id}?wait=N")
    p.add_argument("--drain-timeout", type=float, default=300, help="seconds to wait for every operation to end")
    p.add_argument("--quiet-timeout", type=float, default=120, help="seconds to wait for users.db to stop changing")
    p.add_argument("--examples", type=int, default=5, help="examples printed per broken invariant")
    p.add_argument("--out", default=None, help="write the report as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (kept anyway when an invariant breaks)")
    p.add_argument("--progress-s", type=float, default=15, help="progress line interval, seconds")
    a = p.parse_args(argv)
    if a.seed is None:
        a.seed = int(time.time()) % 100000
    if a.p_create + a.p_put > 1 or min(a.p_create, a.p_put) < 0:
        p.error("--p-create + --p-put must be within [0, 1]")
    for b in (a.daemon, a.worker):
        if not os.access(b, os.X_OK):
            p.error("not executable: %s" % b)

    soak = Soak(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rep = None
    try:
        rep = soak.run()
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        soak.teardown()
        return 130
    except Exception as e:
        print("soak: %s" % e, file=sys.stderr)
        soak.teardown()
        if soak.run_dir:
            print("soak: logs kept in %s" % soak.run_dir, file=sys.stderr)
        return 2
    soak.teardown()
    rep["command"] = " ".join(["soak.py"] + (argv if argv is not None else sys.argv[1:]))
    rep["run_dir"] = soak.run_dir
    rep["commit"] = os.environ.get("ASYNCOPS_SOAK_COMMIT", "unknown")
    rep["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rep["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    print_report(rep, sys.stdout)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(rep, f, indent=1, sort_keys=True)
        print("JSON: %s" % a.out)
    failed = any(rep["invariants"].values())
    if a.keep or failed:
        print("logs and data kept in %s" % soak.run_dir)
    else:
        shutil.rmtree(soak.run_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
