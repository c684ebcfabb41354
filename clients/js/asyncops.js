// asyncops.js: a JavaScript client for the asyncops HTTP API (issue 12).
// An ES module with no dependencies, for browsers and Node >= 18. The
// daemon serves it at /asyncops.js; docs/browser.md documents it.
//
//   import { AsyncOps } from "/asyncops.js";
//   const api = new AsyncOps({ token: "aot_..." });
//   const op = await api.submit("POST", "/users", { email, name });  // the final operation
//
// submit() follows the operation by push: a WebSocket (/ws) first, then
// Server-Sent Events (/operations/{id}/events, read with fetch so that the
// token goes in a header), then ?wait long-polling. After a drop it
// reconnects and resumes after the last seq it saw, so no change is missed
// or repeated.

const TERMINAL = new Set(["completed", "rejected", "failed", "canceled"]);

export function isTerminal(state) {
  return TERMINAL.has(state);
}

// An error with the problem+json document of a refused request.
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || null;
    this.code = (problem && problem.code) || null;
  }
}

function abortError() {
  return typeof DOMException === "function" ? new DOMException("aborted", "AbortError") : Object.assign(new Error("aborted"), { name: "AbortError" });
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError());
    const t = setTimeout(() => { cleanup(); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); cleanup(); reject(abortError()); };
    const cleanup = () => signal && signal.removeEventListener("abort", onAbort);
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
  });
}

// Transports whose failure to connect moves on to the next one.
class ConnectFailed extends Error {}

// The events of a text/event-stream body as they arrive: { id, data } for
// each block that has data (line ends normalised to \n, the one space after
// "data:" dropped, id null when the block has none). Ends with the body.
async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let id = null, data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = Number(line.slice(3).trim());
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
      }
      if (data) yield { id, data };
    }
  }
}

export class AsyncOps {
  // options:
  //   url        the daemon's base URL; default: this page's origin
  //   token      an API token, or tokenFactory: () => token (may be async)
  //   transports the order to try: ["websocket", "sse", "poll"] (default)
  //   WebSocket  a WebSocket class (default: globalThis.WebSocket; in Node
  //              < 22 pass one, e.g. the "ws" package's, or WebSocket is skipped)
  //   fetch      a fetch function (default: globalThis.fetch)
  //   retries    reconnects of one transport after a drop before the next (default 3)
  //   pollWait   the ?wait=N of long-polling, in seconds (default 30)
  constructor(options = {}) {
    const origin = typeof location !== "undefined" ? location.origin : "";
    this.url = (options.url || origin).replace(/\/+$/, "");
    this.tokenFactory = options.tokenFactory || (() => options.token || "");
    this.transports = options.transports || ["websocket", "sse", "poll"];
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this.retries = options.retries ?? 3;
    this.pollWait = options.pollWait ?? 30;
    // What the last follow used, for tests and diagnostics: "websocket", "sse" or "poll".
    this.lastTransport = null;
  }

  async headers(extra = {}) {
    const token = await this.tokenFactory();
    const h = { ...extra };
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  // One request; resolves to { status, headers, body } (body parsed when
  // JSON), rejects with ApiError for a 4xx or 5xx.
  async request(method, path, body, { signal, headers = {} } = {}) {
    const h = await this.headers(headers);
    if (body !== undefined) h["Content-Type"] = "application/json";
    const res = await this.fetch(this.url + path, {
      method, headers: h, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    if ((res.headers.get("content-type") || "").includes("json")) {
      try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    }
    if (res.status >= 400) throw new ApiError(res.status, typeof parsed === "object" ? parsed : null);
    return { status: res.status, headers: res.headers, body: parsed };
  }

  get(id, opts) { return this.request("GET", `/operations/${encodeURIComponent(id)}`, undefined, opts).then((r) => r.body); }
  list(query = {}, opts) {
    const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== "")).toString();
    return this.request("GET", "/operations" + (q ? "?" + q : ""), undefined, opts).then((r) => r.body);
  }
  cancel(id, opts) { return this.request("POST", `/operations/${encodeURIComponent(id)}/cancel`, undefined, opts).then((r) => r.body); }
  forget(id, opts) { return this.request("DELETE", `/operations/${encodeURIComponent(id)}`, undefined, opts).then((r) => r.body); }
  workers(opts) { return this.request("GET", "/workers", undefined, opts).then((r) => r.body.items); }
  // A single-use stream ticket (POST /tickets), valid 60 s.
  ticket(opts) { return this.request("POST", "/tickets", undefined, opts).then((r) => r.body.ticket); }

  // Sends a command and resolves to its final operation, following it by
  // push. options: signal (AbortSignal), idempotencyKey, onUpdate(op).
  async submit(method, path, body, { signal, idempotencyKey, onUpdate } = {}) {
    const headers = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    const r = await this.request(method, path, body, { signal, headers });
    const op = r.body;
    if (!op || !op.id) throw new Error(`${method} ${path} did not answer with an operation`);
    if (onUpdate) onUpdate(op);
    if (isTerminal(op.state)) return op;
    return this.follow(op.id, { signal, onUpdate, last: op });
  }

  // Resolves to the operation once it is terminal. options: signal,
  // onUpdate(op) for each change, once; last (the operation as known so
  // far, which onUpdate does not get again).
  async follow(id, { signal, onUpdate, last } = {}) {
    const state = { id, seq: -1, op: last || null, signal, onUpdate };
    const transports = this.transports.filter((t) => t !== "websocket" || this.WebSocket);
    for (let i = 0; i < transports.length; i++) {
      const t = transports[i];
      const final = i === transports.length - 1;
      let drops = 0;
      for (;;) {
        if (signal && signal.aborted) throw abortError();
        try {
          this.lastTransport = t;
          const op = await this[`follow_${t}`](state);
          if (op) return op;
        } catch (e) {
          if (e && e.name === "AbortError") throw e;
          if (e instanceof ApiError && e.status !== 503 && e.status !== 429) throw e;
          if (e instanceof ConnectFailed && !final) break;  // this transport does not get through: the next one
        }
        // A drop after it worked: reconnect and resume after state.seq.
        if (++drops > this.retries && !final) break;
        await sleep(Math.min(200 * 2 ** Math.min(drops, 5), 5000), signal);
      }
    }
    throw new Error(`cannot follow operation ${id}`);
  }

  // Records one change; returns the operation if it is terminal.
  _seen(state, seq, op) {
    if (seq !== undefined && seq !== null) {
      if (seq <= state.seq) return null;  // already seen (a replay overlap)
      // A stream without a seq to resume from begins with the current state,
      // which the caller may have reported already (submit()'s answer): the
      // same document is the same change, so it is not reported twice.
      const repeat = state.seq < 0 && state.op && JSON.stringify(state.op) === JSON.stringify(op);
      state.seq = seq;
      if (repeat) return isTerminal(op.state) ? op : null;
    }
    state.op = op;
    if (state.onUpdate) state.onUpdate(op);
    return isTerminal(op.state) ? op : null;
  }

  // A URL for a stream, with a ticket instead of the token: a long-lived
  // token never goes in a URL.
  async _streamUrl(path, { signal } = {}) {
    const token = await this.tokenFactory();
    let url = this.url + path;
    if (token) url += (url.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(await this.ticket({ signal }));
    return url;
  }

  async follow_websocket(state) {
    const url = (await this._streamUrl("/ws", { signal: state.signal })).replace(/^http/, "ws");
    return new Promise((resolve, reject) => {
      let opened = false, done = false;
      const ws = new this.WebSocket(url);
      const finish = (fn, v) => {
        if (done) return;
        done = true;
        if (state.signal) state.signal.removeEventListener("abort", onAbort);
        try { ws.close(1000); } catch { /* closed already */ }
        fn(v);
      };
      const onAbort = () => finish(reject, abortError());
      if (state.signal) state.signal.addEventListener("abort", onAbort, { once: true });
      ws.onopen = () => {
        opened = true;
        const msg = { subscribe: state.id };
        if (state.seq >= 0) msg.last_event_id = state.seq;
        ws.send(JSON.stringify(msg));
      };
      ws.onmessage = (ev) => {
        let m;
        try { m = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data)); } catch { return; }
        if (m.error) return finish(reject, new ApiError(m.error.status || 400, m.error));
        if (m.operation) {
          const final = this._seen(state, m.seq, m.operation);
          if (final) finish(resolve, final);
        } else if (m.end) {
          finish(resolve, null);  // ended: the last change was terminal, or read it again
        }
      };
      ws.onerror = () => {};
      ws.onclose = () => finish(reject, opened ? new Error("the WebSocket closed") : new ConnectFailed("no WebSocket"));
    }).then((op) => op || this._settle(state));
  }

  // SSE read with fetch: Authorization goes in a header, Last-Event-ID too.
  async follow_sse(state) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    if (state.signal) state.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const headers = await this.headers({ Accept: "text/event-stream" });
      if (state.seq >= 0) headers["Last-Event-ID"] = String(state.seq);
      let res;
      try {
        res = await this.fetch(`${this.url}/operations/${encodeURIComponent(state.id)}/events`, { headers, signal: ctl.signal });
      } catch (e) {
        if (state.signal && state.signal.aborted) throw abortError();
        throw new ConnectFailed(String(e));
      }
      if (res.status === 204) return this._settle(state);  // it had ended
      if (res.status >= 400) {
        let problem = null;
        try { problem = await res.json(); } catch { /* not JSON */ }
        if (res.status === 404 || res.status === 401 || res.status === 403) throw new ApiError(res.status, problem);
        throw new ConnectFailed(`HTTP ${res.status}`);
      }
      if (!res.body || !(res.headers.get("content-type") || "").includes("text/event-stream")) {
        throw new ConnectFailed("not an event stream");
      }
      for await (const { id, data } of sseEvents(res.body)) {
        let op;
        try { op = JSON.parse(data); } catch { continue; }
        const final = this._seen(state, id, op);
        if (final) {
          ctl.abort();
          return final;
        }
      }
      return this._settle(state);  // the stream ended: read where it is
    } finally {
      if (state.signal) state.signal.removeEventListener("abort", onAbort);
    }
  }

  async follow_poll(state) {
    for (;;) {
      const r = await this.request("GET", `/operations/${encodeURIComponent(state.id)}?wait=${this.pollWait}`, undefined,
        { signal: state.signal });
      const op = r.body;
      if (!state.op || op.updated_at !== state.op.updated_at || op.state !== state.op.state) {
        const final = this._seen(state, null, op);
        if (final) return final;
      } else if (isTerminal(op.state)) {
        return op;
      }
    }
  }

  // After a stream ended without a terminal change in hand: the operation
  // as it is now if terminal, else null (follow on).
  async _settle(state) {
    const op = await this.get(state.id, { signal: state.signal });
    if (isTerminal(op.state)) {
      if (!state.op || state.op.state !== op.state) this._seen(state, null, op);
      return op;
    }
    return null;
  }

  // Follows every operation matching filter ({state?, name?}), calling
  // onChange(op, seq) for each change, until close(). WebSocket first,
  // then SSE (/events), then polling the list; it resumes after a drop.
  // onReady() is called each time a transport has subscribed (after a
  // reconnect too): every change committed after it is delivered, so a
  // caller that reads a snapshot (list()) once the watch is ready misses
  // nothing between the two. Returns { close(), transport }.
  watch(filter, onChange, { signal, onReady } = {}) {
    const ctl = new AbortController();
    if (signal) signal.addEventListener("abort", () => ctl.abort(), { once: true });
    const handle = { transport: null, close: () => ctl.abort() };
    const f = {};
    if (filter && filter.state) f.state = filter.state;
    if (filter && filter.name) f.name = filter.name;
    let seq = -1;
    const emit = (s, op) => {
      if (s !== null && s !== undefined) {
        if (s <= seq) return;
        seq = s;
      }
      onChange(op, s);
    };
    // A throwing onReady is the caller's error, reported as uncaught: it
    // must not look like a transport failure.
    const ready = () => {
      if (!onReady || ctl.signal.aborted) return;
      try { onReady(); } catch (e) { setTimeout(() => { throw e; }); }
    };
    const run = async () => {
      const transports = this.transports.filter((t) => t !== "websocket" || this.WebSocket);
      for (let i = 0; ; ) {
        if (ctl.signal.aborted) return;
        const t = transports[Math.min(i, transports.length - 1)];
        handle.transport = t;
        let worked = false;
        try {
          worked = await this[`watch_${t}`](f, () => seq, emit, ctl.signal, ready);
        } catch (e) {
          if (ctl.signal.aborted) return;
          if (!(e instanceof ConnectFailed)) worked = true;
        }
        if (!worked && i < transports.length - 1) { i++; continue; }
        try { await sleep(1000, ctl.signal); } catch { return; }
      }
    };
    run();
    return handle;
  }

  // Each watch_ transport runs until the stream drops; it returns whether
  // it got through at all. It calls ready() once it has subscribed.
  async watch_websocket(filter, getSeq, emit, signal, ready) {
    const url = (await this._streamUrl("/ws", { signal })).replace(/^http/, "ws");
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new this.WebSocket(url);
      const onAbort = () => { try { ws.close(1000); } catch { /* closed */ } };
      signal.addEventListener("abort", onAbort, { once: true });
      ws.onopen = () => {
        opened = true;
        const msg = { subscribe: filter };
        if (getSeq() >= 0) msg.last_event_id = getSeq();
        ws.send(JSON.stringify(msg));
      };
      ws.onmessage = (ev) => {
        let m;
        try { m = JSON.parse(String(ev.data)); } catch { return; }
        if (m.operation) emit(m.seq, m.operation);
        else if (m.subscribed !== undefined) ready();  // the daemon's reply once the subscription exists
      };
      ws.onerror = () => {};
      ws.onclose = () => {
        signal.removeEventListener("abort", onAbort);
        if (opened) resolve(true); else reject(new ConnectFailed("no WebSocket"));
      };
    });
  }

  async watch_sse(filter, getSeq, emit, signal, ready) {
    const headers = await this.headers({ Accept: "text/event-stream" });
    if (getSeq() >= 0) headers["Last-Event-ID"] = String(getSeq());
    const q = new URLSearchParams(filter).toString();
    let res;
    try {
      res = await this.fetch(`${this.url}/events${q ? "?" + q : ""}`, { headers, signal });
    } catch (e) {
      throw new ConnectFailed(String(e));
    }
    if (res.status >= 400 || !res.body) throw new ConnectFailed(`HTTP ${res.status}`);
    ready();  // the daemon makes the stream's feed before it answers
    for await (const { id, data } of sseEvents(res.body)) {
      try { emit(id, JSON.parse(data)); } catch { /* not an operation */ }
    }
    return true;
  }

  // No push at all: the newest operations every 2 s, a change being a new
  // updated_at (no seq: onChange gets null). Ready once the first poll is
  // answered: a change after it shows in a later poll.
  async watch_poll(filter, getSeq, emit, signal, ready) {
    const known = new Map();
    for (let first = true; ; first = false) {
      const page = await this.list({ ...filter, limit: 100 }, { signal });
      for (const op of page.items || []) {
        if (known.get(op.id) !== op.updated_at + op.state) {
          known.set(op.id, op.updated_at + op.state);
          emit(null, op);
        }
      }
      if (first) ready();
      await sleep(2000, signal);
    }
  }
}

export default AsyncOps;
