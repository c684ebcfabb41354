// Starts a real asyncopsd and one worker on a free port in a temp dir, as
// tests/integration/harness.h does, for the Node and browser tests. The
// binaries come from the environment ctest sets: ASYNCOPSD_BIN,
// ASYNCOPS_WORKER_BIN, ASYNCOPS_CLI_BIN.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bins = {
  daemon: process.env.ASYNCOPSD_BIN,
  worker: process.env.ASYNCOPS_WORKER_BIN,
  cli: process.env.ASYNCOPS_CLI_BIN,
};

export async function eventually(pred, timeoutMs = 15000, what = "a condition") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class System {
  // tokens: [[principal, role], ...]; each gets a token in this.tokens[principal].
  static async start({ tokens = [["ann", "submitter"]], workers = 1, daemonArgs = [] } = {}) {
    for (const [k, v] of Object.entries(bins)) {
      if (!v || !existsSync(v)) throw new Error(`${k} binary not found: set ASYNCOPSD_BIN, ASYNCOPS_WORKER_BIN, ASYNCOPS_CLI_BIN`);
    }
    const s = new System();
    s.dir = mkdtempSync(join(tmpdir(), "asyncops-web-"));
    s.tokens = {};
    for (const [principal, role] of tokens) {
      const out = execFileSync(bins.cli, ["token", "add", "--principal", principal, "--role", role, "--data-dir", s.dir]);
      s.tokens[principal] = out.toString().trim().split("\n").pop();
    }
    s.procs = [];
    const log = openSync(join(s.dir, "daemon.log"), "a");
    s.procs.push(spawn(bins.daemon, ["--data-dir", s.dir, "--listen", "127.0.0.1:0", ...daemonArgs],
      { stdio: ["ignore", log, log] }));
    const urlFile = join(s.dir, "asyncopsd.url");
    s.url = await eventually(() => {
      if (!existsSync(urlFile)) return null;
      const u = readFileSync(urlFile, "utf8").trim();
      return u.startsWith("http") ? u : null;
    }, 20000, "the daemon's URL file");
    s.startWorkers(workers);
    return s;
  }

  // Starts n more workers (a test that holds operations pending starts the
  // system with workers: 0 and calls this when it is ready).
  startWorkers(n = 1) {
    const wlog = openSync(join(this.dir, "worker.log"), "a");
    for (let i = 0; i < n; i++) {
      this.procs.push(spawn(bins.worker, ["--data-dir", this.dir, "--heartbeat-ms", "200"], { stdio: ["ignore", wlog, wlog] }));
    }
  }

  async request(method, path, { token, body, headers = {} } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h["Content-Type"] = "application/json";
    const res = await fetch(this.url + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, text, json };
  }

  logs() {
    const read = (f) => (existsSync(join(this.dir, f)) ? readFileSync(join(this.dir, f), "utf8") : "");
    return read("daemon.log") + read("worker.log");
  }

  // Stops the processes this test started (by pid), and removes the dir.
  async stop() {
    for (const p of this.procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      }
    }
    if (!process.env.ASYNCOPS_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
