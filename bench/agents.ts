// `npm run bench:agents`: spawned pi agents under /mnt/xenith, over 9P.
//
//  1. Event latency: A agents (10) streaming at once, R readers (50) of their
//     `event` files (R/A per agent, spread over several connections). The
//     model is bench/stamp-provider.ts, a network-free pi extension that
//     streams a reply as N text deltas, one every I ms, each carrying the
//     moment it was handed to pi (CLOCK_MONOTONIC, ms with fractions). A
//     reader takes its own CLOCK_MONOTONIC when the Rread holding the `text`
//     line arrives; latency = the difference, over every (reader × delta).
//     The path is pi's agent loop → pi's stdout (JSON line) → pi9 (parse,
//     render, publish) → 9P Rread → this process. For comparison, the same
//     agents run as pi alone (`pi --mode rpc`, children of this process, read
//     straight from their stdout): the part of the latency that is pi's and
//     the pipe's, not pi9's.
//  2. Memory per idle agent window: pi9's V8 heap (after forced GCs, from
//     bench/mem-probe.ts preloaded into the server) and RSS
//     (/proc/<pid>/status) with 1, 5 and 10 idle agents, each size spawned,
//     measured and deleted in turn after a warm-up cycle; pi's own RSS per
//     agent alongside.
//
// The server is a `pi9 serve` child (unix socket, --http off); this process
// is the client (src/ninep/client.ts). Everything is local: unix sockets and
// pipes, and the model never opens a connection. A watchdog bounds the run;
// on every way out the servers and every pi are stopped, and the bench fails
// if any pi outlived its server.
//
// Options (argv `--name value` or env PI9_BENCH_NAME): --agents (10),
// --readers (50), --conns (10), --deltas (150), --interval-ms (20),
// --rounds (2), --idle LIST (1,5,10), --settle-ms (3000), --direct 0|1 (1),
// --only latency,memory, --timeout-s (600), --json FILE, --node-flags STR
// (extra node flags for the pi9 server, e.g. --cpu-prof --cpu-prof-dir=DIR).

import { ChildProcess, spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client, Fid, streamCount } from "../src/ninep/client.js";
import { BRIDGE_PATH, defaultPiPath, descendants } from "../src/agents/pi-rpc.js";
import { alive, newRequest, parseInfo, processesIn } from "../test/helpers/pi.js";
import { cpuNs } from "./measure.js";
import { opt } from "./opts.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const STAMP = path.join(ROOT, "bench", "stamp-provider.ts");
const PROBE = path.join(ROOT, "dist", "bench", "mem-probe.js");
const MAIN = path.join(ROOT, "dist", "src", "cli", "main.js");


if (process.argv.includes("--help")) {
  console.log("node dist/bench/agents.js [--agents 10] [--readers 50] [--conns 10] [--deltas 150] [--interval-ms 20] [--rounds 2]\n" +
    "  [--idle 1,5,10] [--settle-ms 3000] [--direct 0|1] [--only latency,memory] [--timeout-s 600] [--json FILE] [--node-flags STR]");
  process.exit(0);
}

const AGENTS = opt("agents", 10);
const READERS = opt("readers", 50);
const CONNS = opt("conns", 10);
const DELTAS = opt("deltas", 150);
const INTERVAL = opt("interval-ms", 20);
const ROUNDS = opt("rounds", 2);
const IDLE = opt("idle", "1,5,10").split(",").map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const SETTLE = opt("settle-ms", 3000);
const DIRECT = opt("direct", 1) !== 0;
const ONLY = opt("only", "latency,memory").split(",");
const TIMEOUT_S = opt("timeout-s", 600);
const JSON_OUT = opt("json", "");
const NODE_FLAGS = opt("node-flags", "").split(/\s+/).filter(Boolean);

const nowMs = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC, as in stamp-provider.ts
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
const loadavg = () => os.loadavg()[0].toFixed(1);
const cpuMs = (since: NodeJS.CpuUsage) => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000; };

function stats(lat: number[]) {
  const s = Float64Array.from(lat).sort();
  const a = Array.from(s);
  return { n: a.length, p50: pct(a, 50), p90: pct(a, 90), p99: pct(a, 99), max: a[a.length - 1], mean: a.reduce((x, y) => x + y, 0) / (a.length || 1) };
}

// ---- processes, and leaving none behind ---------------------------------------

/** Everything to stop on the way out. */
const servers = new Set<ChildProcess>();
const directs = new Set<ChildProcess>();
/** Every pi seen: pid → start time (so a reused pid is never taken for it), and the folders they run in. */
const piPids = new Map<number, string>();
function startTime(pid: number): string {
  try { const st = readFileSync(`/proc/${pid}/stat`, "utf8"); return st.slice(st.lastIndexOf(")") + 2).split(" ")[19]; } catch { return ""; }
}
const seePi = (pid: number) => piPids.set(pid, startTime(pid));
const bases: string[] = [];
const tmpDirs: string[] = [];

function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.once("exit", () => { clearTimeout(t); resolve(true); });
  });
}

async function stopServer(p: ChildProcess) {
  if (p.exitCode === null && p.signalCode === null) {
    p.kill("SIGTERM"); // pi9 stops its agents (SIGTERM, SIGKILL after 3 s) and exits
    if (!(await waitExit(p, 20000))) { p.kill("SIGKILL"); await waitExit(p, 5000); }
  }
  servers.delete(p);
}

/** Stop everything; returns the pis that were still alive once their server or this bench had stopped them. */
let cleaning: Promise<number[]> | null = null;
function cleanup(): Promise<number[]> {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    await Promise.all([...servers].map(stopServer));
    for (const d of directs) { try { process.kill(-d.pid!, "SIGTERM"); } catch { /* gone */ } }
    await Promise.all([...directs].map(async (d) => { if (!(await waitExit(d, 5000))) { try { process.kill(-d.pid!, "SIGKILL"); } catch { /* gone */ } } }));
    await sleep(200);
    const left = new Set<number>();
    for (const [pid, start] of piPids) if (alive(pid) && startTime(pid) === start) left.add(pid);
    for (const b of bases) for (const pid of processesIn(b)) left.add(pid);
    for (const pid of left) { try { process.kill(-pid, "SIGKILL"); } catch { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } } }
    for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
    return [...left];
  })();
  return cleaning;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => { console.error(`bench: ${sig}, stopping`); void cleanup().finally(() => process.exit(130)); });
}

// ---- /proc --------------------------------------------------------------------

function status(pid: number): { rss: number; anon: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { rss: kb("VmRSS") * 1024, anon: kb("RssAnon") * 1024 };
  } catch { return { rss: NaN, anon: NaN }; }
}

/** RSS of a process and its descendants. */
function treeRss(pid: number) {
  let rss = 0;
  for (const p of [pid, ...descendants(pid).map((d) => d.pid)]) { const s = status(p).rss; if (!Number.isNaN(s)) rss += s; }
  return rss;
}

const MiB = (b: number) => (b / (1 << 20)).toFixed(1);
const KiB = (b: number) => (b / 1024).toFixed(0);

// ---- the server -----------------------------------------------------------------

interface Server { p: ChildProcess; sock: string; probe: string; dir: string; base: string; stderr: () => string }

async function startServer(tag: string): Promise<Server> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `pi9-bench-a-${tag}-`));
  tmpDirs.push(dir);
  const base = realpathSync(dir);
  bases.push(base);
  const agentDir = path.join(base, "pi-agent");
  mkdirSync(agentDir);
  const sock = path.join(base, "pi9.sock");
  const probe = path.join(base, "probe.sock");
  const args = [
    ...NODE_FLAGS, "--expose-gc", "--import", PROBE, MAIN, "serve", "--listen", `unix!${sock}`, "--http", "off", "--state", path.join(base, "state"), "--log-level", "warn",
    "--agent-root", path.join(base, "agents"),
    "--pi-env", `PI_CODING_AGENT_DIR=${agentDir}`, "--pi-env", "PI_OFFLINE=1", "--pi-env", "PI_TELEMETRY=0",
    ...["--offline", "-ne", "-ns", "-np", "-nc", "-e", STAMP].map((a) => `--pi-arg=${a}`),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, PI9_BENCH_PROBE: probe };
  delete env.NODE_OPTIONS;
  const p = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env });
  servers.add(p);
  let err = "";
  p.stderr!.setEncoding("utf8");
  p.stderr!.on("data", (d: string) => { err += d; if (err.length > 1 << 20) err = err.slice(-(1 << 19)); });
  for (let i = 0; i < 300; i++) {
    if (p.exitCode !== null) break;
    try { const c = await Client.connect(`unix!${sock}`, { msize: 1 << 16 }); await c.close(); return { p, sock, probe, dir, base, stderr: () => err }; }
    catch { await sleep(50); }
  }
  await stopServer(p);
  throw new Error(`pi9 serve did not start: ${err}`);
}

function probe(s: Server): Promise<{ gc: boolean; rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; spaces: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const c = net.connect(s.probe);
    c.setEncoding("utf8");
    c.on("data", (d: string) => { buf += d; });
    c.on("end", () => { try { resolve(JSON.parse(buf)); } catch (e) { reject(e); } });
    c.on("error", reject);
  });
}

async function spawnAgent(c: Client, s: Server, name: string): Promise<{ id: number; pid: number }> {
  const id = await newRequest(c, `spawn ${path.join(s.base, "agents", name)} mkdir name=${name} model=stamp/stamp-1`);
  const pid = Number(parseInfo((await c.readAll(`/mnt/xenith/${id}/info`)).toString()).pid);
  if (!pid) throw new Error(`agent ${id}: no pid in info`);
  seePi(pid);
  return { id, pid };
}

// ---- 1. latency -----------------------------------------------------------------

interface Round { deltas: number; lat: number[]; got: number; expected: number; lost: number; disorder: number; wallMs: number; serverCpuMs: number; piCpuMs: number; benchCpuMs: number }

interface ReaderState { agent: number; next: number; got: number; lost: number; disorder: number; ended: number }

async function latency() {
  const s = await startServer("lat");
  const c = await Client.connect(`unix!${s.sock}`, { msize: 1 << 16, dialect: "9P2000.u" }); // .u: refusals carry the server's words
  const t0 = nowMs();
  const agents = await Promise.all(Array.from({ length: AGENTS }, (_, i) => spawnAgent(c, s, `a${i}`)));
  const spawnMs = nowMs() - t0;
  const conns = await Promise.all(Array.from({ length: CONNS }, () => Client.connect(`unix!${s.sock}`, { msize: 1 << 16 })));
  const readers: (ReaderState & { c: Client; f: Fid })[] = [];
  for (let i = 0; i < READERS; i++) {
    const agent = i % AGENTS;
    const cl = conns[Math.floor((i * CONNS) / READERS)];
    readers.push({ agent, c: cl, f: await cl.open(`/mnt/xenith/${agents[agent].id}/event`, "r"), next: 0, got: 0, lost: 0, disorder: 0, ended: 0 });
  }
  let lat: number[] = [];
  let wake: (() => void) | null = null;
  const ac = new AbortController();
  setMaxListeners(READERS + 10, ac.signal);
  const loops = readers.map(async (r) => {
    let off = 0, rest = "";
    while (!ac.signal.aborted) {
      let b: Buffer;
      try { b = await r.c.read(r.f, off, streamCount(r.c.msize), ac.signal); } catch { return; }
      const t = nowMs();
      if (b.length === 0) return;
      off += b.length;
      const lines = (rest + b.toString()).split("\n");
      rest = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith("text ")) {
          const m = /^text (\d+)@(\d+\.\d+) $/.exec(l);
          if (!m) continue;
          lat.push(t - Number(m[2]));
          r.got++;
          if (Number(m[1]) !== r.next) r.disorder++;
          r.next = Number(m[1]) + 1;
        } else if (l === "agent_end") { r.ended++; wake?.(); }
        else if (l.startsWith("lost ")) r.lost += Number(l.slice(5));
      }
    }
  });

  const round = async (n: number, ms: number, k: number): Promise<Round> => {
    lat = [];
    for (const r of readers) { r.next = 0; r.got = 0; r.lost = 0; r.disorder = 0; }
    const cpuS = cpuNs(s.p.pid), cpuP = agents.reduce((a, g) => a + cpuNs(g.pid), 0), cpuB = process.cpuUsage();
    const start = nowMs();
    await Promise.all(agents.map((g) => c.writeFile(`/mnt/xenith/${g.id}/ctl`, `prompt stamp n=${n} ms=${ms}\n`)));
    const deadline = start + n * ms * 5 + 60000;
    while (readers.some((r) => r.ended < k)) {
      if (nowMs() > deadline) throw new Error(`round ${k}: not every reader saw agent_end in time (${readers.filter((r) => r.ended < k).length} waiting)`);
      await new Promise<void>((res) => { wake = res; setTimeout(res, 500); });
    }
    const wallMs = nowMs() - start;
    return {
      deltas: n, lat, got: readers.reduce((a, r) => a + r.got, 0), expected: READERS * n,
      lost: readers.reduce((a, r) => a + r.lost, 0), disorder: readers.reduce((a, r) => a + r.disorder, 0), wallMs,
      serverCpuMs: (cpuNs(s.p.pid) - cpuS) / 1e6, piCpuMs: (agents.reduce((a, g) => a + cpuNs(g.pid), 0) - cpuP) / 1e6, benchCpuMs: cpuMs(cpuB),
    };
  };

  try {
    await round(Math.ceil(DELTAS / 3), INTERVAL, 1); // warm-up: the first reply of every pi, and pi9's code paths compiled
    const rounds: Round[] = [];
    for (let k = 0; k < ROUNDS; k++) rounds.push(await round(DELTAS, INTERVAL, k + 2));
    return { spawnMs, rounds };
  } finally {
    ac.abort();
    await Promise.all(loops);
    for (const cl of conns) await cl.close().catch(() => {});
    await c.close().catch(() => {});
    await stopServer(s.p);
  }
}

/** The same agents as pi alone: children of this process, their stdout read directly. */
async function direct() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pi9-bench-a-direct-"));
  tmpDirs.push(dir);
  const base = realpathSync(dir);
  bases.push(base);
  const agentDir = path.join(base, "pi-agent");
  mkdirSync(agentDir);
  const cli = defaultPiPath();
  const env: NodeJS.ProcessEnv = { ...process.env, PI_CODING_AGENT_DIR: agentDir, PI_OFFLINE: "1", PI_TELEMETRY: "0" };
  delete env.NODE_OPTIONS;
  let lat: number[] = [];
  interface D { p: ChildProcess; got: number; next: number; disorder: number; ended: number; answered: Map<string, () => void> }
  let wake: (() => void) | null = null;
  const ds: D[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const cwd = path.join(base, `d${i}`);
    mkdirSync(cwd);
    // What pi9 runs (src/agents/pi-rpc.ts): --mode rpc, pi9's bridge extension, then the same --pi-args and model.
    const p = spawn(process.execPath, [cli, "--mode", "rpc", "-e", BRIDGE_PATH, "--offline", "-ne", "-ns", "-np", "-nc", "-e", STAMP, "--model", "stamp/stamp-1"],
      { cwd, env, stdio: ["pipe", "pipe", "ignore"], detached: true });
    directs.add(p);
    seePi(p.pid!);
    const d: D = { p, got: 0, next: 0, disorder: 0, ended: 0, answered: new Map() };
    ds.push(d);
    let rest = "";
    p.stdout!.setEncoding("utf8");
    p.stdout!.on("data", (chunk: string) => {
      const t = nowMs();
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('{"type":"message_update"')) {
          const m = /"type":"text_delta","contentIndex":0,"delta":"(\d+)@(\d+\.\d+) "/.exec(l);
          if (!m) continue;
          lat.push(t - Number(m[2]));
          d.got++;
          if (Number(m[1]) !== d.next) d.disorder++;
          d.next = Number(m[1]) + 1;
        } else if (l.startsWith('{"type":"agent_end"')) { d.ended++; wake?.(); }
        else if (l.includes('"type":"response"')) {
          const id = /"id":"([^"]+)"/.exec(l)?.[1];
          if (id) d.answered.get(id)?.();
        }
      }
    });
  }
  const ask = (d: D, cmd: { type: string; [k: string]: unknown }, id: string) => new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pi alone: no answer to ${cmd.type}`)), 60000);
    d.answered.set(id, () => { clearTimeout(t); d.answered.delete(id); resolve(); });
    d.p.stdin!.write(JSON.stringify({ ...cmd, id }) + "\n");
  });
  try {
    const t0 = nowMs();
    await Promise.all(ds.map((d) => ask(d, { type: "get_state" }, "s")));
    const startMs = nowMs() - t0;
    const round = async (n: number, ms: number, k: number): Promise<Round> => {
      lat = [];
      for (const d of ds) { d.got = 0; d.next = 0; d.disorder = 0; }
      const cpuP = ds.reduce((a, d) => a + cpuNs(d.p.pid), 0), cpuB = process.cpuUsage();
      const start = nowMs();
      await Promise.all(ds.map((d) => ask(d, { type: "prompt", message: `stamp n=${n} ms=${ms}` }, `p${k}`)));
      const deadline = start + n * ms * 5 + 60000;
      while (ds.some((d) => d.ended < k)) {
        if (nowMs() > deadline) throw new Error(`pi alone, round ${k}: no agent_end in time`);
        await new Promise<void>((res) => { wake = res; setTimeout(res, 500); });
      }
      return {
        deltas: n, lat, got: ds.reduce((a, d) => a + d.got, 0), expected: AGENTS * n, lost: 0, disorder: ds.reduce((a, d) => a + d.disorder, 0),
        wallMs: nowMs() - start, serverCpuMs: 0, piCpuMs: (ds.reduce((a, d) => a + cpuNs(d.p.pid), 0) - cpuP) / 1e6, benchCpuMs: cpuMs(cpuB),
      };
    };
    await round(Math.ceil(DELTAS / 3), INTERVAL, 1);
    const rounds: Round[] = [];
    for (let k = 0; k < ROUNDS; k++) rounds.push(await round(DELTAS, INTERVAL, k + 2));
    return { startMs, rounds };
  } finally {
    for (const d of ds) d.p.stdin!.end(); // pi in RPC mode exits at the end of its stdin
    await Promise.all(ds.map(async (d) => {
      if (!(await waitExit(d.p, 5000))) { try { process.kill(-d.p.pid!, "SIGKILL"); } catch { /* gone */ } await waitExit(d.p, 5000); }
      directs.delete(d.p);
    }));
  }
}

// ---- 2. memory ------------------------------------------------------------------

/** heapData: the V8 heap without compiled code (code_space, code_large_object_space), which grows as V8 optimises, whatever the windows. */
interface Mem { rss: number; anon: number; heapUsed: number; heapData: number; external: number }
interface MemStep { agents: number; before: Mem; with: Mem; after: Mem; piRss: number[] }

/**
 * A fresh server; one warm-up cycle (the largest size spawned, measured,
 * deleted) takes the growth that happens once, whatever the number of
 * windows (code compiled and optimised, lazy modules, buffers kept for
 * reuse). Then for each size n: spawn n idle agents at once, measure,
 * delete them, measure. Per window = (with − mean(before, after)) / n, so
 * what stays after a deletion is not counted as a live window's.
 */
async function memory() {
  const s = await startServer("mem");
  const c = await Client.connect(`unix!${s.sock}`, { msize: 1 << 16, dialect: "9P2000.u" }); // .u: refusals carry the server's words
  const pid = s.p.pid!;
  const measure = async (): Promise<Mem> => {
    // Collect, wait, collect again: what a collection frees may reach the OS later.
    await sleep(SETTLE / 2);
    await probe(s);
    await sleep(SETTLE / 2);
    const m = await probe(s);
    if (!m.gc) throw new Error("the memory probe has no gc (node --expose-gc)");
    const st = status(pid);
    const code = (m.spaces.code_space ?? 0) + (m.spaces.code_large_object_space ?? 0);
    return { rss: st.rss, anon: st.anon, heapUsed: m.heapUsed, heapData: m.heapUsed - code, external: m.external };
  };
  const cycle = async (n: number, tag: string) => {
    const live = await Promise.all(Array.from({ length: n }, (_, i) => spawnAgent(c, s, `${tag}${i}`)));
    const w = await measure();
    const piRss = live.map((a) => treeRss(a.pid));
    await Promise.all(live.map((a) => c.writeFile(`/mnt/xenith/${a.id}/ctl`, "del\n")));
    for (const a of live) if (alive(a.pid)) throw new Error(`agent ${a.id}: pi ${a.pid} alive after del`);
    return { with: w, piRss };
  };
  try {
    const start = await measure();
    await cycle(Math.max(...IDLE), "w");
    const warm = await measure();
    let before = warm;
    const steps: MemStep[] = [];
    for (const n of IDLE) {
      const r = await cycle(n, `m${n}-`);
      const after = await measure();
      steps.push({ agents: n, before, with: r.with, after, piRss: r.piRss });
      before = after;
    }
    return { start, warm, steps, end: before };
  } finally {
    await c.close().catch(() => {});
    await stopServer(s.p);
  }
}

// ---- main -----------------------------------------------------------------------

function piVersion() {
  try { return JSON.parse(readFileSync(path.join(path.dirname(defaultPiPath()), "..", "package.json"), "utf8")).version as string; } catch { return "?"; }
}

function fmtLat(name: string, rs: Round[]) {
  const all = stats(rs.flatMap((r) => r.lat));
  const got = rs.reduce((a, r) => a + r.got, 0), exp = rs.reduce((a, r) => a + r.expected, 0);
  const f = (x: number) => x.toFixed(2).padStart(7);
  return `${name.padEnd(34)} ${`${got}/${exp}`.padStart(13)} ${f(all.p50)} ${f(all.p90)} ${f(all.p99)} ${f(all.max)}`;
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${TIMEOUT_S} s; stopping`);
    void cleanup().finally(() => process.exit(2));
  }, TIMEOUT_S * 1000);
  const cpu = os.cpus();
  const load0 = loadavg();
  const out: Record<string, unknown> = {
    machine: { cpus: cpu.length, model: cpu[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, pi: piVersion() },
    options: { agents: AGENTS, readers: READERS, conns: CONNS, deltas: DELTAS, intervalMs: INTERVAL, rounds: ROUNDS, idle: IDLE, settleMs: SETTLE },
    loadavg: { start: os.loadavg() },
  };
  console.log(`pi9 agents bench — ${cpu.length} × ${cpu[0]?.model?.trim()}, Linux ${os.release()}, node ${process.version}, pi ${piVersion()}; load average ${load0} at start`);
  let failed = false;
  try {
    if (ONLY.includes("latency")) {
      const lat = await latency();
      const dir = DIRECT ? await direct() : null;
      out.latency = { spawnMs: lat.spawnMs, rounds: lat.rounds.map(({ lat: l, ...r }) => ({ ...r, ...stats(l) })) };
      if (dir) out.direct = { startMs: dir.startMs, rounds: dir.rounds.map(({ lat: l, ...r }) => ({ ...r, ...stats(l) })) };
      console.log(`\nevent latency: ${AGENTS} agents streaming at once, ${DELTAS} text deltas each, one every ${INTERVAL} ms; ${ROUNDS} rounds (after a warm-up)`);
      console.log(`${"path (ms)".padEnd(34)} ${"delivered".padStart(13)} ${"p50".padStart(7)} ${"p90".padStart(7)} ${"p99".padStart(7)} ${"max".padStart(7)}`);
      console.log(`${"-".repeat(34)} ${"-".repeat(13)} ${"-".repeat(7)} ${"-".repeat(7)} ${"-".repeat(7)} ${"-".repeat(7)}`);
      console.log(fmtLat(`pi → pi9 → 9P, ${READERS} readers/${CONNS} conns`, lat.rounds));
      if (dir) console.log(fmtLat("pi → pipe → bench (no pi9)", dir.rounds));
      for (const [i, r] of lat.rounds.entries()) {
        const st = stats(r.lat);
        console.log(`  round ${i + 1}: p50 ${st.p50.toFixed(2)}, p99 ${st.p99.toFixed(2)}, max ${st.max.toFixed(2)} ms; ${r.got}/${r.expected} delivered, ${r.lost} lost, ${r.disorder} out of order; ` +
          `${(r.wallMs / 1000).toFixed(1)} s; CPU (% of a core): pi9 ${(r.serverCpuMs / r.wallMs * 100).toFixed(0)}% (${(r.serverCpuMs * 1000 / (AGENTS * r.deltas)).toFixed(0)} µs per text delta, ${READERS / AGENTS} readers each), ` +
          `pis ${(r.piCpuMs / r.wallMs * 100).toFixed(0)}%, bench ${(r.benchCpuMs / r.wallMs * 100).toFixed(0)}%`);
      }
      if (dir) for (const [i, r] of dir.rounds.entries()) {
        const st = stats(r.lat);
        console.log(`  pi alone, round ${i + 1}: p50 ${st.p50.toFixed(2)}, p99 ${st.p99.toFixed(2)}, max ${st.max.toFixed(2)} ms; ${r.got}/${r.expected}; CPU: pis ${(r.piCpuMs / r.wallMs * 100).toFixed(0)}%, bench ${(r.benchCpuMs / r.wallMs * 100).toFixed(0)}%`);
      }
      console.log(`  spawning ${AGENTS} agents at once through /mnt/xenith/new: ${(lat.spawnMs / 1000).toFixed(1)} s` + (dir ? `; ${AGENTS} pis alone answering get_state: ${(dir.startMs / 1000).toFixed(1)} s` : ""));
      if (lat.rounds.some((r) => r.got !== r.expected || r.lost || r.disorder)) { failed = true; console.log("  FAIL: not every reader saw every delta once, in order"); }
    }
    if (ONLY.includes("memory")) {
      const mem = await memory();
      out.memory = mem;
      console.log(`\nmemory per idle agent window: pi9 serve's V8 heap (after forced GCs) and RSS, ${SETTLE} ms after spawning;`);
      console.log("each size spawned at once, measured, deleted; Δ/window = (with − mean of before and after) / agents");
      console.log("(heap w/o code: the V8 heap less compiled code, which grows as V8 optimises whatever the windows)");
      console.log("agents  pi9 heap MiB  Δ heap KiB/window  Δ heap w/o code KiB/window  pi9 RSS MiB  Δ RSS KiB/window  Δ RssAnon KiB/window  pi RSS MiB/agent");
      console.log("------  ------------  -----------------  --------------------------  -----------  ----------------  --------------------  ----------------");
      const per = (st: MemStep, k: keyof Mem) => KiB((st.with[k] - (st.before[k] + st.after[k]) / 2) / st.agents);
      for (const st of mem.steps) {
        const pi = MiB(st.piRss.reduce((a, x) => a + x, 0) / st.piRss.length);
        console.log(`${String(st.agents).padStart(6)}  ${MiB(st.with.heapUsed).padStart(12)}  ${per(st, "heapUsed").padStart(17)}  ${per(st, "heapData").padStart(26)}  ${MiB(st.with.rss).padStart(11)}  ${per(st, "rss").padStart(16)}  ${per(st, "anon").padStart(20)}  ${pi.padStart(16)}`);
      }
      const d = (a: Mem, b: Mem) => `heap ${KiB(b.heapUsed - a.heapUsed)} KiB (w/o code ${KiB(b.heapData - a.heapData)}), RSS ${KiB(b.rss - a.rss)} KiB`;
      const spawned = IDLE.reduce((a, n) => a + n, 0);
      console.log(`  fresh server: heap ${MiB(mem.start.heapUsed)} MiB, RSS ${MiB(mem.start.rss)} MiB; after the warm-up cycle (${Math.max(...IDLE)} agents spawned and deleted): ${d(mem.start, mem.warm)}`);
      console.log(`  left after the measured cycles (${spawned} agents spawned and deleted), against after the warm-up: ${d(mem.warm, mem.end)}`);
    }
  } finally {
    clearTimeout(watchdog);
    const left = await cleanup();
    out.loadavg = { ...(out.loadavg as object), end: os.loadavg() };
    out.leftBehind = left;
    console.log(`\nload average ${loadavg()} at end; pis left behind: ${left.length ? left.join(" ") + " (killed now)" : "none"}`);
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(out, null, 2));
    if (left.length) failed = true;
  }
  if (failed) process.exitCode = 1;
}

main().catch(async (e) => { console.error(`bench: ${e.stack ?? e}`); await cleanup(); process.exit(1); });
