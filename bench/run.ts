// `npm run bench`: pi9 against diod, same client, same machine, same run.
//
// Starts both servers on unix sockets, gives them the same bytes, then for
// every metric runs timed rounds with the load client (bench/load.ts, in
// child processes), alternating which server goes first, and prints the
// median of each server and the pi9/diod ratio. Both servers are started
// afresh for every round. See bench/README.md.
//
// Options (argv `--name value`, or env PI9_BENCH_NAME):
//   --size-mib N      large body size (256)
//   --small-bytes N   small file size (1024)
//   --seconds S       timed length of one measurement (1.5)
//   --warm-ms N       untimed warm-up of each measurement, same connections (500)
//   --rounds N        rounds; each measures every metric on both servers (7)
//   --depth N         small-op cycles in flight per connection (1)
//   --read-depth N    Treads in flight on the sequential read (1)
//   --conns LIST      connection counts for the small-op metric (1,8)
//   --msizes LIST     msizes for the sequential read (65536,1048576)
//   --procs N         client processes for multi-connection runs (one per connection, at most N; 8)
//   --only LIST       metrics to run: cycles,read (both)
//   --node-flags STR  extra node flags for the pi9 server (e.g. --cpu-prof)
//   --diod PATH       diod binary (/usr/sbin/diod)
//   --pi9-bin PATH    pi9 entry point to measure (bin/pi9 of this tree)
//   --json FILE       also write the results as JSON

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Job } from "./load.js";
import { children, measure, median } from "./measure.js";
import { makeContent, prepareDiodDir, Server, startDiod, startPi9, verify } from "./servers.js";

function options() {
  const argv = process.argv.slice(2);
  const get = (name: string, def: string): string => {
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === `--${name}` && i + 1 < argv.length) return argv[i + 1];
      if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
    }
    return process.env[`PI9_BENCH_${name.toUpperCase().replace(/-/g, "_")}`] ?? def;
  };
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write("usage: npm run bench -- [--size-mib N] [--small-bytes N] [--seconds S] [--warm-ms N] [--rounds N] [--depth N] [--read-depth N]\n"
      + "         [--conns 1,8] [--msizes 65536,1048576] [--procs N] [--only cycles,read] [--node-flags STR] [--diod PATH] [--pi9-bin PATH] [--json FILE]\n"
      + "every option may also be given as PI9_BENCH_<NAME> (e.g. PI9_BENCH_SIZE_MIB=64); see bench/README.md\n");
    process.exit(0);
  }
  const num = (name: string, def: number, min: number, max: number) => {
    const v = Number(get(name, String(def)));
    if (!Number.isFinite(v) || v < min || v > max) { process.stderr.write(`bench: --${name} must be a number in ${min}..${max}\n`); process.exit(2); }
    return v;
  };
  const list = (name: string, def: string) => get(name, def).split(",").map((s) => s.trim()).filter(Boolean);
  return {
    sizeMiB: num("size-mib", 256, 1, 4096),
    smallBytes: Math.floor(num("small-bytes", 1024, 1, 65536)),
    seconds: num("seconds", 1.5, 0.1, 120),
    warmMs: Math.floor(num("warm-ms", 500, 0, 60000)),
    rounds: Math.floor(num("rounds", 7, 1, 50)),
    depth: Math.floor(num("depth", 1, 1, 256)),
    readDepth: Math.floor(num("read-depth", 1, 1, 64)),
    conns: list("conns", "1,8").map(Number).filter((n) => Number.isInteger(n) && n > 0 && n <= 256),
    msizes: list("msizes", "65536,1048576").map(Number).filter((n) => Number.isInteger(n) && n >= 4096),
    procs: Math.floor(num("procs", 8, 1, 64)),
    only: new Set(list("only", "cycles,read")),
    nodeFlags: get("node-flags", "").split(/\s+/).filter(Boolean),
    diod: get("diod", "/usr/sbin/diod"),
    pi9Bin: get("pi9-bin", ""),
    json: get("json", ""),
  };
}

// ---- cleanup: everything started here is stopped on every way out ----------

const tmpDirs = new Set<string>();
let servers: Server[] = [];

function cleanupSync() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
}
process.on("exit", cleanupSync);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, () => { process.stderr.write(`bench: ${sig}: stopping\n`); process.exit(130); });

interface Metric {
  key: string;
  label: string;
  unit: string;
  jobs(s: Server, warmMs: number): Job[];
  value(r: { rate: number; byteRate: number }): number;
  /** Server CPU per unit of work. */
  cpuUnit: string;
  cpu(r: { ops: number; bytes: number; cpuNs: number }): number;
}

function split(n: number, parts: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < parts; i++) out.push(Math.floor(n / parts) + (i < n % parts ? 1 : 0));
  return out.filter((x) => x > 0);
}

function fmt(v: number) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }

function machine() {
  const cpus = os.cpus();
  let diodVersion = "diod";
  try { diodVersion = "diod " + execFileSync("dpkg-query", ["-W", "-f", "${Version}", "diod"], { encoding: "utf8" }).trim(); } catch { /* not Debian */ }
  return `${cpus.length} × ${cpus[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, node ${process.version}, ${diodVersion}`;
}

async function main() {
  const o = options();
  const started = Date.now();
  const load0 = os.loadavg()[0];
  const metrics: Metric[] = [];
  if (o.only.has("cycles")) for (const conns of o.conns) {
    metrics.push({
      key: `cycles-${conns}`, label: `small-op cycles/s, ${conns} conn${conns > 1 ? "s" : ""}`, unit: "cycles/s",
      jobs: (s, warmMs) => split(conns, Math.min(conns, o.procs)).map((n) => ({
        kind: "cycles", sock: s.sock, aname: s.aname, names: s.small, msize: 65536,
        readCount: 4096, expect: o.smallBytes, conns: n, depth: o.depth, warmMs,
      })),
      value: (r) => r.rate,
      cpuUnit: "µs/cycle", cpu: (r) => r.cpuNs / 1000 / r.ops,
    });
  }
  const size = o.sizeMiB * 2 ** 20;
  if (o.only.has("read")) for (const msize of o.msizes) {
    metrics.push({
      key: `read-${msize}`, label: `seq read MiB/s, msize ${msize >= 1 << 20 ? `${msize / 2 ** 20} MiB` : `${msize / 1024} KiB`}`, unit: "MiB/s",
      jobs: (s, warmMs) => [{ kind: "seqread", sock: s.sock, aname: s.aname, names: s.large, msize, size, depth: o.readDepth, warmMs }],
      value: (r) => r.byteRate / 2 ** 20,
      cpuUnit: "ms/GiB", cpu: (r) => r.cpuNs / 1e6 / (r.bytes / 2 ** 30),
    });
  }
  const steps = metrics.length * 2 * o.rounds;
  const boundMs = 60000 + o.rounds * (30000 + o.sizeMiB * 100) + steps * (o.seconds * 1000 + o.warmMs + 15000);
  const watchdog = setTimeout(() => { process.stderr.write(`bench: still running after ${Math.round(boundMs / 1000)} s: giving up\n`); process.exit(3); }, boundMs);
  watchdog.unref();

  process.stderr.write(`bench: ${machine()}\n`);
  process.stderr.write(`bench: preparing ${o.sizeMiB} MiB large body and ${o.smallBytes} B small file\n`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "pi9-bench-"));
  tmpDirs.add(tmp);
  const small = makeContent(o.smallBytes, 7);
  const large = makeContent(size, 9);
  const diodDir = prepareDiodDir(tmp, small, large);
  tmpDirs.add(diodDir);

  type Series = { pi9: number[]; diod: number[] };
  const results: Record<string, Series & { cpu: Series; msize: Record<string, number> }> = {};
  for (const m of metrics) results[m.key] = { pi9: [], diod: [], cpu: { pi9: [], diod: [] }, msize: {} };
  for (let r = 0; r < o.rounds; r++) {
    // Fresh server processes every round: on a busy machine a long-lived
    // process can keep a lucky or unlucky placement for the whole run.
    const t0 = Date.now();
    const pi9 = await startPi9(tmp, small, large, o.nodeFlags, o.pi9Bin || undefined);
    servers.push(pi9);
    const fill = (Date.now() - t0) / 1000;
    const diod = await startDiod(tmp, diodDir, o.diod);
    servers.push(diod);
    if (r === 0) {
      for (const s of servers) for (const m of o.msizes) await verify(s, small, large, m);
      process.stderr.write(`bench: pi9 filled through 9P in ${fill.toFixed(1)} s; both servers verified (same bytes at start, seam and end)\n`);
    }
    for (const [mi, m] of metrics.entries()) {
      const order = (r + mi) % 2 === 0 ? [pi9, diod] : [diod, pi9];
      for (const s of order) {
        const res = await measure(m.jobs(s, o.warmMs), o.seconds * 1000, s.proc.pid);
        const v = m.value(res), c = m.cpu(res);
        results[m.key][s.name].push(v);
        results[m.key].cpu[s.name].push(c);
        results[m.key].msize[s.name] = res.msize;
        process.stderr.write(`bench: round ${r + 1}/${o.rounds}  ${m.label.padEnd(32)} ${s.name.padEnd(4)} ${fmt(v).padStart(6)}  (server CPU ${fmt(c)} ${m.cpuUnit})\n`);
      }
    }
    for (const s of servers) await s.stop();
    servers = [];
  }

  // ---- report -----------------------------------------------------------
  const rows: string[][] = [["metric", "pi9", "diod", "pi9/diod"]];
  const cpuRows: string[][] = [["server CPU per unit of work", "pi9", "diod", "diod/pi9"]];
  const out: Record<string, unknown> = {};
  for (const m of metrics) {
    const r = results[m.key];
    const a = median(r.pi9), b = median(r.diod);
    const ca = median(r.cpu.pi9), cb = median(r.cpu.diod);
    let label = m.label;
    if (m.key.startsWith("read-") && r.msize.pi9 !== r.msize.diod) label += ` (negotiated: pi9 ${r.msize.pi9}, diod ${r.msize.diod})`;
    else if (m.key.startsWith("read-")) label += ` (negotiated ${r.msize.pi9})`;
    rows.push([label, fmt(a), fmt(b), `${(a / b).toFixed(2)}×`]);
    cpuRows.push([`${m.label.replace(/^[^,]*, /, m.key.startsWith("read-") ? "seq read, " : "small-op cycle, ")} (${m.cpuUnit})`, fmt(ca), fmt(cb), `${(cb / ca).toFixed(2)}×`]);
    out[m.key] = { label, unit: m.unit, pi9: a, diod: b, ratio: a / b, cpuUnit: m.cpuUnit, cpuPi9: ca, cpuDiod: cb, cpuRatio: cb / ca, rounds: r };
  }
  const table = (t: string[][]) => {
    const widths = t[0].map((_, i) => Math.max(...t.map((row) => row[i].length)));
    const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    process.stdout.write(line(t[0]) + "\n" + widths.map((w) => "-".repeat(w)).join("  ") + "\n");
    for (const row of t.slice(1)) process.stdout.write(line(row) + "\n");
  };
  process.stdout.write(`\npi9 vs diod — ${machine()}\n`);
  process.stdout.write(`unix sockets; medians of ${o.rounds} rounds of ${o.seconds} s; small-op depth ${o.depth}/conn; read depth ${o.readDepth}; large body ${o.sizeMiB} MiB; small file ${o.smallBytes} B; load average ${load0.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end\n\n`);
  table(rows);
  process.stdout.write("\n");
  table(cpuRows);
  process.stdout.write(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ machine: machine(), options: { ...o, only: [...o.only] }, results: out }, null, 2) + "\n");

  clearTimeout(watchdog);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`bench: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
