// `pi9 serve`: build the namespace and serve it on every requested transport.

import { mkdirSync, readFileSync, unlinkSync } from "node:fs";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { buildNamespace, Namespace } from "../namespace.js";
import { Level, Logger, makeLogger } from "../lib/log.js";
import { NinepServer } from "../ninep/server.js";
import { DEFAULT_HTTP_PORT, Hypivisor } from "../agents/hypivisor.js";
import { HttpFront } from "../http/front.js";
import { Addr, AddrError, defaultSocketPath, DEFAULT_PORT, formatAddr, isLoopback, parseAddr } from "../lib/addr.js";
import { listen, stdioStream } from "../ninep/transport.js";

export interface ServeOptions {
  listen?: string[];
  stdio?: boolean;
  state?: string;
  http?: string;
  token?: string;
  logLevel?: Level;
  log?: Logger;
  /** Folders spawned agents may run in (default: home). */
  agentRoots?: string[];
  /** pi for spawned agents: its path, extra arguments, extra environment (KEY=VAL). */
  pi?: string;
  piArgs?: string[];
  piEnv?: string[];
}

export interface Running {
  ns: Namespace;
  server: NinepServer;
  addrs: Addr[];
  close(): Promise<void>;
}

export class UsageError extends Error {}

export function defaultStateDir() {
  return path.join(process.env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state"), "pi9");
}

export function resolveToken(opt: { token?: string; tokenFile?: string }): string | undefined {
  if (opt.token) return opt.token;
  if (opt.tokenFile) {
    try { return readFileSync(opt.tokenFile, "utf8").trim() || undefined; }
    catch (e) { throw new UsageError(`--token-file ${opt.tokenFile}: ${(e as Error).message}`); }
  }
  return process.env.PI9_TOKEN || process.env.HYPI_TOKEN || undefined;
}

export async function serve(o: ServeOptions): Promise<Running> {
  const log = o.log ?? makeLogger(o.logLevel ?? "info");
  let addrs: Addr[];
  try {
    addrs = (o.listen && o.listen.length ? o.listen : o.stdio ? [] : [`tcp!127.0.0.1!${DEFAULT_PORT}`, `unix!${defaultSocketPath()}`])
      .map((a) => parseAddr(a));
  } catch (e) {
    throw new UsageError(`--listen: ${(e as Error).message}`);
  }
  for (const a of addrs) {
    if (!isLoopback(a) && !o.token) throw new UsageError(`refusing to listen on ${formatAddr(a)} without a token: pass --token-file, set PI9_TOKEN, or listen on loopback`);
  }
  let httpAddr: Addr | null = null;
  if (o.http && o.http !== "off") {
    try { httpAddr = parseAddr(o.http, DEFAULT_HTTP_PORT); } catch (e) { throw new UsageError(`--http: ${(e as Error).message}`); }
    if (!isLoopback(httpAddr) && !o.token) throw new UsageError(`refusing to serve HTTP on ${formatAddr(httpAddr)} without a token: pass --token-file, set PI9_TOKEN, or use a loopback --http address`);
  }
  const state = o.state ?? defaultStateDir();
  mkdirSync(state, { recursive: true, mode: 0o700 });

  const piEnv: Record<string, string> = {};
  for (const kv of o.piEnv ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`--pi-env ${kv}: want KEY=VALUE`);
    piEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const ns = buildNamespace({
    cwd: process.cwd(),
    agents: { roots: o.agentRoots, stateDir: state, pi: { path: o.pi, args: o.piArgs, env: piEnv } },
  });
  const server = new NinepServer({ root: ns.root, token: o.token, log });
  // The HTTP/WebSocket front, shared by every subsystem's routes, up before 9P is announced.
  let front: HttpFront | null = null;
  let hyp: Hypivisor | null = null;
  if (httpAddr) {
    front = new HttpFront({ token: o.token, log });
    hyp = new Hypivisor(ns.xenith, ns.agents, { token: o.token, log });
    hyp.mount(front);
    try {
      const at = await front.listen(httpAddr);
      log.info(`hypivisor: listening on ${at} (/ws, /ws/agent/<id>)${o.token ? " (token required)" : ""}`);
    } catch (e) {
      await hyp.close();
      await front.close();
      throw new UsageError((e as Error).message);
    }
  }
  const listeners: { srv: net.Server; addr: Addr }[] = [];
  try {
    for (const a of addrs) {
      const srv = await listen(a, (s, label) => { log.debug(`connection from ${label}`); server.serve(s, label); });
      listeners.push({ srv, addr: a });
      log.info(`listening on ${formatAddr(a)}${o.token ? " (token required)" : ""}`);
    }
  } catch (e) {
    for (const l of listeners) l.srv.close();
    await hyp?.close();
    await front?.close();
    throw e instanceof AddrError ? new UsageError(e.message) : e;
  }
  let stdioDone: Promise<void> | null = null;
  if (o.stdio) {
    const s = stdioStream();
    server.serve(s, "stdio");
    stdioDone = new Promise((resolve) => { s.once("close", () => resolve()); s.once("end", () => resolve()); });
    log.info("serving one connection on stdin/stdout");
  }
  let closed = false;
  const running: Running = {
    ns, server, addrs,
    async close() {
      if (closed) return;
      closed = true;
      await hyp?.close();
      await front?.close();
      // Spawned agents first: every pi child is stopped, none is left behind.
      await ns.agents.shutdown();
      server.closeAll();
      await Promise.all(listeners.map((l) => new Promise<void>((r) => l.srv.close(() => r()))));
      for (const l of listeners) if (l.addr.kind === "unix") { try { unlinkSync(l.addr.path); } catch { /* already gone */ } }
    },
  };
  if (stdioDone) void stdioDone.then(() => { if (!o.listen?.length) void running.close(); });
  return running;
}
