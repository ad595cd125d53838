// Spawned pi agents through the project's 9P client, against a real
// `pi9 serve` that runs real pi children (pi-coding-agent in RPC mode) with a
// scripted, network-free model (test/fixtures/faux-provider.ts): spawn,
// prompt, events, body, tools, steer, follow-ups, abort, model, messages,
// info, new, compact, kill, del, crashes, floods and shutdown, and never a pi
// left behind.

import t from "tap";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client, NinepError } from "../src/ninep/client.js";
import { startServe, Served } from "./helpers/serve.js";
import { alive, BIG, EventReader, LONG, newRequest, parseInfo, piServeArgs, poll, processesIn } from "./helpers/pi.js";

const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), "pi9-agents-")));
const pids = new Set<number>();
let served: Served;
let c: Client;
/** A 9P2000.u connection: its errors carry the server's words (pi's own messages). */
let cu: Client;

const X = "/mnt/xenith";
const read = async (p: string, cl = c) => (await cl.readAll(p)).toString("utf8");
const ctl = (id: number, line: string, cl = c) => cl.writeFile(`${X}/${id}/ctl`, line + "\n");
const info = async (id: number) => parseInfo(await read(`${X}/${id}/info`));
const status = async (id: number) => (await read(`${X}/${id}/ctl`)).split(" ")[2];

/** The server's message for a refused write, read over 9P2000.u. */
async function refusal(p: string, data: string): Promise<string> {
  try { await cu.writeFile(p, data); } catch (e) { return e instanceof NinepError ? e.serverMessage : String(e); }
  return "(accepted)";
}

async function spawnAgent(name: string, extra = ""): Promise<number> {
  const id = await newRequest(c, `spawn ${path.join(base, name)} mkdir name=${name} model=faux/faux-1${extra}`);
  const pid = Number((await info(id)).pid);
  if (pid) pids.add(pid);
  return id;
}

/** Events between an agent's turn starting and ending, once the agent is idle again. */
async function runPrompt(id: number, text: string) {
  const ev = await EventReader.open(c, `${X}/${id}/event`);
  try {
    await ctl(id, `prompt ${text}`);
    return await ev.until((l) => l.includes("agent_end"), "agent_end");
  } finally { await ev.close(); }
}

t.before(async () => {
  served = await startServe({ args: piServeArgs(base) });
  c = await Client.connect(`unix!${served.sock}`);
  cu = await Client.connect(`unix!${served.sock}`, { dialect: "9P2000.u" });
});

t.teardown(async () => {
  await c?.close().catch(() => {});
  await cu?.close().catch(() => {});
  await served?.stop();
  rmSync(base, { recursive: true, force: true });
});

t.test("spawn, prompt: events, body, index and log", async (t) => {
  const lifecycle = await EventReader.open(c, `${X}/event`);
  const id = await spawnAgent("alpha");
  t.ok(id > 0, "spawn returned a window id");
  t.ok(existsSync(path.join(base, "alpha")), "mkdir made the folder");
  t.equal((await read(`${X}/index`)).split("\n").find((l) => l.startsWith(`${id} `)), `${id} pi idle alpha ${path.join(base, "alpha")}`);
  await lifecycle.until((l) => l.includes(`new ${id} pi alpha`), "new line on /mnt/xenith/event");
  const ev = await runPrompt(id, "say hi");
  const kinds = ev.map((l) => l.split(" ")[0]);
  t.ok(kinds.indexOf("prompt") < kinds.indexOf("agent_start") && kinds.indexOf("agent_start") < kinds.indexOf("text") &&
    kinds.lastIndexOf("text") < kinds.indexOf("agent_end"), `prompt, agent_start, text…, agent_end in order:\n${ev.join("\n")}`);
  t.equal(ev[0], "prompt say hi");
  t.equal(ev.filter((l) => l.startsWith("text ")).map((l) => l.slice(5)).join(""), "Hi there!", "the text deltas make the reply");
  t.ok(ev.includes("status working") && ev.includes("status idle"), "status lines");
  t.ok(ev.includes("turn_start 1") && ev.includes("turn_end 1") && ev.includes("message_end user") && ev.includes("message_end assistant"));
  t.equal(await read(`${X}/${id}/body`), "> say hi\nHi there!\n", "body: the prompt quoted, then the reply");
  t.equal(await status(id), "idle");
  await lifecycle.until((l) => l.includes(`status ${id} working`) && l.includes(`status ${id} idle`), "status lines on /mnt/xenith/event");
  await lifecycle.close();
  t.match(await read(`${X}/log`), new RegExp(`new ${id} pi alpha\n`), "the log has the new window");
  await t.rejects(c.writeFile(`${X}/${id}/body`, "no"), "an agent's body is written by the agent only");
});

t.test("a reply that calls the bash tool: tool_start, tool_end, the file on disk", async (t) => {
  const id = await spawnAgent("bash");
  const ev = await runPrompt(id, "run bash");
  const start = ev.find((l) => l.startsWith("tool_start "));
  const end = ev.find((l) => l.startsWith("tool_end "));
  t.match(start, /^tool_start \S+ bash \{"command":"echo hi > out.txt; echo made out.txt"\}$/);
  t.match(end, /^tool_end \S+ bash ok made out\.txt$/);
  t.equal(start!.split(" ")[1], end!.split(" ")[1], "same call id");
  t.equal(readFileSync(path.join(base, "bash", "out.txt"), "utf8"), "hi\n", "the tool ran in the agent's folder");
  t.equal(await read(`${X}/${id}/body`),
    '> run bash\nRunning it.\n[bash] {"command":"echo hi > out.txt; echo made out.txt"}\n[bash ok] made out.txt\nThe file is written.\n');
  t.equal(ev.filter((l) => l.startsWith("turn_start")).length, 2, "two turns: the tool call, then the answer");
});

t.test("steer during a paced reply is delivered before the next model call", async (t) => {
  const id = await spawnAgent("steer");
  const ev = await EventReader.open(c, `${X}/${id}/event`);
  await ctl(id, "prompt write a lot");
  await ev.until((l) => l.some((x) => x.startsWith("text ")), "the reply streaming");
  await ctl(id, "steer say steered");
  await ev.until((l) => l.includes("agent_end"), "agent_end");
  await ev.close();
  t.ok(ev.lines.includes("steer say steered"), "the steer event");
  t.equal(ev.count("agent_start"), 1, "one run: the steer joined it");
  const msgs = (await read(`${X}/${id}/messages`)).trim().split("\n").map((l) => JSON.parse(l));
  t.same(msgs.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
  t.equal(msgs[1].content[0].text, LONG, "the paced reply finished first");
  t.equal(msgs[2].content[0].text, "say steered");
  t.equal(msgs[3].content[0].text, "Steered reply.");
  t.equal(await read(`${X}/${id}/body`), `> write a lot\n${LONG}\n> say steered\nSteered reply.\n`);
  // pi's own steer and follow_up would wait in its queue for the next prompt; an idle agent runs them now.
  for (const verb of ["steer", "followup"]) {
    const ev2 = await EventReader.open(c, `${X}/${id}/event`);
    await ctl(id, `${verb} say hi`);
    await ev2.until((l) => l.includes("agent_end"), `agent_end after an idle ${verb}`);
    await ev2.close();
    t.equal(ev2.lines[0], `${verb} say hi`);
    t.match(await read(`${X}/${id}/body`), /> say hi\nHi there!\n$/, `an idle agent answers a ${verb} at once`);
  }
});

t.test("U+2028 inside pi's lines and lines of hundreds of kB arrive whole", async (t) => {
  const id = await spawnAgent("wire");
  let ev = await runPrompt(id, "separators");
  t.equal(ev.filter((l) => l.startsWith("text ")).map((l) => l.slice(5)).join(""), "line\u2028separator\u2029paragraph");
  t.equal(await read(`${X}/${id}/body`), "> separators\nline\u2028separator\u2029paragraph\n");
  ev = await runPrompt(id, "big");
  t.equal(ev.filter((l) => l.startsWith("text ")).map((l) => l.slice(5)).join(""), BIG, "the text event");
  t.ok((await read(`${X}/${id}/body`)).endsWith(`> big\n${BIG}\n`), "the body");
  const msgs = (await read(`${X}/${id}/messages`)).trim().split("\n").map((l) => JSON.parse(l));
  t.equal(msgs[1].content[0].text, "line\u2028separator\u2029paragraph");
  t.equal(msgs[3].content[0].text, BIG, "get_messages, a line of over 300 kB");
});

t.test("prompt while busy becomes a follow-up and says so; abort stops a paced reply", async (t) => {
  const id = await spawnAgent("busy");
  const ev = await EventReader.open(c, `${X}/${id}/event`);
  await ctl(id, "prompt write a lot");
  await ev.until((l) => l.some((x) => x.startsWith("text ")), "the reply streaming");
  t.equal(await status(id), "working");
  await ctl(id, "prompt say hi");
  await ev.until((l) => l.includes("agent_end"), "agent_end");
  t.ok(ev.lines.includes("followup say hi"), "a busy prompt is announced as a followup");
  t.notOk(ev.lines.includes("prompt say hi"));
  let msgs = (await read(`${X}/${id}/messages`)).trim().split("\n").map((l) => JSON.parse(l));
  t.same(msgs.slice(-2).map((m) => m.content[0].text), ["say hi", "Hi there!"], "the follow-up ran after the reply");

  ev.lines = [];
  await ctl(id, "prompt write a lot");
  await ev.until((l) => l.some((x) => x.startsWith("text ")), "the second reply streaming");
  await ctl(id, "abort");
  t.equal(await status(id), "idle", "abort returns once the run has ended");
  await ev.until((l) => l.includes("agent_end"), "agent_end");
  await ev.close();
  msgs = (await read(`${X}/${id}/messages`)).trim().split("\n").map((l) => JSON.parse(l));
  const last = msgs[msgs.length - 1];
  t.equal(last.stopReason, "aborted", "pi recorded the reply as aborted");
  t.ok(last.content.length === 0 || last.content[0].text.length < LONG.length, "the reply stopped short");
  t.equal((await runPrompt(id, "say hi")).filter((l) => l.startsWith("text ")).map((l) => l.slice(5)).join(""), "Hi there!", "the agent works after an abort");
});

t.test("model, tools, messages, info, new, compact", async (t) => {
  const id = await spawnAgent("ctl");
  const ev = await EventReader.open(c, `${X}/${id}/event`);
  t.equal(await refusal(`${X}/${id}/ctl`, "model nope/missing\n"), "Model not found: nope/missing", "pi's own refusal fails the write");
  await ev.until((l) => l.includes("error model: Model not found: nope/missing"), "the refusal as an error event");
  await ev.close();
  await t.rejects(ctl(id, "model nope/missing"), "over 9P2000.L too");
  await t.rejects(ctl(id, "model faux"), "not provider/id");
  t.equal((await info(id)).model, "faux/faux-1");
  await ctl(id, "model faux/faux-2");
  t.equal((await info(id)).model, "faux/faux-2", "info follows the model");

  const tools = (await read(`${X}/${id}/tools`)).trim().split("\n").map((l) => l.split("\t"));
  t.same(tools.map((x) => x[0]).sort(), ["bash", "edit", "read", "write"], "pi's active tools, from pi");
  t.ok(tools.every((x) => x.length === 2 && x[1].length > 10), "each with pi's description");

  await runPrompt(id, "say hi");
  const lines = (await read(`${X}/${id}/messages`)).split("\n");
  t.equal(lines.pop(), "", "messages ends with a newline");
  const msgs = lines.map((l) => JSON.parse(l));
  t.same(msgs.map((m) => m.role), ["user", "assistant"]);
  t.equal(msgs[1].model, "faux-2", "the reply came from the model set by ctl");

  const i = await info(id);
  t.equal(i.kind, "pi");
  t.equal(i.cwd, path.join(base, "ctl"));
  t.equal(i.machine, os.hostname());
  t.ok(alive(Number(i.pid)), "pid is pi's, alive");
  t.match(i.session, /^[0-9a-f-]{20,}$/);
  t.ok(existsSync(i.session_file), "the session file exists");
  t.ok(existsSync(i.log), "pi's stderr log exists");
  t.equal(i.log, path.join(served.dir, "state", "agents", `${id}.log`));

  await ctl(id, "compact");
  await ctl(id, "new");
  const j = await info(id);
  t.not(j.session, i.session, "new: a fresh session");
  t.equal(await read(`${X}/${id}/messages`), "", "with no messages");
  t.match(await read(`${X}/${id}/body`), new RegExp(`--- new session ${j.session} ---\n$`), "the body marks it");
});

t.test("kill: exited, exit code in info, no process left; del stops and removes", async (t) => {
  const id = await spawnAgent("kill");
  const pid = Number((await info(id)).pid);
  await ctl(id, "kill");
  t.equal(await status(id), "exited");
  const i = await info(id);
  t.equal(i.status, "exited");
  t.equal(i.exit, "143", "pi's exit code after SIGTERM");
  t.notOk(alive(pid), "pi is gone");
  t.match(await read(`${X}/${id}/body`), /--- pi exited with code 143 ---\n$/, "the body says so");
  t.match(await refusal(`${X}/${id}/ctl`, "prompt say hi\n"), /pi exited with code 143/, "a prompt to an exited agent fails, saying why");
  await ctl(id, "del");
  t.notOk((await read(`${X}/index`)).split("\n").some((l) => l.startsWith(`${id} `)), "del removed the window");

  const id2 = await spawnAgent("del");
  const pid2 = Number((await info(id2)).pid);
  const ev = await EventReader.open(c, `${X}/${id2}/event`);
  await ctl(id2, "prompt write a lot");
  await ev.until((l) => l.some((x) => x.startsWith("text ")), "the reply streaming");
  await ctl(id2, "del");
  t.notOk(alive(pid2), "del of a busy agent stopped its pi");
  await t.rejects(read(`${X}/${id2}/ctl`), "the window is gone");
  await ev.close();
});

t.test("kill, del or a crash in the middle of a bash tool leave no tool process behind", async (t) => {
  for (const how of ["kill", "del", "crash"]) {
    const name = `tool-${how}`;
    const id = await spawnAgent(name);
    const dir = path.join(base, name);
    const ev = await EventReader.open(c, `${X}/${id}/event`);
    await ctl(id, "prompt run slow");
    await ev.until((l) => l.some((x) => x.startsWith("tool_start ")), "the tool starting");
    const pid = Number((await info(id)).pid);
    // The tool's shell and its sleep run in the agent's folder.
    const tools = await poll(() => { const p = processesIn(dir).filter((x) => x !== pid); return p.length >= 2 ? p : null; }, "the tool's processes");
    if (how === "crash") {
      // Once the server has seen them (info's tool_pids), pi dies.
      await poll(async () => { const seen = ((await info(id)).tool_pids ?? "").split(" "); return tools.every((p) => seen.includes(String(p))); }, "tool_pids in info");
      process.kill(pid, "SIGKILL");
      await ev.until((l) => l.includes("status exited"), "status exited");
    } else {
      await ctl(id, how);
    }
    t.notOk(alive(pid), `${how}: pi is gone`);
    await poll(() => tools.filter(alive).length === 0, "the tool's processes to go", 10000).catch(() => {});
    t.same(tools.filter(alive), [], `${how}: the tool's processes are gone`);
    t.same(processesIn(dir), [], `${how}: nothing runs in the folder`);
    await ev.close();
  }
});

t.test("refused spawns: outside the roots, missing folder, bad requests", async (t) => {
  const before = await read(`${X}/index`);
  t.match(await refusal(`${X}/new`, "spawn /etc\n"), /\/etc: outside the folders agents may use/);
  t.match(await refusal(`${X}/new`, `spawn ${base}/../elsewhere mkdir\n`), /outside the folders agents may use/);
  t.match(await refusal(`${X}/new`, `spawn ${base}/nope\n`), /nope: no such folder \(add mkdir to create it\)/);
  t.notOk(existsSync(path.join(base, "nope")));
  t.match(await refusal(`${X}/new`, `spawn ${base} color=red\n`), /spawn: unknown option color/);
  t.match(await refusal(`${X}/new`, "spawn\n"), /spawn: missing folder/);
  t.match(await refusal(`${X}/new`, `spawn ${base} now\n`), /spawn: unexpected now/);
  await t.rejects(newRequest(c, "spawn /etc"), "refused over 9P2000.L too");
  t.match(await refusal(`${X}/new`, `spawn ${base} model=nope/missing\n`),
    /^spawn: pi exited with code 1 while starting: Error: Model "nope\/missing" not found\..* \(log: \S+\.log\)$/, "a pi that exits at startup: its own words");
  t.equal(await read(`${X}/index`), before, "no window was made");
});

t.test("a pi that dies mid-turn: exited, the server keeps serving", async (t) => {
  const id = await spawnAgent("crash");
  const pid = Number((await info(id)).pid);
  const ev = await EventReader.open(c, `${X}/${id}/event`);
  await ctl(id, "prompt write a lot");
  await ev.until((l) => l.some((x) => x.startsWith("text ")), "the reply streaming");
  process.kill(pid, "SIGKILL");
  await ev.until((l) => l.includes("status exited"), "status exited");
  await ev.close();
  t.match(ev.lines.find((l) => l.startsWith("error ")), /^error pi was killed by SIGKILL unexpectedly; its log is \S+\.log$/);
  const i = await info(id);
  t.equal(i.exit, "137", "128 + SIGKILL");
  t.equal(i.signal, "SIGKILL");
  t.match(await read(`${X}/${id}/body`), /^> write a lot\nThis[^\n]*\n--- pi was killed by SIGKILL ---\n$/, "the body keeps what came, and says how it ended");
  const other = await spawnAgent("after-crash");
  t.equal((await runPrompt(other, "say hi")).filter((l) => l.startsWith("text ")).map((l) => l.slice(5)).join(""), "Hi there!", "another agent works");
});

t.test("a flood of prompts while busy: every one accepted as a follow-up, none lost", async (t) => {
  const id = await spawnAgent("flood");
  const ev = await EventReader.open(c, `${X}/${id}/event`);
  await ctl(id, "prompt write a lot");
  await ev.until((l) => l.some((x) => x.startsWith("text ")), "the reply streaming");
  const N = 50;
  const results = await Promise.allSettled(Array.from({ length: N }, (_, k) => ctl(id, `prompt f${k + 1}`)));
  const refused = results.filter((r) => r.status === "rejected");
  t.equal(refused.length, 0, `every prompt accepted (${refused.map((r) => String((r as PromiseRejectedResult).reason)).join("; ")})`);
  await ev.until((l) => l.filter((x) => /^followup f\d+$/.test(x)).length === N, "each announced as a followup");
  // pi runs queued follow-ups one after another: wait for the last echo.
  const msgs = await poll(async () => {
    const m = (await read(`${X}/${id}/messages`)).trim().split("\n").map((l) => JSON.parse(l));
    return m.filter((x) => x.role === "assistant").length >= N + 1 && (await status(id)) === "idle" ? m : null;
  }, "all follow-ups answered", 120000, 250);
  const users = msgs.filter((m: any) => m.role === "user").map((m: any) => m.content[0].text);
  t.same(users.slice(1).sort(), Array.from({ length: N }, (_, k) => `f${k + 1}`).sort(), "every follow-up reached pi once");
  const echoes = msgs.filter((m: any) => m.role === "assistant").slice(1).map((m: any) => m.content[0].text);
  t.same(echoes.sort(), Array.from({ length: N }, (_, k) => `echo: f${k + 1}`).sort(), "and was answered");
  await ev.close();
});

t.test("a missing pi binary fails the spawn, naming the path", async (t) => {
  const dir = path.join(base, "nopi");
  const s = await startServe({ args: piServeArgs(dir, { pi: "/nonexistent/pi" }) });
  t.teardown(() => s.stop());
  const cl = await Client.connect(`unix!${s.sock}`, { dialect: "9P2000.u" });
  t.teardown(() => cl.close());
  try {
    await newRequest(cl, `spawn ${dir} mkdir`);
    t.fail("spawn accepted");
  } catch (e) {
    t.match((e as NinepError).serverMessage, /^spawn: pi not found: \/nonexistent\/pi: no such file/);
  }
  t.equal((await cl.readAll(`${X}/index`)).toString(), "", "no window");
});

t.test("server shutdown stops every agent, idle or in the middle of a tool", async (t) => {
  const dir = path.join(base, "shutdown");
  const s = await startServe({ args: piServeArgs(dir) });
  const cl = await Client.connect(`unix!${s.sock}`);
  const a = await newRequest(cl, `spawn ${dir}/a mkdir model=faux/faux-1`);
  const b = await newRequest(cl, `spawn ${dir}/b mkdir model=faux/faux-1`);
  const pa = Number(parseInfo((await cl.readAll(`${X}/${a}/info`)).toString()).pid);
  const pb = Number(parseInfo((await cl.readAll(`${X}/${b}/info`)).toString()).pid);
  const ev = await EventReader.open(cl, `${X}/${b}/event`);
  await cl.writeFile(`${X}/${b}/ctl`, "prompt run slow\n");
  await ev.until((l) => l.some((x) => x.startsWith("tool_start ")), "a tool running");
  t.ok(alive(pa) && alive(pb));
  const code = await s.stop();
  await ev.close();
  await cl.close();
  t.equal(code, 0, "the server exits cleanly");
  t.notOk(alive(pa), "the idle agent is gone");
  t.notOk(alive(pb), "the busy agent is gone");
  t.same(processesIn(dir), [], "nothing runs in the agents' folders");
});

t.test("no pi left behind", async (t) => {
  await served.stop();
  for (const pid of pids) t.notOk(alive(pid), `pi ${pid} is gone`);
  t.same(processesIn(base), [], "nothing runs in the agents' folders");
});
