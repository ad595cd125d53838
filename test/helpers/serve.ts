// Start a real `pi9 serve` process for a test, on a private unix socket (and
// optionally a loopback TCP port), and stop it afterwards.

import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
/** The CLI entry (bin/pi9 imports it; tap instruments spawned node children, which trips over an extensionless ESM file). */
export const BIN = path.join(ROOT, "dist", "src", "cli", "main.js");

/**
 * The environment for child processes: tap injects its loaders through
 * NODE_OPTIONS, which must not leak into the programs under test.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) if (k.startsWith("TAP") || k.startsWith("_TAP")) delete env[k];
  return env;
}

export interface Served {
  sock: string;
  port: number | null;
  /** The HTTP/WebSocket port, when started with `http: true`. */
  httpPort: number | null;
  dir: string;
  proc: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

/** `http: true` serves the HTTP/WebSocket services on a free loopback port (Served.httpPort); by default they are off. */
export async function startServe(opts: { tcp?: boolean; http?: boolean; args?: string[]; env?: Record<string, string> } = {}): Promise<Served> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pi9-test-"));
  const sock = path.join(dir, "pi9.sock");
  const port = opts.tcp ? await freePort() : null;
  const httpPort = opts.http ? await freePort() : null;
  const args = [BIN, "serve", "--listen", `unix!${sock}`, "--state", path.join(dir, "state"), "--http", httpPort ? `127.0.0.1:${httpPort}` : "off", ...(port ? ["--listen", `tcp!127.0.0.1!${port}`] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: childEnv(opts.env) });
  let err = "";
  proc.stderr!.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pi9 serve did not start: ${err}`)), 15000);
    proc.stderr!.on("data", (d: string) => {
      err += d;
      const want = port ? `tcp!127.0.0.1!${port}` : `unix!${sock}`;
      if (err.includes(`listening on ${want}`)) { clearTimeout(t); resolve(); }
    });
    proc.once("exit", (code) => { clearTimeout(t); reject(new Error(`pi9 serve exited with ${code}: ${err}`)); });
  });
  return {
    sock, port, httpPort, dir, proc,
    stderr: () => err,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) { rmSync(dir, { recursive: true, force: true }); resolve(proc.exitCode); return; }
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      proc.once("exit", (code) => { clearTimeout(t); rmSync(dir, { recursive: true, force: true }); resolve(code); });
      proc.kill("SIGTERM");
    }),
  };
}

/** Run `pi9 <args>` to its end (bounded), for commands that exit by themselves. */
export function runPi9(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"], env: childEnv(env) });
    let stderr = "";
    p.stderr!.on("data", (d) => (stderr += d));
    const guard = setTimeout(() => p.kill("SIGKILL"), 20000);
    p.on("exit", (code) => { clearTimeout(guard); resolve({ code, stderr }); });
  });
}
