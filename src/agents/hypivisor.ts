// pi9's HTTP/WebSocket face, a drop-in for hyper-pi's hypivisor (protocol
// version "1"), so pi agents running pi-socket register with pi9 unchanged
// and the Pi-DE web app works against it:
//
//   /ws              the registry: JSON requests {id?, method, params?},
//                    responses {id?, result?|error?}, push events
//                    init, node_joined, node_offline, node_removed
//   /ws/agent/<id>   pi-socket's agent protocol for every agent window:
//                    relayed to a pi-socket agent's own socket, or served
//                    by pi9 for the agents it runs itself (agent-socket.ts)
//
// A token (when pi9 has one) is required on every path as ?token=, else
// HTTP 401. Where pi9 differs from hypivisor, on purpose:
//   - a registered pi-socket agent is a window (pi-socket.ts); when its
//     registering socket drops the node goes offline and stays listed, never
//     removed by a TTL (windows of pi-socket agents go offline, never away);
//     a later register with the same id revives it;
//   - pi9's own agent windows (kinds pi and script) are listed as nodes too,
//     with id = the window id, machine = this host, port = the HTTP port;
//   - spawn_agent starts pi as a window (the `spawn` request of
//     /mnt/xenith/new), not a detached `pi` in a terminal;
//   - a /ws client whose socket stops answering pings is dropped (its node
//     goes offline), where hypivisor removes "active ghosts" by last_seen.

import { mkdir, readdir, realpath, stat } from "node:fs/promises";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import WebSocket, { WebSocketServer } from "ws";
import type { Logger } from "../lib/log.js";
import { Addr, formatAddr } from "../lib/addr.js";
import { tokenMatches } from "../lib/token.js";
export { tokenMatches };
import type { Lifecycle, Window, Xenith } from "../xenith/xenith.js";
import { serveAgentSocket } from "./agent-socket.js";
import type { AgentWindow } from "./agent.js";
import type { Agents } from "./manager.js";
import { AGENT_CONNECT_MS, agentUrl, NodeInfo, nodeWindowName, PiSocketAgent } from "./pi-socket.js";

export const PROTOCOL_VERSION = "1";
/** The hypivisor version pi9 answers ping with (the one whose protocol it speaks). */
export const HYPIVISOR_VERSION = "0.1.0";
export const DEFAULT_HTTP_PORT = 31415;
/** Largest agent-protocol frame from a client (attach_file carries up to 10 MB of base64). */
const AGENT_MAX_PAYLOAD = 16 << 20;

export interface HypivisorOptions {
  token?: string;
  log: Logger;
  /** The folder list_directories and spawn_agent are confined to (default: $HOME). */
  home?: string;
  /** How often idle WebSocket clients are pinged; a client that missed the last ping is dropped. */
  heartbeatMs?: number;
}

type Id = string | number | undefined;

interface Conn {
  ws: WebSocket;
  /** The node this connection registered last (hyper-pi's deregister rule). */
  registered?: string;
}

interface Entry { info: NodeInfo; owner: Conn | null }

const now = () => Math.floor(Date.now() / 1000);

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/**
 * Percent-decoding as hypivisor's (Rust percent_encoding): each valid %XX
 * becomes its byte, anything else stays as it is ('+' is not a space, a
 * lone '%' is a '%'); the bytes must be UTF-8.
 */
export function percentDecode(s: string): string | undefined {
  const raw = Buffer.from(s, "utf8");
  const out = Buffer.alloc(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      out[n++] = parseInt(raw.subarray(i + 1, i + 3).toString("latin1"), 16);
      i += 2;
    } else out[n++] = raw[i];
  }
  try { return new TextDecoder("utf-8", { fatal: true }).decode(out.subarray(0, n)); } catch { return undefined; }
}

/** The first `token=` value of a URL's query, percent-decoded as hypivisor does. */
export function queryToken(url: string): string | undefined {
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  for (const pair of url.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq) !== "token") continue;
    return percentDecode(pair.slice(eq + 1));
  }
  return undefined;
}

/** NodeInfo as hypivisor's serde reads it: required fields typed, extra fields ignored. */
export function parseNodeInfo(p: any): NodeInfo | null {
  if (!p || typeof p !== "object" || Array.isArray(p)) return null;
  const int = (v: unknown, max: number) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
  const optInt = (v: unknown, lo: number, max: number) => v === undefined || v === null || (typeof v === "number" && Number.isInteger(v) && v >= lo && v <= max);
  if (typeof p.id !== "string" || typeof p.machine !== "string" || typeof p.cwd !== "string") return null;
  if (!int(p.port, 65535)) return null;
  if (p.status !== "active" && p.status !== "offline") return null;
  if (!optInt(p.pid, 0, 0xffffffff) || !optInt(p.offline_since, -(2 ** 53), 2 ** 53) || !optInt(p.last_seen, -(2 ** 53), 2 ** 53)) return null;
  const n: NodeInfo = { id: p.id, machine: p.machine, cwd: p.cwd, port: p.port, status: "active" };
  if (typeof p.pid === "number") n.pid = p.pid;
  return n;
}

const inside = (p: string, root: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

class RpcError extends Error {}

export class Hypivisor {
  /** The registry: pi-socket agents by node id. */
  private nodes = new Map<string, Entry>();
  /** Windows of pi-socket agents by node id (they outlive registrations). */
  private sockets = new Map<string, PiSocketAgent>();
  private clients = new Set<Conn>();
  /** Clients of /ws/agent/<window id> served by pi9, to close when the agent goes. */
  private agentClients = new Map<number, Set<WebSocket>>();
  /** pi9's own agent windows as last announced: window id → active?; offline time. */
  private announced = new Map<number, boolean>();
  private offlineSince = new Map<number, number>();
  private alive = new WeakMap<WebSocket, boolean>();
  private server: http.Server | null = null;
  private wss = new WebSocketServer({ noServer: true, maxPayload: AGENT_MAX_PAYLOAD });
  private heart: NodeJS.Timeout | null = null;
  private sockets_: Set<net.Socket> = new Set();
  private watcher = (e: Lifecycle) => this.onLifecycle(e);
  readonly home: string;
  private log: Logger;
  /** The port pi9's own agents are listed with. */
  port = 0;

  constructor(readonly x: Xenith, readonly agents: Agents, private opts: HypivisorOptions) {
    this.log = opts.log;
    this.home = path.resolve(opts.home ?? os.homedir());
    x.watchers.add(this.watcher);
  }

  // ── HTTP ───────────────────────────────────────────────────
  /** Listen; resolves with the address as listened on (the real port when 0 was asked). */
  async listen(a: Addr): Promise<string> {
    const srv = http.createServer((req, res) => this.onRequest(req, res));
    srv.on("upgrade", (req, sock: net.Socket, head) => this.onUpgrade(req, sock, head));
    srv.on("connection", (s: net.Socket) => { this.sockets_.add(s); s.once("close", () => this.sockets_.delete(s)); });
    srv.on("clientError", (_e, s: net.Socket) => { if (s.writable) s.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 11\r\n\r\nBad Request"); else s.destroy(); });
    await new Promise<void>((resolve, reject) => {
      srv.once("error", (e: NodeJS.ErrnoException) => reject(new Error(`--http ${formatAddr(a)}: ${e.code === "EADDRINUSE" ? "address already in use" : e.message}`)));
      if (a.kind === "unix") srv.listen(a.path, () => resolve());
      else srv.listen(a.port, a.host, () => resolve());
    });
    this.server = srv;
    let label: string;
    if (a.kind === "unix") {
      const { chmodSync } = await import("node:fs");
      chmodSync(a.path, 0o600);
      label = `http+unix!${a.path}`;
    } else {
      this.port = (srv.address() as net.AddressInfo).port;
      label = `http://${a.host.includes(":") ? `[${a.host}]` : a.host}:${this.port}`;
    }
    const ms = this.opts.heartbeatMs ?? 30000;
    this.heart = setInterval(() => this.heartbeat(), ms);
    this.heart.unref();
    return label;
  }

  async close() {
    this.x.watchers.delete(this.watcher);
    if (this.heart) clearInterval(this.heart);
    for (const c of this.wss.clients) c.terminate();
    for (const s of this.sockets.values()) s.shutdown();
    const srv = this.server;
    this.server = null;
    if (srv) {
      await new Promise<void>((r) => { srv.close(() => r()); for (const s of this.sockets_) s.destroy(); });
    }
  }

  private authorized(url: string): boolean {
    return !this.opts.token || tokenMatches(queryToken(url), this.opts.token);
  }

  private route(url: string): { kind: "registry" } | { kind: "agent"; id: string } | { kind: "bad" } | { kind: "none" } {
    const p = url.split("?")[0];
    if (p === "/ws") return { kind: "registry" };
    if (p.startsWith("/ws/agent/")) {
      const raw = p.slice("/ws/agent/".length);
      if (!raw) return { kind: "bad" };
      let id = raw;
      try { id = decodeURIComponent(raw); } catch { /* keep it raw */ }
      return { kind: "agent", id };
    }
    return { kind: "none" };
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = req.url ?? "/";
    const answer = (code: number, text: string) => {
      res.writeHead(code, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(text), Connection: "close" });
      res.end(text);
    };
    if (!this.authorized(url)) return answer(401, "Unauthorized");
    const r = this.route(url);
    // A plain request to a WebSocket path is a failed upgrade, as hypivisor answers it.
    if (r.kind === "registry" || r.kind === "agent") return answer(400, "Bad Request");
    if (r.kind === "bad") return answer(400, "Missing node ID");
    return answer(404, "Not Found");
  }

  private onUpgrade(req: http.IncomingMessage, sock: net.Socket, head: Buffer) {
    const url = req.url ?? "/";
    const refuse = (status: string, text: string) => {
      sock.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    sock.on("error", () => {});
    if (!this.authorized(url)) { this.log.debug(`http: 401 for ${url.split("?")[0]}`); return refuse("401 Unauthorized", "Unauthorized"); }
    const r = this.route(url);
    if (r.kind === "bad") return refuse("400 Bad Request", "Missing node ID");
    if (r.kind === "none") return refuse("404 Not Found", "Not Found");
    this.wss.handleUpgrade(req, sock, head, (ws) => {
      this.alive.set(ws, true);
      ws.on("pong", () => this.alive.set(ws, true));
      if (r.kind === "registry") this.onRegistryConn(ws);
      else this.onAgentConn(ws, r.id);
    });
  }

  private heartbeat() {
    for (const ws of this.wss.clients) {
      if (!this.alive.get(ws)) { ws.terminate(); continue; }
      this.alive.set(ws, false);
      try { ws.ping(); } catch { /* closing */ }
    }
  }

  // ── Registry ───────────────────────────────────────────────
  private send(ws: WebSocket, v: unknown) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(v));
  }

  private broadcast(v: unknown) {
    const s = JSON.stringify(v);
    for (const c of this.clients) if (c.ws.readyState === WebSocket.OPEN) c.ws.send(s);
  }

  /** Every node: registered pi-socket agents, then pi9's own agent windows. */
  listNodes(): NodeInfo[] {
    const out = [...this.nodes.values()].map((e) => ({ ...e.info }));
    for (const w of this.x.windows.values()) {
      const n = this.localNode(w);
      if (n && !this.nodes.has(n.id)) out.push(n);
    }
    return out;
  }

  /** A node for one of pi9's own agent windows (kinds pi and script), or null. */
  private localNode(w: Window): NodeInfo | null {
    if (w.kind !== "pi" && w.kind !== "script") return null;
    const active = w.status !== "offline" && w.status !== "exited";
    const pid = this.agents.agents.get(w.id)?.backend.info().pid;
    const n: NodeInfo = {
      id: String(w.id), machine: os.hostname(), cwd: w.cwd || this.x.defaultCwd, port: this.port,
      status: active ? "active" : "offline",
    };
    if (!active) n.offline_since = this.offlineSince.get(w.id) ?? now();
    n.last_seen = active ? now() : n.offline_since;
    if (typeof pid === "number") n.pid = pid;
    return n;
  }

  private onRegistryConn(ws: WebSocket) {
    const c: Conn = { ws };
    this.clients.add(c);
    ws.on("error", () => {});
    // hyper-pi: init before any request is read.
    this.send(ws, { event: "init", nodes: this.listNodes(), protocol_version: PROTOCOL_VERSION });
    ws.on("ping", () => {
      this.alive.set(ws, true);
      const e = c.registered ? this.nodes.get(c.registered) : undefined;
      if (e && e.owner === c) e.info.last_seen = now();
    });
    ws.on("message", (data, isBinary) => {
      this.alive.set(ws, true);
      if (isBinary) return;
      let req: any;
      try { req = JSON.parse(data.toString()); } catch { return; }
      if (!req || typeof req !== "object" || Array.isArray(req) || typeof req.method !== "string") return;
      const id: Id = typeof req.id === "string" || typeof req.id === "number" ? req.id : undefined;
      const respond = (body: { result?: unknown; error?: string }) => this.send(ws, { ...(id !== undefined ? { id } : {}), ...body });
      this.dispatch(c, req.method, req.params).then(
        (result) => respond({ result }),
        (e) => {
          if (!(e instanceof RpcError)) this.log.warn(`registry: ${req.method}: ${(e as Error)?.stack ?? e}`);
          respond({ error: (e as Error).message });
        },
      );
    });
    ws.on("close", () => {
      this.clients.delete(c);
      // Every node this connection still owns goes offline (hypivisor: the last it registered).
      for (const [id, e] of this.nodes) if (e.owner === c) this.markOffline(id, e, "its registry connection closed");
    });
  }

  private async dispatch(c: Conn, method: string, params: any): Promise<unknown> {
    switch (method) {
      case "register": return this.register(c, params);
      case "deregister": return this.deregister(c, params);
      case "list_nodes": return this.listNodes();
      case "list_directories": return this.listDirectories(params);
      case "spawn_agent": return this.spawnAgent(params);
      case "ping": return { status: "healthy", nodes: this.listNodes().length, version: HYPIVISOR_VERSION };
      default: throw new RpcError(`Method not found: ${method}`);
    }
  }

  private register(c: Conn, params: any) {
    if (params === undefined || params === null) throw new RpcError("Missing params");
    const node = parseNodeInfo(params);
    if (!node) throw new RpcError("Invalid node info");
    node.last_seen = now();
    // A port on a machine belongs to one process: older registrations there are stale.
    for (const [id, e] of [...this.nodes]) {
      if (id !== node.id && e.info.machine === node.machine && e.info.port === node.port) {
        this.nodes.delete(id);
        this.log.info(`registry: ${id} evicted (${node.id} registered at ${node.machine}:${node.port})`);
        this.broadcast({ event: "node_removed", id });
        this.sockets.get(id)?.offline(`replaced at ${node.machine}:${node.port} by agent ${node.id}`);
      }
    }
    this.nodes.set(node.id, { info: node, owner: c });
    c.registered = node.id;
    this.log.info(`registry: ${node.id} registered (${agentUrl(node.machine, node.port)}, ${node.cwd})`);
    this.window(node);
    this.broadcast({ event: "node_joined", node: { ...node } });
    return { status: "registered" };
  }

  /** Create or revive the window of a registered pi-socket agent. */
  private window(node: NodeInfo) {
    const known = this.sockets.get(node.id);
    if (known && !known.w.deleted) { known.online(node); return; }
    const w = this.x.createWindow("pi-socket", nodeWindowName(node), node.cwd);
    const b = new PiSocketAgent(this.x, w, node, this.log, () => this.forget(node.id));
    this.sockets.set(node.id, b);
    this.agents.track(b.agent);
    b.online(node);
  }

  /** The window of a pi-socket agent was deleted: forget the agent (it keeps running). */
  private forget(id: string) {
    this.sockets.delete(id);
    if (this.nodes.delete(id)) {
      this.log.info(`registry: ${id} removed with its window`);
      this.broadcast({ event: "node_removed", id });
    }
  }

  private markOffline(id: string, e: Entry, why: string) {
    e.owner = null;
    if (e.info.status === "offline") return;
    e.info.status = "offline";
    e.info.offline_since = now();
    this.log.info(`registry: ${id} offline (${why})`);
    this.broadcast({ event: "node_offline", id });
    this.sockets.get(id)?.offline(`pi-socket agent offline: ${why}`);
  }

  private deregister(c: Conn, params: any) {
    const id = params && typeof params === "object" ? params.id : undefined;
    if (typeof id !== "string") throw new RpcError("Missing params.id");
    if (c.registered !== undefined && c.registered !== id) throw new RpcError("Unauthorized: cannot deregister another node");
    const removed = this.nodes.delete(id);
    if (removed) {
      this.log.info(`registry: ${id} deregistered`);
      this.broadcast({ event: "node_removed", id });
      // The window stays, offline: windows of pi-socket agents go offline, never away.
      this.sockets.get(id)?.offline("pi-socket agent deregistered");
    }
    return { status: removed ? "deregistered" : "not_found" };
  }

  private async realHome(): Promise<string> {
    try { return await realpath(this.home); } catch { return this.home; }
  }

  private async listDirectories(params: any) {
    const home = await this.realHome();
    const p = params && typeof params === "object" && typeof params.path === "string" ? params.path : undefined;
    let current: string;
    try {
      if (p === "") throw Object.assign(new Error("No such file or directory (os error 2)"), { code: "ENOENT" });
      current = await realpath(p === undefined ? this.home : path.resolve(this.home, p));
    } catch (e) { throw new RpcError(`Invalid path: ${(e as Error).message}`); }
    if (!inside(current, home)) throw new RpcError("Path resolves outside home directory");
    let entries;
    try { entries = await readdir(current, { withFileTypes: true }); } catch (e) { throw new RpcError(`Cannot read directory: ${(e as Error).message}`); }
    // Folders only: no dot names, no symbolic links (as hypivisor, which does not follow them).
    const dirs = entries.filter((d) => !d.name.startsWith(".") && d.isDirectory()).map((d) => d.name);
    dirs.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return { current, directories: dirs };
  }

  private async spawnAgent(params: any) {
    if (params === undefined || params === null) throw new RpcError("Missing params");
    const p = typeof params === "object" && typeof params.path === "string" ? params.path : "";
    const folder = typeof params === "object" && typeof params.new_folder === "string" ? params.new_folder.trim() : "";
    if (p === "" && folder === "") throw new RpcError("Path does not exist");
    const home = await this.realHome();
    const target = path.join(path.resolve(this.home, p), folder);
    const exists = await stat(target).then(() => true, () => false);
    if (!exists) {
      if (!folder) throw new RpcError("Path does not exist");
      // The home check comes before anything is created.
      if (!inside(await realPrefix(target), home)) throw new RpcError("Path resolves outside home directory");
      try { await mkdir(target, { recursive: true }); } catch (e) { throw new RpcError(`Failed to create directory: ${(e as Error).message}`); }
    }
    let canonical: string;
    try { canonical = await realpath(target); } catch (e) { throw new RpcError(`Invalid path: ${(e as Error).message}`); }
    if (!inside(canonical, home)) throw new RpcError("Path resolves outside home directory");
    const spawn = this.x.newVerbs.get("spawn");
    if (!spawn) throw new RpcError("Failed to spawn: spawning agents is not available in this pi9");
    if (/\s/.test(canonical)) throw new RpcError(`Failed to spawn: ${canonical}: folder names with white space cannot be given to spawn`);
    try { await spawn("spawn", canonical, { uname: "hypivisor" }); }
    catch (e) { throw new RpcError(`Failed to spawn: ${(e as Error).message}`); }
    this.log.info(`registry: spawned an agent in ${canonical}`);
    return { status: "spawning", path: canonical };
  }

  // ── pi9's own agent windows in the roster ──────────────────
  private onLifecycle(e: Lifecycle) {
    if (e.type !== "new" && e.type !== "del" && e.type !== "status") return;
    const id = e.id;
    if (e.type === "new") {
      // The agent behind the window is attached right after the window is made.
      queueMicrotask(() => this.announce(id));
      return;
    }
    if (e.type === "del") {
      this.closeAgentClients(id);
      this.offlineSince.delete(id);
      if (this.announced.delete(id) && !this.nodes.has(String(id))) this.broadcast({ event: "node_removed", id: String(id) });
      return;
    }
    const s = e.status;
    if (s === "offline" || s === "exited") {
      this.offlineSince.set(id, now());
      this.closeAgentClients(id);
    }
    this.announce(id);
  }

  private announce(id: number) {
    const w = this.x.windows.get(id);
    if (!w) return;
    const n = this.localNode(w);
    if (!n || this.nodes.has(n.id)) return;
    const active = n.status === "active";
    const was = this.announced.get(id);
    if (was === active) return;
    this.announced.set(id, active);
    if (active) this.broadcast({ event: "node_joined", node: n });
    else if (was !== undefined) this.broadcast({ event: "node_offline", id: n.id });
  }

  private closeAgentClients(id: number) {
    const set = this.agentClients.get(id);
    if (!set) return;
    this.agentClients.delete(id);
    for (const ws of set) ws.close(1001, "agent gone");
  }

  // ── /ws/agent/<id> ─────────────────────────────────────────
  /** The agent window an id names: a node id, a window id, or the session id of one of pi9's agents. */
  private findAgent(id: string): { relay: NodeInfo } | { local: AgentWindow } | { error: string } {
    const e = this.nodes.get(id);
    if (e) return e.info.status === "active" ? { relay: e.info } : { error: "Agent is offline" };
    let a: AgentWindow | undefined;
    if (/^\d+$/.test(id)) a = this.agents.agents.get(Number(id));
    if (!a) {
      for (const x of this.agents.agents.values()) {
        const i = x.backend.info();
        if ([i.session, i.session_id, i.sessionId].some((s) => s !== undefined && String(s) === id)) { a = x; break; }
      }
    }
    if (!a || a.w.deleted) return { error: "Agent not found" };
    if (a.backend instanceof PiSocketAgent) {
      const n = this.nodes.get(a.backend.node.id);
      return n && n.info.status === "active" ? { relay: n.info } : { error: "Agent is offline" };
    }
    if (a.w.status === "offline" || a.w.status === "exited") return { error: "Agent is offline" };
    return { local: a };
  }

  private onAgentConn(client: WebSocket, id: string) {
    client.on("error", () => {});
    const f = this.findAgent(id);
    if ("error" in f) {
      client.send(JSON.stringify({ error: f.error }));
      client.close();
      return;
    }
    if ("local" in f) {
      const wid = f.local.w.id;
      let set = this.agentClients.get(wid);
      if (!set) this.agentClients.set(wid, (set = new Set()));
      set.add(client);
      client.on("close", () => set!.delete(client));
      serveAgentSocket(client, f.local, this.log);
      return;
    }
    this.relay(client, f.relay);
  }

  /** One upstream connection per client, text frames both ways unchanged. */
  private relay(client: WebSocket, node: NodeInfo) {
    const url = agentUrl(node.machine, node.port);
    const up = new WebSocket(url, { handshakeTimeout: AGENT_CONNECT_MS, maxPayload: 256 << 20 });
    const queued: [WebSocket.RawData, boolean][] = [];
    let opened = false;
    client.on("message", (d, bin) => {
      if (opened) { if (up.readyState === WebSocket.OPEN) up.send(d, { binary: bin }); }
      else queued.push([d, bin]);
    });
    client.on("close", () => { if (up.readyState === WebSocket.CONNECTING) up.terminate(); else up.close(); });
    up.on("open", () => {
      opened = true;
      for (const [d, bin] of queued.splice(0)) up.send(d, { binary: bin });
    });
    up.on("message", (d, bin) => { if (client.readyState === WebSocket.OPEN) client.send(d, { binary: bin }); });
    up.on("error", (e) => {
      if (!opened && client.readyState === WebSocket.OPEN) {
        client.send(JSON.stringify({ error: `Cannot reach agent: ${e.message}` }));
        client.close();
      }
    });
    // The agent went: so does its client (hypivisor leaves it open).
    up.on("close", () => { if (client.readyState === WebSocket.OPEN || client.readyState === WebSocket.CONNECTING) client.close(1001, "agent closed"); });
  }
}

/** The real path of the longest existing prefix of p, with the rest appended. */
async function realPrefix(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try { return path.join(await realpath(cur), ...rest.reverse()); } catch { /* go up */ }
    const up = path.dirname(cur);
    if (up === cur) return p;
    rest.push(path.basename(cur));
    cur = up;
  }
}
