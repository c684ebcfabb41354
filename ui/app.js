// The asyncops live console (issue 12). Plain ES module, no dependencies,
// no network but the daemon itself. It follows every change with the
// JavaScript client's watch() (WebSocket, then SSE, then polling).
import { AsyncOps, ApiError, isTerminal } from "/asyncops.js";

const TOKEN_KEY = "asyncops.token";
const MAX_ROWS = 200;        // rows in the DOM at most: the rest are counted, not drawn
const MAX_KEPT = 20000;      // operations kept in memory; the oldest terminal ones go first
const $ = (id) => document.getElementById(id);

let api = null;
let watcher = null;
const ops = new Map();       // id -> operation
let renderQueued = false;
let currentView = "";
let currentOp = null;
let timers = [];
const names = new Set();

// ------------------------------------------------------------------ login

function takeFragmentToken() {
  // /ui#token=... logs in; the fragment never reaches the server, and is
  // removed from the address bar and history at once.
  const m = location.hash.match(/^#token=([^&]+)/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + "#/ops");
}

async function tryLogin(token) {
  const candidate = new AsyncOps({ token });
  try {
    await candidate.list({ limit: 1 });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
    throw e;
  }
  api = candidate;
  return true;
}

function showLogin(message = "") {
  stopLive();
  api = null;
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "login";
  $("logout").hidden = true;
  $("login-error").textContent = message;
  $("token").focus();
}

async function start() {
  takeFragmentToken();
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  let ok = false;
  try {
    ok = await tryLogin(token);
  } catch (e) {
    return showLogin("cannot reach the daemon: " + e.message);
  }
  if (!ok) {
    sessionStorage.removeItem(TOKEN_KEY);
    return showLogin(token ? "that token was refused" : "");
  }
  $("logout").hidden = !token;
  startLive();
  route();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("token").value.trim();
  if (!(await tryLogin(token).catch(() => false))) return showLogin("that token was refused");
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("logout").hidden = false;
  if (!location.hash.startsWith("#/")) location.hash = "#/ops";
  startLive();
  route();
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("logged out");
});

// ------------------------------------------------------------- live data

// The watch starts first and the newest 1,000 are read once it has
// subscribed: a change committed before the subscription is in the list, one
// after it comes from the watch. A change may come both ways, and the list's
// answer may arrive after a newer change: remember() keeps the newest.
function startLive() {
  stopLive();
  ops.clear();
  let listed = false;
  const w = api.watch(null, (op) => {
    remember(op);
    queueRender();
    if (currentOp === op.id) showOperation(op.id, op);
  }, {
    onReady: async () => {
      if (listed) return;  // after a reconnect the watch resumes: no gap to fill
      listed = true;
      try {
        const page = await api.list({ limit: 1000 });
        if (watcher !== w) return;  // logged out or restarted meanwhile
        for (const op of page.items) remember(op);
        queueRender();
      } catch { /* the watch shows what changes from now on */ }
    },
  });
  watcher = w;
  const live = $("live");
  const tick = () => {
    live.textContent = watcher && watcher.transport ? `live (${watcher.transport})` : "offline";
    live.classList.toggle("on", !!(watcher && watcher.transport));
  };
  timers.push(setInterval(tick, 1000));
  tick();
  queueRender();
}

function stopLive() {
  if (watcher) watcher.close();
  watcher = null;
  for (const t of timers) clearInterval(t);
  timers = [];
}

// Whether op is a later version than known, the one kept so far. updated_at
// is RFC 3339 in UTC with milliseconds: it sorts as text. Within one
// millisecond the one seen last wins, except that a terminal state is not
// undone by a non-terminal one (it can only have come before).
function newer(op, known) {
  if (!known) return true;
  const a = op.updated_at || "", b = known.updated_at || "";
  if (a !== b) return a > b;
  return isTerminal(op.state) || !isTerminal(known.state);
}

// Keeps the newest version of each operation (an older one, e.g. a list
// row read before a change the watch already delivered, is dropped).
function remember(op) {
  if (!newer(op, ops.get(op.id))) return;
  ops.set(op.id, op);
  if (op.name && !names.has(op.name)) {
    names.add(op.name);
    const o = document.createElement("option");
    o.value = op.name;
    $("commands").append(o);
  }
  if (ops.size > MAX_KEPT) {
    for (const [id, o] of ops) {
      if (isTerminal(o.state)) { ops.delete(id); break; }
    }
  }
}

// -------------------------------------------------------------- operations

function filters() {
  return {
    state: $("f-state").value,
    name: $("f-name").value.trim(),
    since: Number($("f-since").value || 0),
    text: $("f-text").value.trim().toLowerCase(),
  };
}

function matches(op, f, now) {
  if (f.state && op.state !== f.state) return false;
  if (f.name && op.name !== f.name) return false;
  if (f.since && now - Date.parse(op.updated_at || op.created_at) > f.since * 1000) return false;
  if (f.text && !op.id.toLowerCase().includes(f.text) && !(op.resource || "").toLowerCase().includes(f.text)) return false;
  return true;
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    if (currentView === "ops") renderOps();
  });
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// Draws the newest MAX_ROWS matching operations; thousands more cost a
// filter pass, not DOM nodes. Rows are reused by id, so a state change
// touches one cell.
const rowCache = new Map();
function renderOps() {
  const f = filters();
  const now = Date.now();
  const all = [];
  for (const op of ops.values()) if (matches(op, f, now)) all.push(op);
  all.sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || "") || b.id.localeCompare(a.id));
  const shown = all.slice(0, MAX_ROWS);
  $("ops-count").textContent = all.length > shown.length
    ? `${all.length} operations match; the newest ${shown.length} are shown (narrow the filters to see others)`
    : `${all.length} operation${all.length === 1 ? "" : "s"}`;
  const body = $("ops-body");
  const rows = shown.map((op) => {
    let tr = rowCache.get(op.id);
    const key = op.state + op.updated_at;
    if (!tr || tr.dataset.key !== key) {
      tr = document.createElement("tr");
      tr.dataset.id = op.id;
      tr.dataset.key = key;
      tr.tabIndex = 0;
      tr.setAttribute("aria-label", `${op.name} ${op.id} ${op.state}`);
      tr.append(cell(op.id, "id"), cell(op.name), cell(op.state, `state state-${op.state}`), cell(op.resource || ""),
        cell(op.updated_at || ""));
      rowCache.set(op.id, tr);
    }
    return tr;
  });
  body.replaceChildren(...rows);
  if (rowCache.size > MAX_ROWS * 4) {
    const keep = new Set(shown.map((o) => o.id));
    for (const id of rowCache.keys()) if (!keep.has(id)) rowCache.delete(id);
  }
}

$("ops-body").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr) location.hash = "#/op/" + tr.dataset.id;
});
$("ops-body").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr");
  if (!tr) return;
  if (ev.key === "Enter") location.hash = "#/op/" + tr.dataset.id;
  if (ev.key === "ArrowDown" && tr.nextElementSibling) { ev.preventDefault(); tr.nextElementSibling.focus(); }
  if (ev.key === "ArrowUp" && tr.previousElementSibling) { ev.preventDefault(); tr.previousElementSibling.focus(); }
});
for (const id of ["f-state", "f-name", "f-since", "f-text"]) $(id).addEventListener("input", queueRender);
$("filters").addEventListener("submit", (ev) => ev.preventDefault());

// ----------------------------------------------------------- one operation

function pretty(v) {
  return v === undefined || v === null ? "—" : JSON.stringify(v, null, 2);
}

// The open operation as GET /operations/{id} showed it (a change from the
// watch has no request or params, so those are kept from here), and the
// newest document seen for it, from either: a GET answered after a newer
// change arrived must not show an older state.
let currentDetail = null;
let currentLatest = null;

// known: the operation as a change from the watch shows it; without it,
// the operation is read.
async function showOperation(id, known) {
  if (currentOp !== id) currentDetail = currentLatest = null;
  currentOp = id;
  let op = known;
  try {
    if (!op) op = await api.get(id);
  } catch (e) {
    $("op-title").textContent = "Operation " + id;
    $("op-message").textContent = e.message;
    return;
  }
  if (currentOp !== id) return;
  if (!known) currentDetail = op;
  // updated_at is RFC 3339 in UTC with milliseconds: it sorts as text.
  if (!currentLatest || op.updated_at >= currentLatest.updated_at) currentLatest = op;
  op = { ...currentDetail, ...currentLatest };
  remember(op);
  $("op-title").textContent = `${op.name} ${op.id}`;
  const dl = $("op-fields");
  dl.replaceChildren();
  for (const k of ["id", "name", "state", "origin", "resource", "attempt", "owner", "created_at", "updated_at"]) {
    if (op[k] === undefined) continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(op[k]);
    if (k === "state") { dd.className = `state state-${op.state}`; dd.id = "op-state"; }
    dl.append(dt, dd);
  }
  $("op-params").textContent = pretty(op.params);
  $("op-payload").textContent = pretty(op.request && op.request.body);
  // The outcome is the code (success, or the reason) and its message.
  $("op-outcome").textContent = op.code === null || op.code === undefined ? "—"
    : op.code + (op.message ? `: ${op.message}` : "");
  renderSteps(op.steps);
  const terminal = isTerminal(op.state);
  $("op-cancel").disabled = terminal;
  $("op-forget").disabled = !terminal;
  $("op-retry").disabled = !terminal || op.state === "completed";
  try {
    const h = await api.request("GET", `/operations/${encodeURIComponent(id)}/history`);
    if (currentOp !== id) return;
    const ol = $("op-history");
    ol.replaceChildren(...h.body.items.map((e) => {
      const li = document.createElement("li");
      const t = document.createElement("time");
      t.textContent = e.at || e.time || "";
      li.append(t, document.createTextNode(`${e.kind}${e.step ? " " + e.step : ""}${e.state ? " → " + e.state : ""}${e.detail ? " — " + JSON.stringify(e.detail) : ""}`));
      return li;
    }));
  } catch { /* the fields are still worth showing */ }
}

// A saga's steps (docs/design/sagas.md §7): one row per step, with its
// compensation's state; the part is hidden for a plain operation, which has
// no "steps". Redrawn whole on each change: a saga has at most 16 steps.
function renderSteps(steps) {
  const part = $("op-steps-part");
  part.hidden = !Array.isArray(steps) || steps.length === 0;
  if (part.hidden) return $("op-steps-body").replaceChildren();
  $("op-steps-body").replaceChildren(...steps.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.step = s.name;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = s.name;
    const c = s.compensation;
    let comp;
    if (c && typeof c === "object") {
      comp = cell(c.state + (c.state === "failed" && c.code ? ` (${c.code})` : ""), `state state-${c.state} comp`);
      comp.title = c.command ? `${c.command}, attempt ${c.attempt ?? 0}` : "";
    } else {
      comp = cell("not declared", "muted comp");
    }
    const code = cell(s.code ?? "—", s.code ? "" : "muted");
    if (s.message) code.title = s.message;
    tr.append(name, cell(s.service ?? ""), cell(s.state, `state state-${s.state}`), code,
      cell(String(s.attempt ?? 0), "num"), comp);
    return tr;
  }));
}

async function act(what, method, path) {
  const msg = $("op-message");
  msg.textContent = `${what}…`;
  try {
    await api.request(method, path);
    msg.textContent = `${what}: done`;
    return true;
  } catch (e) {
    msg.textContent = `${what}: ${e.message}`;
    return e;
  }
}

$("op-cancel").addEventListener("click", () => act("cancel", "POST", `/operations/${currentOp}/cancel`));
$("op-forget").addEventListener("click", async () => {
  if ((await act("forget", "DELETE", `/operations/${currentOp}`)) === true) {
    ops.delete(currentOp);
    location.hash = "#/ops";
  }
});
$("op-retry").addEventListener("click", async () => {
  const r = await act("retry", "POST", `/operations/${currentOp}/retry`);
  // A daemon without POST /operations/{id}/retry: hide the button.
  if (r instanceof ApiError && (r.status === 404 || r.status === 405) && r.code !== "operation_not_found") {
    $("op-retry").hidden = true;
    $("op-message").textContent = "this daemon has no retry";
  } else if (r === true) {
    // The retry is a new operation or the same one again: the list shows it live.
  }
});

// ------------------------------------------------------------------ workers

async function refreshWorkers() {
  try {
    const items = await api.workers();
    $("workers-body").replaceChildren(...items.map((w) => {
      const tr = document.createElement("tr");
      const { id, worker, service, services, last_seen, last_heard, ...rest } = w;
      tr.append(cell(id || worker || "?", "id"), cell(service || (services || []).join(", ")),
        cell(last_seen || last_heard || ""), cell(JSON.stringify(rest), "mono"));
      return tr;
    }));
    if (!items.length) $("workers-body").replaceChildren(Object.assign(document.createElement("tr"), { innerHTML: "<td colspan=4>no workers heard from</td>" }));
  } catch (e) {
    $("workers-body").replaceChildren(Object.assign(document.createElement("tr"), { textContent: e.message }));
  }
}

// -------------------------------------------------------------------- rates

const SERIES = [["accepted", "--processing"], ["completed", "--completed"], ["rejected", "--rejected"], ["failed", "--failed"]];
async function refreshRates() {
  let stats;
  try {
    stats = (await api.request("GET", "/stats")).body;
  } catch (e) {
    $("rates-note").textContent = e instanceof ApiError && e.status === 404
      ? "this daemon has no GET /stats" : `stats: ${e.message}`;
    return;
  }
  const rates = stats.rates || {};
  $("rates-note").textContent = `per second, over the last ${rates.window_s ?? "?"} s`;
  const canvas = $("rates-chart");
  const ctx = canvas.getContext("2d");
  const style = getComputedStyle(document.documentElement);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const series = SERIES.map(([k, color]) => [k, style.getPropertyValue(color).trim(), Array.isArray(rates[k]) ? rates[k] : []]);
  const n = Math.max(1, ...series.map((s) => s[2].length));
  const max = Math.max(1, ...series.flatMap((s) => s[2]));
  ctx.strokeStyle = style.getPropertyValue("--line").trim();
  ctx.strokeRect(0.5, 0.5, canvas.width - 1, canvas.height - 1);
  for (const [, color, values] of series) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / Math.max(1, n - 1)) * (canvas.width - 10) + 5;
      const y = canvas.height - 5 - (v / max) * (canvas.height - 20);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  $("rates-legend").replaceChildren(...series.map(([k, color, values]) => {
    const s = document.createElement("span");
    s.style.color = color;
    s.textContent = `${k}: ${values.length ? values[values.length - 1] : 0}/s`;
    return s;
  }));
  const dl = $("rates-counts");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(stats.counts || {})) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    dl.append(dt, dd);
  }
  $("rates-chart").setAttribute("aria-label", "per second: " + series.map(([k, , v]) => `${k} ${v.at(-1) ?? 0}`).join(", "));
}

// ------------------------------------------------------------------ routing

let viewTimer = null;
function route() {
  if (!api) return;
  const hash = location.hash || "#/ops";
  clearInterval(viewTimer);
  viewTimer = null;
  let view = "ops";
  currentOp = null;
  if (hash.startsWith("#/op/")) view = "op";
  else if (hash === "#/workers") view = "workers";
  else if (hash === "#/rates") view = "rates";
  currentView = view;
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "view-" + view;
  for (const [v, a] of [["ops", "nav-ops"], ["workers", "nav-workers"], ["rates", "nav-rates"]]) {
    if (v === view || (v === "ops" && view === "op")) $(a).setAttribute("aria-current", "page");
    else $(a).removeAttribute("aria-current");
  }
  if (view === "ops") renderOps();
  if (view === "op") {
    $("op-retry").hidden = false;
    $("op-message").textContent = "";
    showOperation(decodeURIComponent(hash.slice(5)));
  }
  if (view === "workers") { refreshWorkers(); viewTimer = setInterval(refreshWorkers, 2000); }
  if (view === "rates") { refreshRates(); viewTimer = setInterval(refreshRates, 1000); }
}

window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#token=")) return start();
  route();
});
start();
