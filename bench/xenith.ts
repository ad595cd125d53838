// `npm run bench:xenith`: Xenith window performance over 9P.
//
//  1. Edit throughput: a structural substitution over a whole body
//     (`,s/x/y/g` on a 10 MiB body, written to the window's ctl), timed from
//     the Twrite to its Rwrite, alternating x→y and y→x so every round
//     changes the same number of places.
//  2. Event delivery latency: R readers (100 by default, each its own open
//     of one window's `event`, spread over several connections) and one
//     writer appending stamped lines to the window's body; latency is the
//     time from the writer's Twrite to each reader's receipt of the
//     matching `insert` line, p50 and p99 over every reader and line.
//
// The server is a `pi9 serve` child process; this process is the client.
// Options (argv `--name value` or env PI9_BENCH_NAME): --size-mib (10),
// --rounds (5), --readers (100), --conns (10), --lines (200),
// --interval-ms (10), --json FILE.

import { spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client, Fid, streamCount } from "../src/ninep/client.js";
import { opt } from "./opts.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");


const SIZE_MIB = opt("size-mib", 10);
const ROUNDS = opt("rounds", 5);
const READERS = opt("readers", 100);
const CONNS = opt("conns", 10);
const LINES = opt("lines", 200);
const INTERVAL = opt("interval-ms", 10);
const JSON_OUT = opt("json", "");

const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]; };
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

async function startServer(dir: string) {
  const sock = path.join(dir, "pi9.sock");
  const p = spawn(process.execPath, [path.join(ROOT, "dist/src/cli/main.js"), "serve", "--listen", `unix!${sock}`, "--http", "off", "--state", path.join(dir, "state"), "--log-level", "warn"], { stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; i < 200; i++) {
    try { const c = await Client.connect(`unix!${sock}`, { msize: 1 << 20 }); await c.close(); return { p, sock }; }
    catch { await new Promise((r) => setTimeout(r, 50)); }
  }
  p.kill("SIGKILL");
  throw new Error("pi9 serve did not start");
}

async function newWindow(c: Client, name: string): Promise<number> {
  const f = await c.open("/mnt/xenith/new", "rw");
  try {
    await c.write(f, 0, `window ${name}\n`);
    return Number((await c.read(f, 0, 64)).toString().trim());
  } finally { await c.clunk(f); }
}

async function editThroughput(c: Client) {
  const id = await newWindow(c, "edit-bench");
  const line = "xx lorem ipsum x dolor sit amet, x consectetur adipiscing elit x\n"; // 5 x per line
  const body = await c.open(`/mnt/xenith/${id}/body`, "w");
  const chunk = Buffer.from(line.repeat(Math.floor((1 << 20) / line.length)));
  let size = 0;
  while (size < SIZE_MIB * (1 << 20)) { await c.write(body, 0, chunk); size += chunk.length; }
  await c.clunk(body);
  const places = (size / line.length) * 5;
  const times: number[] = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const cmd = r % 2 === 0 ? ",s/x/y/g\n" : ",s/y/x/g\n";
    const ctl = await c.open(`/mnt/xenith/${id}/ctl`, "w");
    const t0 = now();
    await c.write(ctl, 0, cmd);
    const dt = now() - t0;
    await c.clunk(ctl);
    if (r > 0) times.push(dt); // the first round warms up
  }
  const ms = median(times);
  await c.writeFile(`/mnt/xenith/${id}/ctl`, "del\n");
  return { bodyMiB: size / (1 << 20), places, medianMs: ms, mibPerSec: size / (1 << 20) / (ms / 1000), changesPerSec: places / (ms / 1000) };
}

async function eventLatency(sock: string) {
  const setup = await Client.connect(`unix!${sock}`, { msize: 1 << 16 });
  const id = await newWindow(setup, "latency-bench");
  const conns = await Promise.all(Array.from({ length: CONNS }, () => Client.connect(`unix!${sock}`, { msize: 1 << 16 })));
  const sent = new Map<number, number>();
  const lat: number[] = [];
  let received = 0;
  const fids: { c: Client; f: Fid }[] = [];
  for (let i = 0; i < READERS; i++) {
    const c = conns[i % CONNS];
    fids.push({ c, f: await c.open(`/mnt/xenith/${id}/event`, "r") });
  }
  const ac = new AbortController();
  setMaxListeners(READERS + 10, ac.signal); // every reader's pending read listens on it
  const loops = fids.map(async ({ c, f }) => {
    let off = 0, rest = "";
    while (!ac.signal.aborted) {
      let b: Buffer;
      try { b = await c.read(f, off, streamCount(c.msize), ac.signal); } catch { return; }
      const t = now();
      off += b.length;
      const text = rest + b.toString();
      const lines = text.split("\n");
      rest = lines.pop()!;
      for (const l of lines) {
        const m = /^insert \d+ \d+ seq=(\d+)/.exec(l);
        if (!m) continue;
        const s = sent.get(Number(m[1]));
        if (s !== undefined) { lat.push(t - s); received++; }
      }
    }
  });
  const writer = await setup.open(`/mnt/xenith/${id}/body`, "w");
  for (let i = 0; i < LINES; i++) {
    sent.set(i, now());
    await setup.write(writer, 0, `seq=${i}\n`);
    await new Promise((r) => setTimeout(r, INTERVAL));
  }
  // Bounded wait for the last deliveries.
  for (let i = 0; i < 100 && received < LINES * READERS; i++) await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  await Promise.all(loops);
  await Promise.all(conns.map((c) => c.close()));
  await setup.writeFile(`/mnt/xenith/${id}/ctl`, "del\n").catch(() => {});
  await setup.close();
  return { readers: READERS, conns: CONNS, lines: LINES, delivered: received, expected: LINES * READERS, p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100) };
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pi9-bench-x-"));
  const srv = await startServer(dir);
  try {
    const c = await Client.connect(`unix!${srv.sock}`, { msize: 1 << 20 });
    const edit = await editThroughput(c);
    await c.close();
    const ev = await eventLatency(srv.sock);
    console.log("metric                                   value");
    console.log(`edit ,s/x/y/g over ${edit.bodyMiB.toFixed(1)} MiB (${edit.places} changes)   ${edit.medianMs.toFixed(0)} ms median, ${edit.mibPerSec.toFixed(1)} MiB/s, ${(edit.changesPerSec / 1e6).toFixed(2)} M changes/s`);
    console.log(`event latency, ${ev.readers} readers on ${ev.conns} conns, ${ev.lines} lines   p50 ${ev.p50.toFixed(2)} ms, p99 ${ev.p99.toFixed(2)} ms, max ${ev.max.toFixed(2)} ms (${ev.delivered}/${ev.expected} delivered)`);
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ edit, events: ev }, null, 2));
  } finally {
    srv.p.kill("SIGTERM");
    await new Promise((r) => srv.p.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(`bench: ${e.stack ?? e}`); process.exit(1); });
