// Running the load client (bench/load.ts) for one timed measurement, and
// reading how much CPU a server process spent meanwhile.

import { ChildProcess, fork } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FromWorker, Job, Result, ToWorker } from "./load.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Load-client processes alive now (run.ts kills them on every way out). */
export const children = new Set<ChildProcess>();

export interface Measured { ops: number; bytes: number; ms: number; msize: number; rate: number; byteRate: number; cpuNs: number }

/**
 * CPU time (ns) used so far by every thread of a process, from
 * /proc/<pid>/task/<tid>/schedstat. Less sensitive to a busy machine than
 * throughput: it is what the server spent, not how long it waited.
 */
export function cpuNs(pid: number | undefined): number {
  if (!pid) return NaN;
  let total = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try { total += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]); } catch { /* thread ended */ }
    }
  } catch { return NaN; }
  return total;
}

/** One timed measurement: fork the workers, let them connect and warm up, start them together, sum. */
export async function measure(jobs: Job[], ms: number, serverPid?: number): Promise<Measured> {
  const workers = jobs.map(() => {
    const c = fork(path.join(HERE, "load.js"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    children.add(c);
    c.once("exit", () => children.delete(c));
    return c;
  });
  const next = (c: ChildProcess, what: string, timeoutMs: number) => new Promise<FromWorker>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`load client: no ${what} within ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null) => { clearTimeout(t); reject(new Error(`load client exited (${code}) before ${what}`)); };
    c.once("exit", onExit);
    c.once("message", (m: FromWorker) => {
      clearTimeout(t); c.off("exit", onExit);
      if ("error" in m) reject(new Error(`load client: ${m.error}`)); else resolve(m);
    });
  });
  try {
    const ready = workers.map((c, i) => { const p = next(c, "ready", 30000 + jobs[i].warmMs); c.send({ cmd: "job", job: jobs[i] } satisfies ToWorker); return p; });
    const readies = await Promise.all(ready);
    const cpu0 = cpuNs(serverPid);
    const results = workers.map((c) => { const p = next(c, "result", ms + 30000); c.send({ cmd: "go", ms } satisfies ToWorker); return p; });
    const rs = (await Promise.all(results)).map((m) => (m as { result: Result }).result);
    const cpu = cpuNs(serverPid) - cpu0;
    let rate = 0, byteRate = 0, ops = 0, bytes = 0, maxMs = 0;
    for (const r of rs) { rate += r.ops / (r.ms / 1000); byteRate += r.bytes / (r.ms / 1000); ops += r.ops; bytes += r.bytes; maxMs = Math.max(maxMs, r.ms); }
    const msize = (readies[0] as { msize: number }).msize;
    return { ops, bytes, ms: maxMs, msize, rate, byteRate, cpuNs: cpu };
  } finally {
    for (const c of workers) { if (c.connected) c.send({ cmd: "exit" } satisfies ToWorker); }
    await Promise.all(workers.map((c) => new Promise<void>((r) => {
      if (c.exitCode !== null || c.signalCode !== null) { r(); return; }
      const t = setTimeout(() => c.kill("SIGKILL"), 3000);
      c.once("exit", () => { clearTimeout(t); r(); });
    })));
  }
}

export function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
