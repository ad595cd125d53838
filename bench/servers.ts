// The two servers under test, started as child processes on unix sockets:
// pi9 (`node bin/pi9 serve`) and diod (`diod -f -n -e <dir on /dev/shm>`),
// plus the content they serve, which is the same bytes for both.

import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { L_O_APPEND, L_O_RDWR, L_O_WRONLY } from "../src/ninep/constants.js";
import { BenchError, Wire } from "./wire.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface Server {
  name: "pi9" | "diod";
  sock: string;
  aname: string;
  /** Walk names (from the attach root) of the small file and of the large body. */
  small: string[];
  large: string[];
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Deterministic text: pseudo-random printable lines, so both servers hold the same bytes. */
export function makeContent(size: number, seed = 9): Buffer {
  const blockLen = Math.min(size, 1 << 20);
  const block = Buffer.allocUnsafe(blockLen);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < blockLen; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    block[i] = i % 72 === 71 ? 10 : 32 + (x % 95);
  }
  const out = Buffer.allocUnsafe(size);
  for (let o = 0; o < size; o += blockLen) block.copy(out, o, 0, Math.min(blockLen, size - o));
  // Make the blocks differ, so a read at the wrong offset cannot pass verification.
  for (let o = 0; o + 16 <= size; o += blockLen) out.write(`@${(o / blockLen).toString(16).padStart(14, "0")}\n`, o, "latin1");
  return out;
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
    const t = setTimeout(() => { p.kill("SIGKILL"); }, ms);
    p.once("exit", () => { clearTimeout(t); resolve(); });
  });
}

async function stopProc(p: ChildProcess) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill("SIGTERM");
  await waitExit(p, 3000);
}

function connectable(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(sock)) { resolve(false); return; }
    const c = net.connect(sock);
    c.once("connect", () => { c.destroy(); resolve(true); });
    c.once("error", () => resolve(false));
  });
}

function collectStderr(p: ChildProcess): () => string {
  let err = "";
  p.stderr?.setEncoding("utf8");
  p.stderr?.on("data", (d: string) => { err += d; if (err.length > 65536) err = err.slice(-32768); });
  return () => err;
}

async function waitReady(name: string, p: ChildProcess, sock: string, stderr: () => string) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null || p.signalCode !== null) throw new BenchError(`${name} exited (${p.exitCode ?? p.signalCode}): ${stderr()}`);
    if (await connectable(sock)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  p.kill("SIGKILL");
  throw new BenchError(`${name} did not start listening on ${sock}: ${stderr()}`);
}

/** Start `pi9 serve` and fill two windows through 9P: a small body and the large body. */
export async function startPi9(tmp: string, small: Buffer, large: Buffer, nodeFlags: string[], bin = path.join(ROOT, "bin", "pi9"), label = "pi9"): Promise<Server> {
  const sock = path.join(tmp, `${label}.sock`);
  const proc = spawn(process.execPath, [...nodeFlags, bin, "serve", "--listen", `unix!${sock}`,
    "--http", "off", "--state", path.join(tmp, `${label}-state`), "--log-level", "warn"],
  { stdio: ["ignore", "ignore", "pipe"], cwd: tmp });
  const stderr = collectStderr(proc);
  await waitReady("pi9", proc, sock, stderr);
  const aname = "/mnt/xenith";
  let smallId = "", largeId = "";
  try {
    const w = await Wire.connect(sock);
    try {
      await w.handshake(1 << 20, aname);
      smallId = await newWindow(w, "bench-small");
      await appendBody(w, smallId, small);
      largeId = await newWindow(w, "bench-large");
      await appendBody(w, largeId, large);
    } finally { w.close(); }
  } catch (e) { await stopProc(proc); throw e; }
  return {
    name: "pi9", sock, aname, small: [smallId, "body"], large: [largeId, "body"], proc,
    stop: () => stopProc(proc),
  };
}

async function newWindow(w: Wire, name: string): Promise<string> {
  await w.request({ type: "Twalk", tag: 2, fid: 0, newfid: 10, wnames: ["new"] });
  await w.request({ type: "Tlopen", tag: 2, fid: 10, flags: L_O_RDWR });
  await w.request({ type: "Twrite", tag: 2, fid: 10, offset: 0, data: Buffer.from(`window ${name}\n`) });
  w.keepReadData = true;
  const r = await w.request({ type: "Tread", tag: 2, fid: 10, offset: 0, count: 64 });
  w.keepReadData = false;
  await w.request({ type: "Tclunk", tag: 2, fid: 10 });
  return (r.data as Buffer).toString("utf8").trim();
}

async function appendBody(w: Wire, id: string, data: Buffer) {
  await w.request({ type: "Twalk", tag: 2, fid: 0, newfid: 11, wnames: [id, "body"] });
  await w.request({ type: "Tlopen", tag: 2, fid: 11, flags: L_O_WRONLY | L_O_APPEND });
  const step = w.msize - 24;
  for (let off = 0; off < data.length;) {
    const r = await w.request({ type: "Twrite", tag: 2, fid: 11, offset: off, data: data.subarray(off, Math.min(data.length, off + step)) });
    off += r.count;
  }
  await w.request({ type: "Tclunk", tag: 2, fid: 11 });
}

/** A directory on /dev/shm (tmpfs) holding the same two files, for diod to export. */
export function prepareDiodDir(tmp: string, small: Buffer, large: Buffer): string {
  const shmBase = existsSync("/dev/shm") ? "/dev/shm" : tmp;
  const dir = mkdtempSync(path.join(shmBase, "pi9-bench-"));
  try {
    for (const [sub, data] of [["1", small], ["2", large]] as const) {
      mkdirSync(path.join(dir, sub));
      writeFileSync(path.join(dir, sub, "body"), data);
    }
  } catch (e) { rmSync(dir, { recursive: true, force: true }); throw e; }
  return dir;
}

/** Start diod exporting `dir` (from prepareDiodDir). */
export async function startDiod(tmp: string, dir: string, diodBin: string): Promise<Server> {
  if (!existsSync(diodBin)) throw new BenchError(`no diod at ${diodBin}: install Debian's diod package or pass --diod <path>`);
  const sock = path.join(tmp, "diod.sock");
  const args = ["-f", "-n", "-l", sock, "-e", dir, "-c", "/dev/null", "-L", "stderr"];
  const proc = spawn(diodBin, args, { stdio: ["ignore", "ignore", "pipe"] });
  const stderr = collectStderr(proc);
  proc.once("error", () => { /* reported by waitReady through exitCode */ });
  await waitReady("diod", proc, sock, stderr);
  return {
    name: "diod", sock, aname: dir, small: ["1", "body"], large: ["2", "body"], proc,
    stop: () => stopProc(proc),
  };
}

/** Read a few ranges back (start, a chunk seam, the end) and compare with what was written. */
export async function verify(s: Server, small: Buffer, large: Buffer, msize: number) {
  const w = await Wire.connect(s.sock);
  try {
    const m = await w.handshake(msize, s.aname);
    const count = m - 24;
    w.keepReadData = true;
    const check = async (names: string[], data: Buffer, offsets: number[]) => {
      await w.request({ type: "Twalk", tag: 2, fid: 0, newfid: 20, wnames: names });
      await w.request({ type: "Tlopen", tag: 2, fid: 20, flags: 0 });
      for (const off of offsets) {
        const r = await w.request({ type: "Tread", tag: 2, fid: 20, offset: off, count });
        const want = data.subarray(off, Math.min(data.length, off + count));
        if (!want.equals(r.data)) throw new BenchError(`${s.name}: ${names.join("/")} at ${off}: content differs (${r.data.length} bytes, expected ${want.length})`);
      }
      await w.request({ type: "Tclunk", tag: 2, fid: 20 });
    };
    await check(s.small, small, [0]);
    const seam = Math.max(0, Math.min(large.length - 1, (1 << 20) - 24 - 1000));
    await check(s.large, large, [0, seam, Math.max(0, large.length - Math.floor(count / 2)), large.length]);
  } finally { w.close(); }
}
