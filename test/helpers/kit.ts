// Real third-party clients for tests: the v9fs VM kit (Linux's kernel 9P
// client under QEMU, ../shared/tools/v9fs-vm) and diod's client tools.
//
// Skip rule: a missing client skips its suite on a developer's machine, but
// under CI (CI set and not "false"/"0") it is a failure, so CI can never pass
// by quietly testing nothing.

import { execFile } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Test } from "tap";
import { ROOT } from "./serve.js";

export const KIT = process.env.V9FS_KIT || path.resolve(ROOT, "..", "shared", "tools", "v9fs-vm");
export const VM_HOME = process.env.V9FS_VM_HOME || path.join(os.homedir(), ".cache", "v9fs-vm");
export const KERNELS = ["6.1", "6.12"] as const;
export const VERSIONS = ["9p2000.L", "9p2000.u", "9p2000"] as const;

export function underCI(): boolean {
  const v = process.env.CI;
  return !!v && v !== "false" && v !== "0";
}

function executable(p: string): boolean {
  try { accessSync(p, constants.X_OK); return statSync(p).isFile(); } catch { return false; }
}

function nonEmpty(p: string): boolean {
  try { return statSync(p).size > 0; } catch { return false; }
}

/** Find a program on PATH, or in the sbin directories (diod's tools live in /usr/sbin). */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const d of dirs) if (d && executable(path.join(d, name))) return path.join(d, name);
  return null;
}

/** Why the v9fs kit cannot run here, or null when it can. */
export function kitMissing(): string | null {
  const run = path.join(KIT, "run");
  if (!executable(run)) return `no executable ${run}`;
  if (!which("qemu-system-x86_64")) return "qemu-system-x86_64 is not installed (run the kit's setup)";
  for (const k of KERNELS) {
    for (const f of ["vmlinux", "base.cpio.gz"]) {
      const p = path.join(VM_HOME, k, f);
      if (!nonEmpty(p)) return `kernel ${k} is not set up: no ${p} (run ${path.join(KIT, "setup")})`;
    }
  }
  return null;
}

/**
 * Apply the skip rule to a tap test: returns true when the suite may run.
 * Otherwise the file is skipped, or under CI fails with the reason.
 */
export function gate(t: Test, what: string, missing: string | null): boolean {
  if (!missing) return true;
  if (underCI()) { t.fail(`${what} is required under CI: ${missing}`); return false; }
  t.plan(0, `skip: ${what} not available: ${missing}`);
  return false;
}

export interface Ran { code: number; stdout: string; stderr: string }

/** Run a program asynchronously (never execFileSync: the event loop must stay free). */
export function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { env: opts.env ?? process.env, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 0, killSignal: "SIGTERM" },
      (err, stdout, stderr) => {
        let code = 0;
        if (err) {
          const c = (err as { code?: unknown }).code;
          code = typeof c === "number" ? c : 99;
          if ((err as { killed?: boolean }).killed) stderr += `\n[killed after ${opts.timeoutMs} ms]`;
        }
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
  });
}

/**
 * One VM boot: mount `server` (a unix socket path) with the given kernel and
 * dialect and run the busybox sh script file in the mount point.
 */
export async function v9fs(server: string, scriptFile: string, env: { kernel: string; version: string; aname?: string; timeoutSec?: number }): Promise<Ran> {
  const tmo = env.timeoutSec ?? 120;
  const e: NodeJS.ProcessEnv = { ...process.env, V9FS_KERNEL: env.kernel, V9FS_VERSION: env.version, V9FS_ANAME: env.aname ?? "", V9FS_TIMEOUT: String(tmo), V9FS_VM_HOME: VM_HOME };
  delete e.NODE_OPTIONS;
  const release = await vmSlot();
  // The kit enforces its own timeout; ours is only a guard should the kit itself hang.
  try { return await run(path.join(KIT, "run"), [server, scriptFile], { env: e, timeoutMs: (tmo + 60) * 1000 }); }
  finally { release(); }
}

/** VMs allowed at once on this machine, across every test file tap runs in parallel. */
export const VM_SLOTS = Math.max(1, Number(process.env.V9FS_PARALLEL) || 2);
const SLOT_DIR = path.join(os.tmpdir(), `pi9-v9fs-slots-${process.getuid?.() ?? 0}`);

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
}

/**
 * Take one of VM_SLOTS machine-wide slots (a directory made with mkdir, which
 * is atomic, holding the owner's pid); a slot whose owner died is reclaimed.
 * The wait is bounded by a generous guard, not a timing assertion.
 */
async function vmSlot(): Promise<() => void> {
  mkdirSync(SLOT_DIR, { recursive: true });
  for (let tries = 0; tries < 9000; tries++) { // 9000 × 200 ms = 30 min
    for (let i = 0; i < VM_SLOTS; i++) {
      const d = path.join(SLOT_DIR, `slot-${i}`);
      try {
        mkdirSync(d);
        writeFileSync(path.join(d, "pid"), String(process.pid));
        let released = false;
        return () => { if (!released) { released = true; rmSync(d, { recursive: true, force: true }); } };
      } catch { /* taken */ }
      let owner = NaN, age = 0;
      try { owner = Number(readFileSync(path.join(d, "pid"), "utf8")); } catch { /* being created or removed */ }
      try { age = Date.now() - statSync(d).mtimeMs; } catch { /* gone */ }
      // Dead owner, or a slot left without its pid file (owner died right after mkdir).
      if ((owner && !alive(owner)) || (!owner && age > 10000)) {
        // Reclaim: only the process whose rename succeeds removes it.
        const grave = `${d}.stale-${process.pid}-${tries}`;
        try { renameSync(d, grave); rmSync(grave, { recursive: true, force: true }); } catch { /* someone else did */ }
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no free VM slot in ${SLOT_DIR} after 30 minutes`);
}

/**
 * A limiter: at most n tasks at once (the VMs are CPU-bound under TCG, and
 * CI machines have two cores). Slots are handed straight to the next waiter.
 */
export function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active < n) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try { return await fn(); } finally {
      const next = waiting.shift();
      if (next) next(); else active--;
    }
  };
}

/** The text of a `== title` section of a script's output, up to the next `== ` line, without `@@` marker lines. */
export function section(out: string, title: string): string {
  const lines = out.split("\n").filter((l) => !l.startsWith("@@ "));
  const i = lines.findIndex((l) => l === `== ${title}`);
  if (i < 0) return "";
  const rest = lines.slice(i + 1);
  const j = rest.findIndex((l) => l.startsWith("== "));
  return (j < 0 ? rest : rest.slice(0, j)).join("\n");
}

/** Values of the `@@ key value` marker lines a script prints. */
export function marks(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of out.split("\n")) {
    const r = /^@@ (\S+) ?(.*)$/.exec(l);
    if (r) m.set(r[1], r[2]);
  }
  return m;
}

/**
 * Run one busybox script under v9fs for each kernel × dialect case, each
 * against a fresh `pi9 serve` (one VM run is one connection), at most two
 * VMs at once, and check each run's output in its own subtest.
 */
export async function eachKernel(t: Test, scriptText: string,
  cases: ReadonlyArray<readonly [string, string]>, aname: string,
  check: (t: Test, out: string, r: Ran) => void | Promise<void>): Promise<void> {
  if (!gate(t, "the v9fs VM kit", kitMissing())) return;
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const { startServe } = await import("./serve.js");
  mkdirSync(t.testdirName, { recursive: true });
  const script = path.join(t.testdirName, "script.sh");
  writeFileSync(script, scriptText);
  const lim = limiter(2);
  await Promise.all(cases.map(([kernel, version]) => lim(async () => {
    const s = await startServe();
    try {
      const r = await v9fs(s.sock, script, { kernel, version, aname });
      await t.test(`${kernel} ${version}`, async (t) => {
        t.equal(r.code, 0, `script exit status (stderr: ${r.stderr.slice(-1500)})`);
        await check(t, r.stdout, r);
      });
    } finally {
      await s.stop();
    }
  })));
}
