// The shared HTTP front (src/http/front.ts) and its limits, seen from raw
// sockets: an oversized body gets 413, a client that sends its headers one
// byte at a time is dropped after the header timeout while another client is
// served, a WebSocket message over its route's limit closes that socket only,
// the token is checked the same way on every route, errors are {error} JSON.

import net from "node:net";
import t from "tap";
import WebSocket from "ws";
import { HttpFront, sendJson } from "../src/http/front.js";
import { nullLogger } from "../src/lib/log.js";

async function start(t: { teardown(f: () => unknown): void }, opts: ConstructorParameters<typeof HttpFront>[0]) {
  const f = new HttpFront(opts);
  f.add({
    path: "/echo",
    http: async (req, res) => { const b = await f.readBody(req); sendJson(res, 200, { bytes: b.length }); },
  });
  f.add({ path: "/small", wsMaxPayload: 1024, ws: (ws) => ws.on("message", (d) => ws.send(d)) });
  f.add({ path: "/big", ws: (ws) => ws.on("message", (d) => ws.send(d)) });
  await f.listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  t.teardown(() => f.close());
  return f;
}

/** One raw HTTP exchange: what the server sent until it closed. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let out = "";
    s.on("data", (b) => { out += b.toString("latin1"); });
    s.on("close", () => resolve(out));
    s.on("error", reject);
    s.write(text);
  });
}

function post(port: number, path: string, body: Buffer, headers: Record<string, string> = {}) {
  return fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body: new Uint8Array(body), headers })
    .then(async (r) => ({ status: r.status, type: r.headers.get("content-type"), body: await r.text() }));
}

t.test("a body over the limit gets 413 with a JSON error; one within it is read", async (t) => {
  const f = await start(t, { log: nullLogger, limits: { maxBody: 1000 } });
  t.match(await post(f.port, "/echo", Buffer.alloc(1000, 97)), { status: 200, body: JSON.stringify({ bytes: 1000 }) });
  const r = await post(f.port, "/echo", Buffer.alloc(5000, 97));
  t.equal(r.status, 413);
  t.equal(r.type, "application/json");
  t.match(JSON.parse(r.body), { error: /over the limit of 1000/ });
  // Without a Content-Length (chunked), the limit holds as the bytes arrive.
  const chunked = await raw(f.port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + "800\r\n" + "a".repeat(0x800) + "\r\n0\r\n\r\n");
  t.match(chunked, /^HTTP\/1\.1 413 /);
  const nf = await fetch(`http://127.0.0.1:${f.port}/nowhere`);
  t.equal(nf.status, 404);
  t.same(await nf.json(), { error: "Not Found" });
});

t.test("a client sending headers one byte at a time is dropped after the header timeout; another is served meanwhile", async (t) => {
  const f = await start(t, { log: nullLogger, limits: { headersTimeoutMs: 1500, requestTimeoutMs: 1500 } });
  const slow = net.connect(f.port, "127.0.0.1");
  const req = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + "b".repeat(200) + "\r\n\r\n";
  let i = 0, got = "";
  slow.on("data", (b) => { got += b.toString("latin1"); });
  slow.on("error", () => {});
  await new Promise<void>((r) => slow.once("connect", () => r()));
  // One byte every 100 ms would take 20 s; the timeout is 1.5 s.
  const drip = setInterval(() => { if (i < req.length && !slow.destroyed) slow.write(req[i++]); }, 100);
  t.teardown(() => { clearInterval(drip); slow.destroy(); });
  // Meanwhile another client is served at once.
  const other = await post(f.port, "/echo", Buffer.from("hello"));
  t.match(other, { status: 200, body: JSON.stringify({ bytes: 5 }) }, "another client is served while the slow one drips");
  await new Promise<void>((r) => slow.once("close", () => r()));
  clearInterval(drip);
  t.ok(i < req.length, `the slow client was dropped before it finished its headers (${i} of ${req.length} bytes sent)`);
  t.match(got, /^(HTTP\/1\.1 408 |)/, "it is told 408 or just closed");
  t.match(await post(f.port, "/echo", Buffer.from("again")), { status: 200 }, "the server still serves");
});

t.test("a WebSocket message over its route's limit closes that socket only", async (t) => {
  const f = await start(t, { log: nullLogger });
  const open = (p: string) => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${f.port}${p}`);
    ws.once("open", () => resolve(ws)); ws.once("error", reject);
  });
  const a = await open("/small"), b = await open("/small"), c = await open("/big");
  t.teardown(() => { a.terminate(); b.terminate(); c.terminate(); });
  const echo = (ws: WebSocket, m: string) => new Promise<string>((r) => { ws.once("message", (d) => r(String(d))); ws.send(m); });
  t.equal(await echo(a, "x".repeat(1024)), "x".repeat(1024), "a message at the limit passes");
  const closed = new Promise<number>((r) => a.once("close", (code) => r(code)));
  a.on("error", () => {});
  a.send("y".repeat(1025));
  t.equal(await closed, 1009, "over the limit: closed with 1009 (message too big)");
  t.equal(await echo(b, "still here"), "still here", "another socket of the same route goes on");
  t.equal(await echo(c, "z".repeat(4096)), "z".repeat(4096), "a route with a larger limit takes more");
});

t.test("the token: ?token= or Bearer on every route, HTTP and upgrade alike", async (t) => {
  const f = await start(t, { log: nullLogger, token: "s3cret-token-1234" });
  const st = (path: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${f.port}${path}`, { method: "POST", body: "x", headers }).then(async (r) => ({ status: r.status, body: await r.text() }));
  t.match(await st("/echo"), { status: 401, body: JSON.stringify({ error: "Unauthorized" }) });
  t.match(await st("/echo?token=wrong"), { status: 401 });
  t.match(await st("/echo?token=s3cret-token-1234"), { status: 200 });
  t.match(await st("/echo", { Authorization: "Bearer s3cret-token-1234" }), { status: 200 });
  t.match(await st("/echo", { Authorization: "Bearer s3cret-token-123" }), { status: 401 });
  t.match(await st("/nowhere"), { status: 401 }, "an unknown path says nothing without the token");
  const up = await raw(f.port, "GET /small HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  t.match(up, /^HTTP\/1\.1 401 [^]*\{"error":"Unauthorized"\}$/);
});

t.test("the connection cap", async (t) => {
  const f = await start(t, { log: nullLogger, limits: { maxConnections: 3 } });
  const held: net.Socket[] = [];
  t.teardown(() => { for (const s of held) s.destroy(); });
  for (let i = 0; i < 3; i++) {
    const s = net.connect(f.port, "127.0.0.1");
    s.on("error", () => {});
    await new Promise<void>((r) => s.once("connect", () => r()));
    held.push(s);
  }
  // The fourth is accepted by the kernel and closed by the server at once.
  const fourth = await raw(f.port, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  t.equal(fourth, "", "over the cap: closed without an answer");
  held.pop()!.destroy();
  // Once one went away a new client is served (wait for the server to see the close).
  let served = "";
  for (let i = 0; i < 50 && !served.startsWith("HTTP/1.1 404"); i++) {
    served = await raw(f.port, "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }
  t.match(served, /^HTTP\/1\.1 404 /);
});
