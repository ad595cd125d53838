// pi9's hypivisor face against a real `pi9 serve`: the registry protocol
// of hyper-pi message by message, the token, a pi-socket agent (a test
// double speaking pi-socket's protocol) as a window, the /ws/agent relay;
// and in-process, spawn_agent and the agent protocol pi9 serves itself.

import t from "tap";
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Hypivisor, queryToken, tokenMatches } from "../src/agents/hypivisor.js";
import { ScriptBackend } from "../src/agents/script.js";
import { buildNamespace } from "../src/namespace.js";
import { Client } from "../src/ninep/client.js";
import { nullLogger } from "../src/lib/log.js";
import { assistant, DOUBLE_TOOLS, PiSocketDouble, user } from "./helpers/pisocket-double.js";
import { freePort, runPi9, startServe } from "./helpers/serve.js";
import { httpGet, Lines, upgradeStatus, WsQueue } from "./helpers/ws.js";

const TOKEN = "s3+cr@tX";
const q = encodeURIComponent(TOKEN);

function makeHome(dir: string) {
  const home = path.join(dir, "home");
  for (const d of ["b", "a", ".hidden", "a/inner", "proj"]) mkdirSync(path.join(home, d), { recursive: true });
  writeFileSync(path.join(home, "file.txt"), "not a folder");
  symlinkSync(path.join(home, "a"), path.join(home, "link"));
  return realpathSync(home);
}

t.test("the token in the query: the first token=, percent-decoded as hypivisor does", async (t) => {
  const cases: [string, string | undefined][] = [
    ["/ws?token=a+b", "a+b"], ["/ws?token=a%2Bb", "a+b"], ["/ws?token=a%20b", "a b"], ["/ws?x=1&token=%E2%82%AC", "€"],
    ["/ws?token=50%off", "50%off"], ["/ws?token=50%", "50%"], ["/ws?token=%ff", undefined], ["/ws?token=a&token=b", "a"],
    ["/ws?tokens=a", undefined], ["/ws?token", undefined], ["/ws", undefined], ["/ws?token=", ""],
  ];
  for (const [url, want] of cases) t.equal(queryToken(url), want, url);
  t.ok(tokenMatches("s3+cr@tX", "s3+cr@tX"));
  t.notOk(tokenMatches("s3+cr@t", "s3+cr@tX"));
  t.notOk(tokenMatches(undefined, "x"));
  t.notOk(tokenMatches("", "x"));
});

t.test("registry: hyper-pi's protocol message by message, and the token", async (t) => {
  const tmp = t.testdir({});
  const home = makeHome(tmp);
  const s = await startServe({ http: true, env: { HOME: home, PI9_TOKEN: TOKEN }, args: ["--log-level", "debug"] });
  t.teardown(() => s.stop());
  const base = `ws://127.0.0.1:${s.httpPort}`;

  await t.test("a wrong or missing token gets HTTP 401 on every path", async (t) => {
    for (const p of ["/ws", "/ws/agent/x", "/nothing"]) {
      t.match(await upgradeStatus(`${base}${p}`), { status: 401, body: "Unauthorized" }, `${p} without a token`);
      t.match(await upgradeStatus(`${base}${p}?token=wrong`), { status: 401 }, `${p} with a wrong token`);
    }
    t.match(await upgradeStatus(`${base}/ws?token=${q}x`), { status: 401 }, "a longer token is wrong");
    t.match(await upgradeStatus(`${base}/ws?token=s3%20cr%40tX`), { status: 401 }, "'+' is not a space");
    t.match(await httpGet(`http://127.0.0.1:${s.httpPort}/ws`), { status: 401, body: "Unauthorized" }, "plain HTTP too");
    t.equal((await upgradeStatus(`${base}/ws?token=${q}`)).status, 101, "the right token, percent-encoded, opens /ws");
    t.equal((await upgradeStatus(`${base}/ws?foo=1&token=${TOKEN}`)).status, 101, "as given raw ('+' kept), after another parameter");
    t.match(await upgradeStatus(`${base}/elsewhere?token=${q}`), { status: 404, body: "Not Found" });
    t.match(await upgradeStatus(`${base}/ws/agent/?token=${q}`), { status: 400, body: "Missing node ID" });
  });

  const dash = await WsQueue.open(`${base}/ws?token=${q}`);
  t.teardown(() => dash.close());
  const c = await Client.connect(`unix!${s.sock}`, { aname: "/mnt/xenith", token: TOKEN });
  t.teardown(() => c.close());

  await t.test("init comes first, then requests get responses with their ids", async (t) => {
    t.same(await dash.next("init"), { event: "init", nodes: [], protocol_version: "1" });
    t.same(await dash.request("p1", "ping"), { id: "p1", result: { status: "healthy", nodes: 0, version: "0.1.0" } });
    t.same(await dash.request("u1", "frobnicate", {}), { id: "u1", error: "Method not found: frobnicate" });
    t.same(await dash.request("l0", "list_nodes"), { id: "l0", result: [] });
    // Not JSON, no method, a method that is no string, an array: dropped without a reply.
    for (const bad of ["not json", "{\"id\":\"x\"}", "{\"id\":\"y\",\"method\":5}", "[1,2]", "   "]) dash.send(bad);
    dash.send({ method: "ping" });
    t.same(await dash.next("the reply to an id-less ping"), { result: { status: "healthy", nodes: 0, version: "0.1.0" } }, "malformed frames got no reply; a request without id gets a response without id");
  });

  const port1 = await freePort();
  const node = (id: string, port: number, extra: Record<string, unknown> = {}) =>
    ({ id, machine: "127.0.0.1", cwd: path.join(home, "proj"), port, status: "active", pid: 4242, ...extra });
  const agentA = await WsQueue.open(`${base}/ws?token=${q}`);
  t.teardown(() => agentA.close());
  await agentA.next("init");

  await t.test("register: validation, node_joined to every client, list_nodes, ping", async (t) => {
    t.same(await agentA.request("r0", "register"), { id: "r0", error: "Missing params" });
    t.same(await agentA.request("r0", "register", { id: "n1", machine: "m", cwd: "/", port: "80", status: "active" }), { id: "r0", error: "Invalid node info" });
    t.same(await agentA.request("r0", "register", { id: "n1", machine: "m", cwd: "/", port: 80, status: "busy" }), { id: "r0", error: "Invalid node info" });
    t.same(await agentA.request("r0", "register", { id: "n1", machine: "m", cwd: "/", port: 70000, status: "active" }), { id: "r0", error: "Invalid node info" });
    const r = await agentA.request("reg", "register", node("n1", port1, { status: "offline", extra: "ignored" }));
    t.same(r, { id: "reg", result: { status: "registered" } });
    const j = await dash.take((m) => m.event === "node_joined", "node_joined");
    t.match(j.node, { id: "n1", machine: "127.0.0.1", cwd: path.join(home, "proj"), port: port1, status: "active", pid: 4242 });
    t.type(j.node.last_seen, "number");
    t.notOk("extra" in j.node, "unknown fields are not kept");
    t.notOk("offline_since" in j.node);
    await agentA.take((m) => m.event === "node_joined", "its own node_joined");
    const l = await dash.request("l1", "list_nodes");
    t.equal(l.result.length, 1);
    t.match(l.result[0], { id: "n1", status: "active" });
    t.match(await dash.request("p2", "ping"), { result: { nodes: 1 } });
    const idx = (await c.readAll("index")).toString();
    t.match(idx, /^\d+ pi-socket \S+ proj \S+\/proj$/m, "the agent is a window of kind pi-socket, named after its folder");
  });

  await t.test("list_directories: folders under HOME only, no dot names, no links, sorted", async (t) => {
    t.same(await dash.request("d1", "list_directories", {}), { id: "d1", result: { current: home, directories: ["a", "b", "proj"] } });
    t.same((await dash.request("d2", "list_directories", { path: 7 })).result.current, home, "a path that is no string means HOME");
    t.same(await dash.request("d3", "list_directories", { path: path.join(home, "a") }), { id: "d3", result: { current: path.join(home, "a"), directories: ["inner"] } });
    t.same(await dash.request("d4", "list_directories", { path: "/" }), { id: "d4", error: "Path resolves outside home directory" });
    t.same(await dash.request("d5", "list_directories", { path: path.join(home, "a", "..", "..") }), { id: "d5", error: "Path resolves outside home directory" });
    t.match(await dash.request("d6", "list_directories", { path: "" }), { id: "d6", error: /^Invalid path: / });
    t.match(await dash.request("d7", "list_directories", { path: path.join(home, "nope") }), { id: "d7", error: /^Invalid path: / });
    t.match(await dash.request("d8", "list_directories", { path: path.join(home, "file.txt") }), { id: "d8", error: /^Cannot read directory: / });
  });

  await t.test("spawn_agent: the errors hypivisor gives, nothing made outside HOME", async (t) => {
    t.same(await dash.request("s1", "spawn_agent"), { id: "s1", error: "Missing params" });
    t.same(await dash.request("s2", "spawn_agent", { path: path.join(home, "nope") }), { id: "s2", error: "Path does not exist" });
    t.same(await dash.request("s3", "spawn_agent", { path: "/" }), { id: "s3", error: "Path resolves outside home directory" });
    const outside = path.join(tmp, "outside-new");
    t.same(await dash.request("s4", "spawn_agent", { path: tmp, new_folder: " outside-new " }), { id: "s4", error: "Path resolves outside home directory" });
    t.notOk(existsSync(outside), "the folder outside HOME was not created");
    t.same(await dash.request("s5", "spawn_agent", { path: path.join(home, "link", "..", ".."), new_folder: "x" }), { id: "s5", error: "Path resolves outside home directory" });
  });

  await t.test("deregister: a node may remove only itself; a dashboard may remove any", async (t) => {
    t.same(await agentA.request("x1", "deregister", {}), { id: "x1", error: "Missing params.id" });
    t.same(await agentA.request("x2", "deregister", { id: "other" }), { id: "x2", error: "Unauthorized: cannot deregister another node" });
    t.same(await dash.request("x3", "deregister", { id: "ghost" }), { id: "x3", result: { status: "not_found" } });
    const ev = await Lines.open(c, "event");
    t.teardown(() => ev.stop());
    t.same(await agentA.request("x4", "deregister", { id: "n1" }), { id: "x4", result: { status: "deregistered" } });
    t.same(await dash.take((m) => m.event === "node_removed", "node_removed"), { event: "node_removed", id: "n1" });
    t.same((await dash.request("l2", "list_nodes")).result, []);
    await ev.take(/^status \d+ offline$/);
    t.match((await c.readAll("index")).toString(), /^\d+ pi-socket offline proj /m, "the window stays, offline");
  });

  await t.test("eviction by machine and port; a dropped registering socket makes the node offline", async (t) => {
    t.same((await agentA.request("r1", "register", node("n1", port1))).result, { status: "registered" });
    await dash.take((m) => m.event === "node_joined" && m.node.id === "n1", "node_joined n1");
    t.match((await c.readAll("index")).toString(), /^\d+ pi-socket idle proj /m, "the same window is back (revived)");
    t.equal((await c.readAll("index")).toString().split("\n").filter((l) => / pi-socket /.test(l)).length, 1, "one window, not two");
    const agentB = await WsQueue.open(`${base}/ws?token=${q}`);
    await agentB.next("init");
    t.same((await agentB.request("r2", "register", node("n2", port1))).result, { status: "registered" });
    t.same(await dash.take((m) => m.event === "node_removed", "node_removed by eviction"), { event: "node_removed", id: "n1" });
    t.match(await dash.take((m) => m.event === "node_joined", "node_joined n2"), { node: { id: "n2", port: port1 } });
    t.same((await dash.request("l3", "list_nodes")).result.map((n: any) => n.id), ["n2"]);
    // agentA registered n1, which is gone: it can still not remove n2.
    t.match(await agentA.request("x5", "deregister", { id: "n2" }), { error: "Unauthorized: cannot deregister another node" });
    // A heartbeat ping is answered.
    await new Promise<void>((resolve) => { agentB.ws.once("pong", () => resolve()); agentB.ws.ping(); });
    await agentB.close();
    t.same(await dash.take((m) => m.event === "node_offline", "node_offline"), { event: "node_offline", id: "n2" });
    const n2 = (await dash.request("l4", "list_nodes")).result[0];
    t.match(n2, { id: "n2", status: "offline" });
    t.type(n2.offline_since, "number");
    t.match((await dash.request("p3", "ping")).result, { nodes: 1 }, "offline nodes count (and stay listed)");
    const late = await WsQueue.open(`${base}/ws?token=${q}`);
    t.match(await late.next("init"), { event: "init", nodes: [{ id: "n2", status: "offline" }] }, "init lists offline nodes");
    await late.close();
  });

  await t.test("/ws/agent for unknown and offline agents: an error frame, then close", async (t) => {
    const a = await WsQueue.open(`${base}/ws/agent/nobody?token=${q}`);
    t.same(await a.next("error"), { error: "Agent not found" });
    await a.waitClosed();
    const b = await WsQueue.open(`${base}/ws/agent/n2?token=${q}`);
    t.same(await b.next("error"), { error: "Agent is offline" });
    await b.waitClosed();
  });

  await t.test("the token never appears in the log", async (t) => {
    t.notOk(s.stderr().includes(TOKEN), "not raw");
    t.notOk(s.stderr().includes(q), "not encoded");
    t.match(s.stderr(), /hypivisor: listening on http:\/\/127\.0\.0\.1:\d+ .*\(token required\)/);
  });
});

t.test("a pi-socket agent as a window: history, events, prompts, abort, messages, relay, offline and revive, del", async (t) => {
  const tmp = t.testdir({});
  const home = makeHome(tmp);
  const dbl = new PiSocketDouble();
  await dbl.start();
  t.teardown(() => dbl.close());
  const s = await startServe({ http: true, env: { HOME: home, PI9_TOKEN: "", HYPI_TOKEN: "" } });
  t.teardown(() => s.stop());
  const base = `ws://127.0.0.1:${s.httpPort}`;
  const c = await Client.connect(`unix!${s.sock}`, { aname: "/mnt/xenith" });
  t.teardown(() => c.close());
  const nsEv = await Lines.open(c, "event");
  t.teardown(() => nsEv.stop());
  const dash = await WsQueue.open(`${base}/ws`);
  t.teardown(() => dash.close());
  await dash.next("init");

  let release!: () => void;
  dbl.gate = new Promise((r) => (release = r));
  let reg = await WsQueue.open(`${base}/ws`);
  const info = { id: "sess-1", machine: "127.0.0.1", cwd: path.join(home, "proj"), port: dbl.port, status: "active", pid: 4242 };
  t.same((await reg.request("reg", "register", info)).result, { status: "registered" });
  const id = Number((await nsEv.take(/^new \d+ pi-socket proj$/)).split(" ")[1]);
  await dbl.until(() => dbl.conns.length === 1, "connection from pi9");
  const wev = await Lines.open(c, `${id}/event`);
  t.teardown(() => wev.stop());
  dbl.gate = null;
  release();

  await wev.take("message_end assistant");
  t.equal((await c.readAll(`${id}/body`)).toString(), "> hello\nHi there\n", "the history is the body");
  t.equal((await c.readAll(`${id}/tools`)).toString(), DOUBLE_TOOLS.map((x) => `${x.name}\t${x.description}\n`).join(""), "tools from init_state");
  t.match((await c.readAll(`${id}/ctl`)).toString(), new RegExp(`^${id} pi-socket idle proj `));
  t.match((await c.readAll(`${id}/info`)).toString(), /^node sess-1$/m);

  await c.writeFile(`${id}/ctl`, "prompt hi\n");
  await dbl.until(() => dbl.got.some(([, x]) => x === "hi"), "the prompt as a text frame");
  t.equal(await wev.take(/^prompt /), "prompt hi");
  await wev.take("agent_start");
  await nsEv.take(`status ${id} working`);
  t.equal(await wev.take(/^text /), "text Hel", "text deltas stream as event lines");
  t.equal(await wev.take(/^text /), "text lo!");
  await wev.take("message_end assistant");
  await wev.take("agent_end");
  await nsEv.take(`status ${id} idle`);
  const body1 = (await c.readAll(`${id}/body`)).toString();
  t.equal(body1, "> hello\nHi there\n> hi\n[bash] {\"command\":\"ls\"}\n[bash ok] a.txt\nHello!\n", "the streamed reply, with its tool call, is in the body");
  t.ok(wev.seen.includes('tool_start call_1 bash {"command":"ls"}'), "tool_start line");
  t.ok(wev.seen.includes("tool_end call_1 bash ok a.txt"), "tool_end line");

  await c.writeFile(`${id}/ctl`, "abort\n");
  await dbl.until(() => dbl.got.some(([, x]) => x === '{"type":"abort"}'), "abort frame");

  const before = dbl.got.length;
  const msgs = (await c.readAll(`${id}/messages`)).toString().trim().split("\n").map((l) => JSON.parse(l));
  t.same(msgs, dbl.history, "messages is the agent's own history, every page");
  const pages = dbl.got.slice(before).map(([, x]) => JSON.parse(x));
  t.ok(pages.length >= 2 && pages.every((p) => p.type === "fetch_history"), `asked with fetch_history, ${pages.length} pages`);

  await t.rejects(c.writeFile(`${id}/ctl`, "steer go left\n"), "steer is refused: pi-socket has no steering");
  t.match(await wev.take(/^error steer: /), /^error steer: pi-socket agents take no steering messages/, "the refused steer is an error event line");
  t.notOk(dbl.got.some(([, x]) => x.includes("go left")), "and nothing reached the agent");

  await t.test("/ws/agent/<id> relays to the agent's own socket", async (t) => {
    for (const name of ["sess-1", String(id)]) {
      const opened = dbl.conns.length;
      const r = await WsQueue.open(`${base}/ws/agent/${encodeURIComponent(name)}`);
      const init = await r.next("init_state");
      t.equal(init.type, "init_state", `${name}: init_state from the agent`);
      t.same(init.messages, dbl.history);
      t.equal(dbl.conns.length, opened + 1, "one upstream connection per client");
      r.send({ type: "list_commands" });
      t.same(await r.take((m) => m.type === "commands_list", "commands_list"), { type: "commands_list", commands: [{ name: "/double", description: "a test double" }] });
      await r.close();
      await dbl.until(() => dbl.conns[opened].readyState !== 1, "upstream closed with the client");
    }
  });

  await t.test("the registering socket drops: offline, never away; the same id revives the same window", async (t) => {
    await reg.close();
    await nsEv.take(`status ${id} offline`);
    await wev.take("status offline");
    t.match((await c.readAll("index")).toString(), new RegExp(`^${id} pi-socket offline proj `, "m"));
    t.same(await dash.take((m) => m.event === "node_offline", "node_offline"), { event: "node_offline", id: "sess-1" });
    await dbl.until(() => dbl.open === 0, "pi9 to drop its connection to the offline agent");
    await t.rejects(c.writeFile(`${id}/ctl`, "prompt anyone?\n"), "an offline agent takes no prompt");
    const off = await WsQueue.open(`${base}/ws/agent/sess-1`);
    t.same(await off.next(), { error: "Agent is offline" });

    // The agent worked on while pi9 did not see it.
    dbl.history.push(user("while away"), assistant([{ type: "text", text: "done" }], "stop"));
    const conns = dbl.conns.length;
    reg = await WsQueue.open(`${base}/ws`);
    t.same((await reg.request("reg", "register", info)).result, { status: "registered" });
    await nsEv.take(`status ${id} idle`);
    await dbl.until(() => dbl.conns.length === conns + 1 && dbl.open === 1, "pi9 to reconnect");
    await c.writeFile(`${id}/ctl`, "prompt again\n");
    await wev.take("agent_end");
    const body2 = (await c.readAll(`${id}/body`)).toString();
    t.equal(body2, body1 + "> while away\ndone\n> again\n[bash] {\"command\":\"ls\"}\n[bash ok] a.txt\nHello!\n", "the revived window shows what it missed, then goes on; the history is not shown twice");
    t.equal((await c.readAll("index")).toString().split("\n").filter((l) => / pi-socket /.test(l)).length, 1, "no second window");
    t.notOk(nsEv.seen.filter((l) => /^new /.test(l)).length > 1, "no new window event");
  });

  await t.test("del removes the window and deregisters; the agent keeps running", async (t) => {
    await c.writeFile(`${id}/ctl`, "del\n");
    await nsEv.take(`del ${id}`);
    t.same(await dash.take((m) => m.event === "node_removed", "node_removed"), { event: "node_removed", id: "sess-1" });
    t.same((await dash.request("l", "list_nodes")).result, []);
    await dbl.until(() => dbl.open === 0, "pi9 to close its connection");
    const direct = await WsQueue.open(`ws://127.0.0.1:${dbl.port}/`);
    t.equal((await direct.next("init_state")).type, "init_state", "the agent still serves");
    await direct.close();
    await reg.close();
  });
});

t.test("in process: spawn_agent through the spawn request, pi9's own agents in the roster and on /ws/agent", async (t) => {
  const tmp = t.testdir({});
  const home = makeHome(tmp);
  const ns = buildNamespace({ cwd: home, agents: { roots: [home] } });
  const spawned: string[] = [];
  ns.xenith.newVerbs.delete("spawn");
  const h = new Hypivisor(ns.xenith, ns.agents, { log: nullLogger, home });
  const at = await h.listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  t.teardown(() => h.close());
  t.match(at, /^http:\/\/127\.0\.0\.1:\d+$/);
  const base = `ws://127.0.0.1:${h.port}`;
  const dash = await WsQueue.open(`${base}/ws`);
  t.teardown(() => dash.close());
  await dash.next("init");

  t.same(await dash.request("s0", "spawn_agent", { path: path.join(home, "a") }), { id: "s0", error: "Failed to spawn: spawning agents is not available in this pi9" });
  ns.xenith.newVerbs.set("spawn", async (_v, args) => { spawned.push(args); return ns.xenith.createWindow("window", "fake").id; });
  t.same(await dash.request("s1", "spawn_agent", { path: path.join(home, "a") }), { id: "s1", result: { status: "spawning", path: path.join(home, "a") } });
  t.same(await dash.request("s2", "spawn_agent", { path: home, new_folder: " fresh/deep " }), { id: "s2", result: { status: "spawning", path: path.join(home, "fresh", "deep") } });
  t.ok(existsSync(path.join(home, "fresh", "deep")), "new_folder was made (mkdir -p)");
  t.same(spawned, [path.join(home, "a"), path.join(home, "fresh", "deep")], "the spawn request got the canonical folder");
  ns.xenith.newVerbs.set("spawn", async () => { throw new Error("pi: not found"); });
  t.same(await dash.request("s3", "spawn_agent", { path: home }), { id: "s3", error: "Failed to spawn: pi: not found" });

  // A scripted agent: pi9's own agent window, listed as a node and served on /ws/agent/<window id>.
  const wid = await ns.agents.script(`name=bot cwd=${path.join(home, "proj")}`);
  const joined = await dash.take((m) => m.event === "node_joined", "node_joined for pi9's agent");
  t.match(joined.node, { id: String(wid), machine: os.hostname(), cwd: path.join(home, "proj"), port: h.port, status: "active" });
  t.match((await dash.request("l", "list_nodes")).result, [{ id: String(wid) }]);
  const b = ns.agents.agents.get(wid)!.backend as ScriptBackend;
  const inbox = b.inbox.subscribe();
  const readInbox = async () => (await inbox.read(1 << 16, new AbortController().signal)).toString();

  writeFileSync(path.join(home, "proj", "main.ts"), "x");
  mkdirSync(path.join(home, "proj", "src"));
  writeFileSync(path.join(home, "proj", "src", "util.ts"), "x");
  writeFileSync(path.join(home, "proj", ".env"), "x");
  const a = await WsQueue.open(`${base}/ws/agent/${wid}`);
  t.same(await a.next("init_state"), { type: "init_state", messages: [], tools: [] });
  a.send("do the thing");
  t.equal(await readInbox(), "prompt do the thing\n", "a text frame is a prompt");
  a.send({ type: "abort" });
  t.equal(await readInbox(), "abort\n");
  a.send({ type: "list_commands" });
  t.same(await a.next(), { type: "commands_list", commands: [] });
  a.send({ type: "list_files" });
  const files = await a.next();
  t.same({ ...files, files: [...files.files].sort((x: any, y: any) => x.path.localeCompare(y.path)) },
    { type: "files_list", cwd: path.join(home, "proj"), files: [{ path: "main.ts", isDirectory: false }, { path: "src", isDirectory: true }] });
  a.send({ type: "list_files", prefix: "src/ut" });
  t.same(await a.next(), { type: "files_list", cwd: path.join(home, "proj"), files: [{ path: "src/util.ts", isDirectory: false }] });
  a.send({ type: "list_files", prefix: "../../x" });
  t.same(await a.next(), { type: "files_list", cwd: path.join(home, "proj"), files: [] }, "nothing outside cwd");
  a.send({ type: "fetch_history", before: 10, limit: 5 });
  t.same(await a.next(), { type: "history_page", messages: [], hasMore: false, oldestIndex: 0 });
  a.send({ type: "attach_file", filename: "n.txt", content: Buffer.from("note\n").toString("base64"), mimeType: "text/plain" });
  t.same(await a.next(), { type: "attach_file_ack", filename: "n.txt", success: true });
  t.equal(await readInbox(), "prompt [File: n.txt]\\nnote\\n\n", "the file went to the agent as a user message");
  a.send({ type: "attach_file", filename: "n.txt" });
  t.same(await a.next(), { type: "attach_file_ack", filename: "n.txt", success: false, error: "content is required" });
  a.send({ type: "attach_file", content: "eA==" });
  t.match(await a.next(), { type: "attach_file_ack", success: false, error: "filename is required" });

  // Native events of pi9's agents reach /ws/agent clients.
  const aw = ns.agents.agents.get(wid)!;
  aw.event({ type: "message_start", message: { role: "assistant", content: [] } });
  aw.event({ type: "turn_start" });
  aw.event({ type: "message_end", message: { role: "assistant", content: [{ type: "text", text: "ok" }], stopReason: "stop" } });
  t.same(await a.next(), { type: "message_start", message: { role: "assistant", content: [] } });
  t.same(await a.next(), { type: "message_end", message: { role: "assistant", content: [{ type: "text", text: "ok" }], stopReason: "stop" } }, "only the events pi-socket forwards");

  // The agent goes: its clients are closed, the roster says so.
  ns.xenith.setStatus(aw.w, "exited");
  await a.waitClosed();
  t.same(await dash.take((m) => m.event === "node_offline", "node_offline"), { event: "node_offline", id: String(wid) });
  const off = await WsQueue.open(`${base}/ws/agent/${wid}`);
  t.same(await off.next(), { error: "Agent is offline" });
  await aw.w.del();
  t.same(await dash.take((m) => m.event === "node_removed", "node_removed"), { event: "node_removed", id: String(wid) });
  inbox.close();
});

t.test("--http: beyond loopback only with a token; a busy port is named", async (t) => {
  const dir = t.testdir({});
  const r = await runPi9(["serve", "--listen", `unix!${path.join(dir, "s")}`, "--state", path.join(dir, "st"), "--http", "0.0.0.0:0"], { PI9_TOKEN: "", HYPI_TOKEN: "" });
  t.equal(r.code, 2);
  t.match(r.stderr, /refusing to serve HTTP on tcp!0\.0\.0\.0!0 without a token/);
  const s = await startServe({ http: true });
  t.teardown(() => s.stop());
  const busy = await runPi9(["serve", "--listen", `unix!${path.join(dir, "s2")}`, "--state", path.join(dir, "st"), "--http", `127.0.0.1:${s.httpPort}`]);
  t.equal(busy.code, 2);
  t.match(busy.stderr, new RegExp(`--http tcp!127\\.0\\.0\\.1!${s.httpPort}: address already in use`));
});
