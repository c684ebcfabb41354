// Issue 12, the proof: the official @microsoft/signalr client, unchanged,
// with accessTokenFactory, follows operations at /hubs/operations over
// WebSockets and over Server-Sent Events, and receives every change.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as signalR from "@microsoft/signalr";
import { System, eventually } from "./harness.mjs";

let sys;
before(async () => { sys = await System.start({ tokens: [["ann", "submitter"], ["bob", "submitter"]] }); });
after(async () => { await sys?.stop(); });

function connect(transport, token) {
  return new signalR.HubConnectionBuilder()
    .withUrl(sys.url + "/hubs/operations", { transport, accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
}

async function history(id) {
  const r = await sys.request("GET", `/operations/${id}/history`, { token: sys.tokens.ann });
  assert.equal(r.status, 200);
  return r.json.items;
}

for (const [name, transport] of [["WebSockets", signalR.HttpTransportType.WebSockets],
                                 ["ServerSentEvents", signalR.HttpTransportType.ServerSentEvents]]) {
  test(`@microsoft/signalr over ${name} receives every change of an operation`, async () => {
    const hub = connect(transport, sys.tokens.ann);
    const live = [];     // from SubscribeAll, made before the POST
    const replayed = []; // from Subscribe(id, 0) after it ended
    let replaying = false;
    hub.on("operationUpdated", (op) => { (replaying ? replayed : live).push(op); });
    await hub.start();
    assert.equal(hub.connection.transport.constructor.name,
      name === "WebSockets" ? "WebSocketTransport" : "ServerSentEventsTransport");
    await hub.invoke("SubscribeAll", { name: "create_user" });
    const created = await sys.request("POST", "/users", { token: sys.tokens.ann, body: { email: `${name}@example.com`, name } });
    assert.equal(created.status, 202);
    const id = created.json.id;
    await eventually(() => live.some((op) => op.id === id && op.state === "completed"), 20000, "completed over the hub");
    const mine = live.filter((op) => op.id === id);
    const entries = await history(id);
    // One operationUpdated per history entry, in order, ending completed.
    assert.equal(mine.length, entries.length, JSON.stringify({ mine, entries }));
    assert.equal(mine[0].state, "pending");
    assert.ok(mine.some((op) => op.state === "processing"));
    assert.equal(mine.at(-1).state, "completed");
    // Subscribe(id, 0) replays the same changes from the store.
    await hub.invoke("Unsubscribe", { name: "create_user" });
    replaying = true;
    await hub.invoke("Subscribe", id, 0);
    await eventually(() => replayed.length >= entries.length, 10000, "the replay");
    assert.deepEqual(replayed.map((op) => op.state), mine.map((op) => op.state));
    // Errors come back as rejected invocations.
    await assert.rejects(hub.invoke("Subscribe", "01900000-0000-7000-8000-000000000000"), /operation_not_found/);
    await hub.stop();
  });
}

test("the hub needs a token, scopes by owner, and never logs the token", async () => {
  const anonymous = new signalR.HubConnectionBuilder().withUrl(sys.url + "/hubs/operations")
    .configureLogging(signalR.LogLevel.None).build();
  await assert.rejects(anonymous.start(), /401/);
  const created = await sys.request("POST", "/users", { token: sys.tokens.ann, body: { email: "scoped@example.com", name: "S" } });
  const bob = connect(signalR.HttpTransportType.ServerSentEvents, sys.tokens.bob);
  await bob.start();
  await assert.rejects(bob.invoke("Subscribe", created.json.id), /operation_not_found/);
  await bob.stop();
  assert.ok(!sys.logs().includes(sys.tokens.ann), "the daemon's log holds ann's token");
  assert.ok(!sys.logs().includes(sys.tokens.bob), "the daemon's log holds bob's token");
});
