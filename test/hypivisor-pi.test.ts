// A real pi (rpc mode, network-free faux model) with an extension that
// registers over the hypivisor protocol as pi-socket does
// (test/fixtures/hypi-socket.ts): it becomes a pi-socket window of pi9,
// takes prompts through ctl, streams its reply into body and event, and
// Pi-DE's path /ws/agent/<session id> reaches it.

import t from "tap";
import { underCI } from "./helpers/kit.js";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "../src/ninep/client.js";
import { piServeArgs } from "./helpers/pi.js";
import { childEnv, ROOT, startServe } from "./helpers/serve.js";
import { Lines, WsQueue } from "./helpers/ws.js";

const PI_CLI = path.join(ROOT, "node_modules", "@mariozechner", "pi-coding-agent", "dist", "cli.js");
const FAUX = path.join(ROOT, "test", "fixtures", "faux-provider.ts");
const HYPI = path.join(ROOT, "test", "fixtures", "hypi-socket.ts");
const TOKEN = "pi+9-token";

// Under CI a missing pi is a failure (the test below it fails), never a skip.
const piMissing = !existsSync(PI_CLI) && !underCI() && "pi is not installed";
t.test("pi is installed where CI runs", { skip: !underCI() && "only under CI" }, async (t) => {
  t.ok(existsSync(PI_CLI), `pi's CLI is at ${PI_CLI} (npm ci installs @mariozechner/pi-coding-agent)`);
});

t.test("pi with a pi-socket-like extension registers with pi9 and is driven through its window", { skip: piMissing }, async (t) => {
  const tmp = t.testdir({});
  const home = path.join(tmp, "home");
  const proj = path.join(home, "proj");
  mkdirSync(proj, { recursive: true });
  const agentDir = path.join(tmp, "pi-agent");
  mkdirSync(agentDir);
  const s = await startServe({ http: true, env: { HOME: home, PI9_TOKEN: TOKEN } });
  t.teardown(() => s.stop());
  const c = await Client.connect(`unix!${s.sock}`, { aname: "/mnt/xenith", token: TOKEN });
  t.teardown(() => c.close());
  const nsEv = await Lines.open(c, "event");
  t.teardown(() => nsEv.stop());
  const dash = await WsQueue.open(`ws://127.0.0.1:${s.httpPort}/ws?token=${encodeURIComponent(TOKEN)}`);
  t.teardown(() => dash.close());
  await dash.next("init");

  const pi = spawn(process.execPath, [PI_CLI, "--mode", "rpc", "--offline", "-ne", "-ns", "-np", "-nc", "-e", FAUX, "-e", HYPI, "--model", "faux/faux-1"], {
    cwd: proj,
    stdio: ["pipe", "pipe", "pipe"],
    env: childEnv({
      HOME: home, PI_CODING_AGENT_DIR: agentDir, PI_OFFLINE: "1", PI_TELEMETRY: "0",
      HYPIVISOR_WS: `ws://127.0.0.1:${s.httpPort}/ws`, HYPI_TOKEN: TOKEN,
    }),
  });
  let piErr = "";
  pi.stderr!.on("data", (d) => (piErr += d));
  pi.stdout!.resume();
  const piExit = new Promise<number | null>((r) => pi.once("exit", (code) => r(code)));
  t.teardown(async () => { if (pi.exitCode === null && pi.signalCode === null) { pi.kill("SIGKILL"); await piExit; } });

  const joined = await dash.take((m) => m.event === "node_joined", `node_joined (pi stderr: ${piErr})`);
  const sessionId: string = joined.node.id;
  t.match(joined.node, { machine: /./, cwd: realpathSync(proj), status: "active", pid: pi.pid });
  t.match(sessionId, /^[0-9a-f-]{36}$/, "the node id is pi's session id");
  const id = Number((await nsEv.take(/^new \d+ pi-socket proj$/)).split(" ")[1]);
  t.match((await c.readAll(`${id}/info`)).toString(), new RegExp(`^session ${sessionId}$`, "m"));
  const wev = await Lines.open(c, `${id}/event`);
  t.teardown(() => wev.stop());

  // The prompt waits for pi9's connection to the agent, whose first frame is init_state.
  await c.writeFile(`${id}/ctl`, "prompt hello pi\n");
  await wev.take("agent_start");
  t.match(await wev.take(/^text /), /^text e/, "text streams as event lines");
  await wev.take("agent_end");
  await nsEv.take(`status ${id} idle`);
  const body = (await c.readAll(`${id}/body`)).toString();
  t.equal(body, "> hello pi\necho: hello pi\n", "the prompt and the model's reply are the body");
  const texts = wev.seen.filter((l) => l.startsWith("text ")).map((l) => l.slice(5)).join("");
  t.equal(texts, "echo: hello pi", "the text lines add up to the reply");
  const tools = (await c.readAll(`${id}/tools`)).toString();
  t.match(tools, /^bash\t.+$/m, "pi's tools, from init_state");
  t.match(tools, /^read\t/m);

  const msgs = (await c.readAll(`${id}/messages`)).toString().trim().split("\n").map((l) => JSON.parse(l));
  t.same(msgs.map((m) => m.role), ["user", "assistant"], "messages from pi's own session, through fetch_history");
  t.match(msgs[1].content, [{ type: "text", text: "echo: hello pi" }]);

  // Pi-DE's way in: /ws/agent/<node id>, relayed to the extension's socket.
  const r = await WsQueue.open(`ws://127.0.0.1:${s.httpPort}/ws/agent/${encodeURIComponent(sessionId)}?token=${encodeURIComponent(TOKEN)}`);
  const init = await r.next("init_state");
  t.equal(init.type, "init_state");
  t.same(init.messages.map((m: any) => m.role), ["user", "assistant"]);
  t.ok(init.tools.some((x: any) => x.name === "bash"));
  r.send("second one");
  const end = await r.take((m) => m.type === "message_end" && m.message?.role === "assistant", "the assistant's message_end through the relay");
  t.match(end.message.content, [{ type: "text", text: "echo: second one" }]);
  await wev.take("agent_end");
  t.match((await c.readAll(`${id}/body`)).toString(), /> second one\necho: second one\n$/, "a prompt from the relay shows in the window too");
  await r.close();

  // pi goes away: its window goes offline and stays.
  pi.stdin!.end();
  pi.kill("SIGTERM");
  await piExit;
  await nsEv.take(`status ${id} offline`);
  t.match((await c.readAll("index")).toString(), new RegExp(`^${id} pi-socket offline proj `, "m"));
  const gone = await dash.take((m) => (m.event === "node_removed" || m.event === "node_offline") && m.id === sessionId, "node_removed or node_offline");
  t.ok(gone, `the registry says so (${gone.event})`);
});

t.test("spawn_agent starts pi as a window; /ws/agent/<window id> and /<session id> speak pi-socket's protocol for it", { skip: piMissing }, async (t) => {
  const base = t.testdir({});
  const home = path.join(base, "home");
  mkdirSync(home);
  const s = await startServe({ http: true, env: { HOME: home }, args: piServeArgs(base, { roots: [home] }) });
  t.teardown(() => s.stop());
  const c = await Client.connect(`unix!${s.sock}`, { aname: "/mnt/xenith" });
  t.teardown(() => c.close());
  const dash = await WsQueue.open(`ws://127.0.0.1:${s.httpPort}/ws`);
  t.teardown(() => dash.close());
  await dash.next("init");

  const proj = path.join(realpathSync(home), "proj");
  t.same(await dash.request("s", "spawn_agent", { path: home, new_folder: "proj" }), { id: "s", result: { status: "spawning", path: proj } });
  const joined = await dash.take((m) => m.event === "node_joined", "node_joined for the spawned pi");
  t.match(joined.node, { id: /^\d+$/, machine: os.hostname(), cwd: proj, port: s.httpPort, status: "active" });
  const wid = Number(joined.node.id);
  t.match((await c.readAll("index")).toString(), new RegExp(`^${wid} pi \\S+ proj ${proj}$`, "m"), "a pi window");
  const l = await dash.request("l", "list_nodes");
  t.match(l.result, [{ id: String(wid) }], "listed");
  t.type(l.result[0].pid, "number", "with pi's pid");
  const session = /^session (\S+)$/m.exec((await c.readAll(`${wid}/info`)).toString())![1];

  const a = await WsQueue.open(`ws://127.0.0.1:${s.httpPort}/ws/agent/${wid}`);
  const init = await a.next("init_state");
  t.same(init.messages, [], "a fresh session");
  t.ok(init.tools.some((x: any) => x.name === "bash" && typeof x.description === "string" && x.parameters), "pi's tools");
  a.send("hello from pi-de");
  t.match(await a.take((m) => m.type === "message_start", "message_start"), { message: { role: "user" } });
  t.ok(await a.take((m) => m.type === "message_update", "message_update"));
  const end = await a.take((m) => m.type === "message_end" && m.message?.role === "assistant", "assistant message_end");
  t.match(end.message.content, [{ type: "text", text: "echo: hello from pi-de" }]);
  const wev = await Lines.open(c, `${wid}/event`);
  t.teardown(() => wev.stop());
  if (!/ idle /.test((await c.readAll(`${wid}/ctl`)).toString())) await wev.take("status idle");
  t.notOk(a.frames.some((m) => m.type === "agent_end" || m.type === "turn_start"), "only the events pi-socket forwards");
  a.send({ type: "fetch_history", before: 100, limit: 1 });
  const page = await a.take((m) => m.type === "history_page", "history_page");
  t.same({ ...page, messages: page.messages.map((m: any) => m.role) }, { type: "history_page", messages: ["assistant"], hasMore: true, oldestIndex: 1 }, "paged from pi's own messages");
  t.match((await c.readAll(`${wid}/body`)).toString(), /> hello from pi-de\necho: hello from pi-de\n/, "the window shows it");

  const b = await WsQueue.open(`ws://127.0.0.1:${s.httpPort}/ws/agent/${session}`);
  t.same((await b.next("init_state")).messages.map((m: any) => m.role), ["user", "assistant"], "the session id names the same agent");
  await b.close();

  await c.writeFile(`${wid}/ctl`, "kill\n");
  await a.waitClosed();
  t.same(await dash.take((m) => m.event === "node_offline", "node_offline"), { event: "node_offline", id: String(wid) });
  await c.writeFile(`${wid}/ctl`, "del\n");
  t.same(await dash.take((m) => m.event === "node_removed", "node_removed"), { event: "node_removed", id: String(wid) });
});
