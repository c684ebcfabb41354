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
