// Agents behind windows: the `spawn` and `agent` requests of
// /mnt/xenith/new, the folders agents may run in, and shutdown.

import { mkdir, realpath, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FsError } from "../fs/errors.js";
import type { Xenith } from "../xenith/xenith.js";
import { AgentWindow, parseArgs } from "./agent.js";
import { makeScriptAgent } from "./script.js";

export interface AgentOptions {
  /** Folders agents may run in (and below). Default: the user's home. */
  roots?: string[];
}

export class Agents {
  readonly agents = new Map<number, AgentWindow>();
  readonly roots: string[];

  constructor(readonly x: Xenith, readonly opts: AgentOptions = {}) {
    this.roots = (opts.roots && opts.roots.length ? opts.roots : [os.homedir()]).map((r) => path.resolve(expandHome(r)));
    x.newVerbs.set("agent", (_v, args) => this.script(args));
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
    const inRoot = (q: string) => this.roots.some((r) => q === r || q.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
    if (!inRoot(abs)) throw new FsError("EACCES", `${abs}: outside the folders agents may use (${this.roots.join(", ")})`);
    let st;
    try { st = await stat(abs); } catch {
      if (!create) throw new FsError("ENOENT", `${abs}: no such folder (add mkdir to create it)`);
      await mkdir(abs, { recursive: true });
      st = await stat(abs);
    }
    if (!st.isDirectory()) throw new FsError("ENOTDIR", `${abs}: not a folder`);
    const real = await realpath(abs);
    const realRoots = await Promise.all(this.roots.map((r) => realpath(r).catch(() => r)));
    if (!realRoots.some((r) => real === r || real.startsWith(r + path.sep))) throw new FsError("EACCES", `${abs}: resolves outside the folders agents may use`);
    return real;
  }

  /** Stop every agent (server shutdown). */
  async shutdown() {
    await Promise.all([...this.agents.values()].map((a) => a.w.stop?.().catch(() => {})));
  }
}

export function expandHome(p: string) {
  return p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}
