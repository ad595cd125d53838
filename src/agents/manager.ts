// Agents behind windows: the `spawn` and `agent` requests of
// /mnt/xenith/new, the folders agents may run in, and shutdown.

import { mkdirSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { realInside, within } from "../lib/confine.js";
import os from "node:os";
import path from "node:path";
import { FsError } from "../fs/errors.js";
import type { Xenith } from "../xenith/xenith.js";
import { AgentWindow, parseArgs } from "./agent.js";
import { makeScriptAgent } from "./script.js";
import { piCommand, PiOptions, PiRpcBackend, defaultPiPath } from "./pi-rpc.js";

export interface AgentOptions {
  /** Folders agents may run in (and below). Default: the user's home. */
  roots?: string[];
  /** How spawned pis run (path, extra args and environment). */
  pi?: PiOptions;
  /** State folder: spawned agents log pi's stderr to <state>/agents/<id>.log. Default ~/.local/state/pi9. */
  stateDir?: string;
}

export class Agents {
  readonly agents = new Map<number, AgentWindow>();
  readonly roots: string[];

  constructor(readonly x: Xenith, readonly opts: AgentOptions = {}) {
    this.roots = (opts.roots && opts.roots.length ? opts.roots : [os.homedir()]).map((r) => path.resolve(expandHome(r)));
    x.newVerbs.set("agent", (_v, args) => this.script(args));
    x.newVerbs.set("spawn", (_v, args) => this.spawn(args));
  }

  /** `agent name=… [cwd=…]`: a window served by whatever program reads its inbox. */
  async script(args: string): Promise<number> {
    const { pos, kv } = parseArgs(args);
    if (pos.length) throw new FsError("EINVAL", `agent: unexpected ${pos.join(" ")}: want agent name=… [cwd=…]`);
    for (const k of kv.keys()) if (k !== "name" && k !== "cwd") throw new FsError("EINVAL", `agent: unknown option ${k}`);
    const name = kv.get("name");
    if (!name) throw new FsError("EINVAL", "agent: name=… is required");
    const cwd = kv.has("cwd") ? await this.resolveDir(kv.get("cwd")!, false) : "";
    const w = this.x.createWindow("script", name, cwd);
    const a = makeScriptAgent(this.x, w);
    this.track(a);
    return w.id;
  }

  /**
   * `spawn <dir> [name=…] [model=…] [mkdir]`: pi in RPC mode as a child, in
   * <dir> (made first with mkdir). Resolves once pi answers, with the
   * window's id; a pi that cannot start fails the request and leaves no window.
   */
  async spawn(args: string): Promise<number> {
    const { pos, kv } = parseArgs(args);
    const usage = "want spawn <dir> [name=…] [model=…] [mkdir]";
    if (!pos.length) throw new FsError("EINVAL", `spawn: missing folder: ${usage}`);
    const [dir, ...rest] = pos;
    for (const w of rest) if (w !== "mkdir") throw new FsError("EINVAL", `spawn: unexpected ${w}: ${usage}`);
    for (const k of kv.keys()) if (k !== "name" && k !== "model") throw new FsError("EINVAL", `spawn: unknown option ${k}: ${usage}`);
    if (kv.has("model") && !kv.get("model")) throw new FsError("EINVAL", "spawn: model= wants provider/id");
    const piOpts = this.opts.pi ?? {};
    let cwd: string;
    try {
      cwd = await this.resolveDir(dir, rest.includes("mkdir"));
      // A missing pi fails the request before any window exists.
      piCommand(piOpts.path ?? defaultPiPath());
    } catch (e) { throw e instanceof FsError ? new FsError(e.code, `spawn: ${e.message}`) : e; }
    const name = kv.get("name") || path.basename(cwd) || "pi";
    const logDir = path.join(this.opts.stateDir ?? defaultStateDir(), "agents");
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
    const w = this.x.createWindow("pi", name, cwd);
    const b = new PiRpcBackend(piOpts, { cwd, model: kv.get("model"), logFile: path.join(logDir, `${w.id}.log`) });
    const a = new AgentWindow(this.x, w, b);
    this.track(a);
    try {
      await b.start(a);
    } catch (e) {
      this.agents.delete(w.id);
      if (!w.deleted) this.x.delete(w.id);
      throw e instanceof FsError ? new FsError(e.code, `spawn: ${e.message}`) : e;
    }
    return w.id;
  }

  track(a: AgentWindow) {
    this.agents.set(a.w.id, a);
    const stop = a.w.stop;
    a.w.stop = async () => { try { await stop?.(); } finally { this.agents.delete(a.w.id); } };
  }

  /**
   * Resolve a folder an agent may use: `~` is the home, relative paths are
   * taken from the home, and the real path must lie in one of the roots.
   * With create, a missing folder is made (mkdir -p) inside a root.
   */
  async resolveDir(p: string, create: boolean): Promise<string> {
    const abs = path.resolve(os.homedir(), expandHome(p));
    if (!this.roots.some((r) => within(abs, r))) throw new FsError("EACCES", `${abs}: outside the folders agents may use (${this.roots.join(", ")})`);
    let st;
    // Judged by where it really is before anything is created: a link inside a root may point out.
    if (!(await realInside(abs, this.roots))) throw new FsError("EACCES", `${abs}: resolves outside the folders agents may use`);
    try { st = await stat(abs); } catch {
      if (!create) throw new FsError("ENOENT", `${abs}: no such folder (add mkdir to create it)`);
      await mkdir(abs, { recursive: true });
      st = await stat(abs);
    }
    if (!st.isDirectory()) throw new FsError("ENOTDIR", `${abs}: not a folder`);
    const real = await realInside(abs, this.roots);
    if (!real) throw new FsError("EACCES", `${abs}: resolves outside the folders agents may use`);
    return real;
  }

  /** Stop every agent (server shutdown). */
  async shutdown() {
    await Promise.all([...this.agents.values()].map((a) => a.w.stop?.().catch(() => {})));
  }
}

export function defaultStateDir() {
  return path.join(process.env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state"), "pi9");
}

export function expandHome(p: string) {
  return p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}
