// Issue 12: the live console (/ui) and the JavaScript client in headless
// Chromium (Debian's chromium, driven by playwright-core). Screenshots go
// to $ASYNCOPS_TEST_ARTIFACTS (the build dir's browser-artifacts/).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { System, eventually } from "./harness.mjs";

const artifacts = process.env.ASYNCOPS_TEST_ARTIFACTS || "browser-artifacts";
const executablePath = process.env.CHROMIUM_BIN || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
let sys, idle, browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  if (!executablePath) throw new Error("chromium is not installed: bash .ci/web-deps installs it");
  [sys, idle] = await Promise.all([
    System.start({ tokens: [["ann", "submitter"]] }),
    System.start({ tokens: [["ann", "submitter"]], workers: 0 }),  // its operations stay pending
  ]);
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
});
after(async () => {
  await browser?.close();
  await Promise.all([sys?.stop(), idle?.stop()]);
});

async function loggedIn(system, { colorScheme = "light" } = {}) {
  const context = await browser.newContext({ colorScheme, viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${system.url}/ui#token=${system.tokens.ann}`);
  await page.locator("#ops-table").waitFor();
  return page;
}

async function post(system, email) {
  const r = await system.request("POST", "/users", { token: system.tokens.ann, body: { email, name: "B" } });
  assert.equal(r.status, 202);
  return r.json.id;
}

test("token login: the form, a wrong token, and a /ui#token= link that leaves no token in the URL", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${sys.url}/ui`);
  await page.getByLabel("API token").fill("aot_wrong");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("that token was refused").waitFor();
  await page.getByLabel("API token").fill(sys.tokens.ann);
  await page.keyboard.press("Enter");
  await page.locator("#ops-table").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("asyncops.token")), sys.tokens.ann);
  await page.screenshot({ path: join(artifacts, "console-login.png") });
  await context.close();
  const linked = await loggedIn(sys);
  assert.ok(!linked.url().includes(sys.tokens.ann), linked.url());
  await linked.context().close();
});

test("a POST made elsewhere appears and turns completed without a reload; filters narrow the rows", async () => {
  const page = await loggedIn(sys);
  await page.locator("#live.on").waitFor();
  const navigations = [];
  page.on("framenavigated", (f) => navigations.push(f.url()));
  const id = await post(sys, "live@example.com");
  const row = page.locator(`tr[data-id="${id}"]`);
  await row.waitFor();
  await row.locator(".state-completed").waitFor({ timeout: 20000 });
  const other = await post(sys, "other@example.com");
  await page.locator(`tr[data-id="${other}"] .state-completed`).waitFor({ timeout: 20000 });
  assert.equal(navigations.filter((u) => !u.includes("#")).length, 0);
  await page.screenshot({ path: join(artifacts, "console-live.png") });
  // Text search on the id: one row.
  await page.getByLabel("Search").fill(id.slice(-12));
  await page.waitForFunction(() => document.querySelectorAll("#ops-body tr").length === 1);
  assert.equal(await page.locator("#ops-body tr").getAttribute("data-id"), id);
  await page.getByLabel("Search").fill("");
  // By state: nothing is pending here, and both are completed.
  await page.getByLabel("State").selectOption("pending");
  await page.waitForFunction(() => document.querySelectorAll("#ops-body tr").length === 0);
  await page.getByLabel("State").selectOption("completed");
  await page.waitForFunction(() => document.querySelectorAll("#ops-body tr").length >= 2);
  // By command.
  await page.getByLabel("Command").fill("delete_user");
  await page.waitForFunction(() => document.querySelectorAll("#ops-body tr").length === 0);
  await page.getByLabel("Command").fill("create_user");
  await page.waitForFunction(() => document.querySelectorAll("#ops-body tr").length >= 2);
  await page.screenshot({ path: join(artifacts, "console-filtered.png") });
  // Keyboard: focus a row and open it with Enter.
  await page.locator(`tr[data-id="${id}"]`).focus();
  await page.keyboard.press("Enter");
  await page.locator("#op-history li").first().waitFor();
  assert.ok((await page.locator("#op-history li").count()) >= 3);
  // The request's body and the outcome (the operation's code).
  assert.match(await page.locator("#op-payload").textContent(), /"email": "live@example.com"/);
  assert.equal(await page.locator("#op-outcome").textContent(), "success");
  await page.screenshot({ path: join(artifacts, "console-operation.png"), fullPage: true });
  await page.context().close();
});

test("a change committed while the console reads its list shows without a reload, and the older list does not undo it", async () => {
  // On the system without a worker: "held" and "listed" are pending before
  // the console opens. The console's list read is held (page.route) while
  // "held" is canceled and "added" submitted, then answered with the list
  // as it was before those changes.
  const held = await post(idle, "held@example.com");
  const listed = await post(idle, "listed@example.com");
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  let subscribed = false;  // the console's WebSocket got {"subscribed": ...}
  page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
    try { if (JSON.parse(String(payload)).subscribed !== undefined) subscribed = true; } catch { /* not JSON */ }
  }));
  let added = null, watchingAtList = null, listReads = 0;
  await page.route((url) => url.pathname === "/operations" && url.searchParams.get("limit") === "1000", async (route) => {
    listReads++;
    const before = await route.fetch();
    watchingAtList = subscribed;
    const r = await idle.request("POST", `/operations/${held}/cancel`, { token: idle.tokens.ann });
    added = await post(idle, "added@example.com");
    // With the watch subscribed first, both changes reach the page before
    // the older list does; without it, nothing would deliver them.
    if (watchingAtList && r.status < 300) {
      await page.locator(`tr[data-id="${held}"] .state-canceled`).waitFor({ timeout: 15000 });
      await page.locator(`tr[data-id="${added}"] .state-pending`).waitFor({ timeout: 15000 });
    }
    await route.fulfill({ response: before });
  });
  await page.goto(`${idle.url}/ui#token=${idle.tokens.ann}`);
  await eventually(() => added, 15000, "the console to read its list");
  // "listed" comes only from the list: once it shows, the list is in.
  await page.locator(`tr[data-id="${listed}"] .state-pending`).waitFor({ timeout: 15000 });
  await page.locator(`tr[data-id="${added}"] .state-pending`).waitFor({ timeout: 15000 });
  assert.equal(await page.locator(`tr[data-id="${held}"] .state`).textContent(), "canceled");
  assert.equal(watchingAtList, true, "the console read its list before its watch had subscribed");
  assert.equal(listReads, 1);
  await context.close();
});

test("the cancel button cancels a pending operation", async () => {
  const page = await loggedIn(idle, { colorScheme: "dark" });
  const id = await post(idle, "cancel@example.com");
  await page.locator(`tr[data-id="${id}"] .state-pending`).waitFor();
  await page.locator(`tr[data-id="${id}"]`).click();
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("#op-state.state-canceled").waitFor({ timeout: 20000 });
  // The change came from the watch, which carries no request: the payload stays.
  assert.match(await page.locator("#op-payload").textContent(), /"email": "cancel@example.com"/);
  assert.match(await page.locator("#op-outcome").textContent(), /^canceled/);
  const r = await idle.request("GET", `/operations/${id}`, { token: idle.tokens.ann });
  assert.equal(r.json.state, "canceled");
  await page.screenshot({ path: join(artifacts, "console-canceled-dark.png"), fullPage: true });
  await page.context().close();
});

test("the JavaScript client's submit follows by push, and still finishes with WebSocket and SSE blocked", async () => {
  const page = await loggedIn(sys);
  const run = (email) => page.evaluate(async ([token, email]) => {
    const { AsyncOps } = await import("/asyncops.js");
    const api = new AsyncOps({ token });
    const op = await api.submit("POST", "/users", { email, name: "JS" });
    return { state: op.state, transport: api.lastTransport };
  }, [sys.tokens.ann, email]);
  assert.deepEqual(await run("push@example.com"), { state: "completed", transport: "websocket" });
  // Block the WebSocket and every event stream: long-polling finishes it.
  await page.routeWebSocket(/\/ws/, (ws) => ws.close());
  await page.route(/\/events/, (route) => route.abort());
  assert.deepEqual(await run("blocked@example.com"), { state: "completed", transport: "poll" });
  await page.context().close();
});

// Issue 14: a saga's steps. The daemon cannot run a saga yet, so a plain
// pending operation stands in: the console's read of it (GET) and the
// WebSocket frames about it are rewritten into a saga's documents
// (docs/design/sagas.md §7), and a real cancel moves it on live.
function sagaSteps(state) {
  const step = (name, service, command, st, extra = {}) => ({
    name, service, command, state: st, code: null, message: null, attempt: 0,
    started_at: null, ended_at: null, compensation: null, ...extra,
  });
  const comp = (command, st, extra = {}) => ({
    command, state: st, code: null, message: null, attempt: 0, started_at: null, ended_at: null, ...extra,
  });
  if (state === "canceled") {
    return [
      step("reserve", "inventory", "reserve_stock", "completed", { code: "success", attempt: 1,
        compensation: comp("release_stock", "completed", { code: "success", attempt: 1 }) }),
      step("charge", "payments", "charge_card", "canceled", { code: "canceled", attempt: 2,
        compensation: comp("refund_card", "none") }),
      step("create", "orders", "create_order", "skipped"),
    ];
  }
  return [
    step("reserve", "inventory", "reserve_stock", "completed", { code: "success", attempt: 1,
      compensation: comp("release_stock", "none") }),
    step("charge", "payments", "charge_card", "processing", { attempt: 2, compensation: comp("refund_card", "none") }),
    step("create", "orders", "create_order", "waiting"),
  ];
}

async function stepRows(page) {
  return page.getByRole("table", { name: "Steps" }).locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.children].map((c) => c.textContent)));
}

test("a saga's steps show as a labelled table that follows each change live, in light and dark", async () => {
  const id = await post(idle, "saga@example.com");
  const plain = await post(idle, "plain@example.com");
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const asSaga = (op) => ({ ...op, name: "place_order", steps: sagaSteps(op.state) });
  let rewritten = 0;
  await context.routeWebSocket(/\/ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      let frame = null;
      try { frame = JSON.parse(String(m)); } catch { /* not JSON */ }
      if (frame && frame.operation && frame.operation.id === id) {
        rewritten++;
        return ws.send(JSON.stringify({ ...frame, operation: asSaga(frame.operation) }));
      }
      ws.send(m);
    });
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.route((url) => url.pathname === `/operations/${id}`, async (route) => {
    const r = await route.fetch();
    await route.fulfill({ response: r, json: asSaga(await r.json()) });
  });
  await page.route((url) => url.pathname === `/operations/${id}/history`, async (route) => {
    const r = await route.fetch();
    const body = await r.json();
    const at = body.items[0].at;
    body.items.push({ seq: 1e9, kind: "step_completed", state: "processing", code: null, message: null, at, step: "reserve" },
      { seq: 1e9 + 1, kind: "step_redelivered", state: "processing", code: null, message: null, at, step: "charge" });
    await route.fulfill({ response: r, json: body });
  });
  await page.goto(`${idle.url}/ui#token=${idle.tokens.ann}`);
  await page.locator("#live.on").waitFor();
  await page.goto(`${idle.url}/ui#/op/${id}`);
  const table = page.getByRole("table", { name: "Steps" });
  await table.waitFor();
  await eventually(async () => (await stepRows(page)).length === 3, 15000, "three step rows");
  assert.deepEqual(await stepRows(page), [
    ["reserve", "inventory", "completed", "success", "1", "none"],
    ["charge", "payments", "processing", "—", "2", "none"],
    ["create", "orders", "waiting", "—", "0", "not declared"],
  ]);
  const headers = await table.locator("thead th").allTextContents();
  assert.deepEqual(headers, ["Step", "Service", "State", "Code", "Attempt", "Compensation"]);
  await page.locator("#op-history li", { hasText: "step_completed reserve" }).waitFor();
  await page.screenshot({ path: join(artifacts, "console-saga.png"), fullPage: true });

  // A real change (the cancel) arrives through the WebSocket as the saga's
  // next document: the table follows without a reload.
  const r = await idle.request("POST", `/operations/${id}/cancel`, { token: idle.tokens.ann });
  assert.ok(r.status < 300, r.text);
  await page.locator("#op-state.state-canceled").waitFor({ timeout: 20000 });
  await eventually(async () => (await stepRows(page))[1]?.[2] === "canceled", 15000, "the charge step canceled");
  assert.deepEqual(await stepRows(page), [
    ["reserve", "inventory", "completed", "success", "1", "completed"],
    ["charge", "payments", "canceled", "canceled", "2", "none"],
    ["create", "orders", "skipped", "—", "0", "not declared"],
  ]);
  assert.ok(rewritten >= 1, "no WebSocket frame of the operation was seen");
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: join(artifacts, "console-saga-dark.png"), fullPage: true });

  // A plain operation has no steps part.
  await page.goto(`${idle.url}/ui#/op/${plain}`);
  await page.locator("#op-title", { hasText: plain }).waitFor();
  assert.equal(await page.locator("#op-steps-part").isHidden(), true);
  assert.equal(await page.getByRole("table", { name: "Steps" }).count(), 0);
  await context.close();
});
