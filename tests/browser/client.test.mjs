// Issue 12: the JavaScript client (clients/js/asyncops.js) in Node against
// a real daemon: submit() follows by WebSocket, by SSE and by long-polling,
// resumes after a drop, and watch() follows many operations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { System, eventually } from "./harness.mjs";

let sys, AsyncOps, isTerminal;
before(async () => {
  sys = await System.start({ tokens: [["ann", "submitter"]] });
  // The file the daemon serves is the one in the repo.
  const served = await fetch(sys.url + "/asyncops.js");
  assert.equal(served.status, 200);
  assert.match(served.headers.get("content-type"), /javascript/);
  const mod = await import(new URL("../../clients/js/asyncops.js", import.meta.url));
  assert.equal(await served.text(), (await import("node:fs")).readFileSync(new URL("../../clients/js/asyncops.js", import.meta.url), "utf8"));
  ({ AsyncOps, isTerminal } = mod);
});
after(async () => { await sys?.stop(); });

function client(extra = {}) {
  return new AsyncOps({ url: sys.url, token: sys.tokens.ann, WebSocket, ...extra });
}

// The "ws" package's WebSocket, showing a test each frame the client got,
// parsed, after the client handled it (onFrame). Not addEventListener: the
// client sets onmessage, and ws's onmessage setter removes the listeners
// that addEventListener added.
class ObservedWebSocket extends WebSocket {
  onFrame(message) {}
  set onmessage(handler) {
    super.onmessage = (ev) => {
      handler.call(this, ev);
      this.onFrame(JSON.parse(String(ev.data)));
    };
  }
  get onmessage() { return super.onmessage; }
}

for (const transports of [["websocket"], ["sse"], ["poll"], ["websocket", "sse", "poll"]]) {
  test(`submit() resolves to the final operation over ${transports.join(", ")}`, async () => {
    const api = client({ transports });
    const seen = [];
    const op = await api.submit("POST", "/users", { email: `${transports.join("-")}@example.com`, name: "N" },
      { onUpdate: (o) => seen.push(o.state) });
    assert.equal(op.state, "completed");
    assert.ok(isTerminal(op.state));
    assert.equal(api.lastTransport, transports[0]);
    assert.equal(seen.at(-1), "completed");
  });
}

test("submit() falls back to SSE, then to ?wait polling, when push is refused", async () => {
  // A fetch that refuses /events streams, and a WebSocket that never opens.
  class NoWebSocket { constructor() { setTimeout(() => this.onclose && this.onclose({}), 5); } close() {} send() {} }
  const blockedFetch = (url, init) => (String(url).includes("/events")
    ? Promise.reject(new TypeError("blocked")) : fetch(url, init));
  const api = client({ WebSocket: NoWebSocket, fetch: blockedFetch });
  const op = await api.submit("POST", "/users", { email: "fallback@example.com", name: "F" });
  assert.equal(op.state, "completed");
  assert.equal(api.lastTransport, "poll");
});

test("follow() resumes after a drop from the last seq, without repeating a change", async () => {
  // A system of its own without a worker, so that the operation stays
  // pending: the first WebSocket is cut after it delivered the current state,
  // and the worker starts only once the client has subscribed again, so the
  // rest of the operation arrives live on the resumed connection.
  const held = await System.start({ tokens: [["ann", "submitter"]], workers: 0 });
  try {
    const connections = [];  // per WebSocket: what the client sent and the change seqs it got
    let cuts = 0;
    // Cut once, right after the client handled the first change frame.
    // (The earlier hook listened with addEventListener, which the client's
    // onmessage removed: it never fired.)
    class FlakyWebSocket extends ObservedWebSocket {
      constructor(...args) {
        super(...args);
        this.log = { sent: [], changes: [], acks: 0 };
        connections.push(this.log);
      }
      send(data, ...rest) {
        this.log.sent.push(JSON.parse(data));
        return super.send(data, ...rest);
      }
      onFrame(m) {
        if (m.subscribed !== undefined) this.log.acks++;
        if (!m.operation) return;
        this.log.changes.push(m.seq);
        if (cuts === 0) { cuts++; this.terminate(); }
      }
    }
    const api = new AsyncOps({ url: held.url, token: held.tokens.ann, WebSocket: FlakyWebSocket, transports: ["websocket"] });
    const r = await api.request("POST", "/users", { email: "resume@example.com", name: "R" });
    assert.equal(r.body.state, "pending");
    const states = [];
    const following = api.follow(r.body.id, { onUpdate: (o) => states.push(o.state) });
    await eventually(() => connections.length >= 2 && connections[1].acks > 0, 15000,
      "the client to reconnect after the cut and subscribe again");
    assert.equal(cuts, 1);
    assert.deepEqual(states, ["pending"]);  // nothing has happened yet: the operation is held
    held.startWorkers(1);
    const op = await following;
    assert.equal(op.state, "completed");
    assert.equal(connections.length, 2, "one cut, one resumed connection");
    const [first, second] = connections;
    assert.deepEqual(first.sent, [{ subscribe: r.body.id }]);
    assert.equal(first.changes.length, 1);
    // The resumed subscription asks for what came after the last seq seen.
    assert.deepEqual(second.sent, [{ subscribe: r.body.id, last_event_id: first.changes[0] }]);
    // Every change exactly once, in order: the history's entries are the one
    // change before the cut and the rest, live, after it.
    const history = (await held.request("GET", `/operations/${r.body.id}/history`, { token: held.tokens.ann })).json.items;
    assert.ok(second.changes.length >= 2, `changes after the cut: ${second.changes}`);
    assert.deepEqual([...first.changes, ...second.changes], history.map((h) => h.seq));
    assert.deepEqual(states, history.map((h) => h.state));
  } finally {
    await held.stop();
  }
});

test("submit() reports each change once: the stream's first frame is not its answer again", async () => {
  // Held without a worker until the WebSocket subscribed, so that the
  // stream begins with the state the answer to the POST already reported.
  const held = await System.start({ tokens: [["ann", "submitter"]], workers: 0 });
  try {
    let acks = 0;
    class AckWebSocket extends ObservedWebSocket {
      onFrame(m) { if (m.subscribed !== undefined) acks++; }
    }
    const api = new AsyncOps({ url: held.url, token: held.tokens.ann, WebSocket: AckWebSocket, transports: ["websocket"] });
    const seen = [];
    const submitted = api.submit("POST", "/users", { email: "once@example.com", name: "O" }, { onUpdate: (o) => seen.push(o) });
    await eventually(() => acks > 0, 15000, "submit() to subscribe over the WebSocket");
    held.startWorkers(1);
    const op = await submitted;
    assert.equal(op.state, "completed");
    const history = (await held.request("GET", `/operations/${op.id}/history`, { token: held.tokens.ann })).json.items;
    assert.deepEqual(seen.map((o) => o.state), history.map((h) => h.state));
    assert.deepEqual(seen.map((o) => o.updated_at), history.map((h) => h.at));
  } finally {
    await held.stop();
  }
});

test("watch() follows many operations and close() stops it; abort rejects submit()", async () => {
  for (const transports of [["websocket"], ["sse"]]) {
    // Operations submitted before the watch's subscription exists are not
    // followed, so wait until it does: the WebSocket's {"subscribed": ...},
    // or the /events response (the daemon makes the feed before it answers).
    let live = false, socket = null;
    class AckWebSocket extends ObservedWebSocket {
      constructor(...args) { super(...args); socket = this; }
      onFrame(m) { if (m.subscribed !== undefined) live = true; }
    }
    const liveFetch = async (url, init) => {
      const res = await fetch(url, init);
      if (new URL(url).pathname === "/events" && res.status === 200) live = true;
      return res;
    };
    const api = client({ transports, WebSocket: AckWebSocket, fetch: liveFetch });
    const done = new Set();
    const w = api.watch({ name: "create_user" }, (op) => { if (op.state === "completed") done.add(op.id); });
    await eventually(() => live, 15000, `the watch's ${transports[0]} subscription`);
    assert.equal(w.transport, transports[0]);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await api.request("POST", "/users", { email: `w${transports[0]}${i}@example.com`, name: "W" })).body.id);
    }
    await eventually(() => ids.every((id) => done.has(id)), 20000, `all five completed over ${transports[0]}`);
    w.close();
    if (socket) await eventually(() => socket.readyState === WebSocket.CLOSED, 5000, "close() to close the WebSocket");
  }
  const ctl = new AbortController();
  const api = client();
  const p = api.submit("POST", "/users", { email: "abort@example.com", name: "A" }, { signal: ctl.signal });
  ctl.abort();
  await assert.rejects(p, (e) => e.name === "AbortError");
});

test("watch()'s onReady comes once each transport has subscribed, and again after a reconnect", async () => {
  // A change committed right after onReady must be delivered: that is what
  // the console relies on to read the list without a gap.
  for (const transports of [["websocket"], ["sse"], ["poll"]]) {
    let socket = null;
    class KeptWebSocket extends WebSocket {
      constructor(...args) { super(...args); socket = this; }
    }
    const api = client({ transports, WebSocket: KeptWebSocket });
    const seen = new Map();  // id -> the states delivered
    let readies = 0;
    const w = api.watch({ name: "create_user" }, (op) => seen.set(op.id, [...(seen.get(op.id) || []), op.state]),
      { onReady: () => { readies++; } });
    try {
      await eventually(() => readies === 1, 15000, `onReady over ${transports[0]}`);
      assert.equal(w.transport, transports[0]);
      const id = (await api.request("POST", "/users", { email: `ready-${transports[0]}@example.com`, name: "R" })).body.id;
      await eventually(() => (seen.get(id) || []).includes("completed"), 20000, `the change after onReady over ${transports[0]}`);
      if (transports[0] === "websocket") {
        // A dropped WebSocket reconnects and subscribes again: onReady again.
        socket.terminate();
        await eventually(() => readies === 2, 15000, "onReady after the WebSocket reconnected");
      }
      assert.equal(readies, transports[0] === "websocket" ? 2 : 1);
    } finally {
      w.close();
    }
  }
});
