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
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import type { Logger } from "../lib/log.js";
import type { Addr } from "../lib/addr.js";
import { realInside, within } from "../lib/confine.js";
import { tokenMatches } from "../lib/token.js";
import { HttpError, HttpFront, queryToken } from "../http/front.js";
export { tokenMatches, queryToken };
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
  /** Every WebSocket of the hypivisor's routes, for heartbeats and shutdown. */
  private conns = new Set<WebSocket>();
  private front: HttpFront | null = null;
  private ownFront = false;
  private heart: NodeJS.Timeout | null = null;
  private watcher = (e: Lifecycle) => this.onLifecycle(e);
  readonly home: string;
  private log: Logger;

  constructor(readonly x: Xenith, readonly agents: Agents, private opts: HypivisorOptions) {
    this.log = opts.log;
    this.home = path.resolve(opts.home ?? os.homedir());
    x.watchers.add(this.watcher);
  }

  // ── Routes on the HTTP front ───────────────────────────────
  /** Add /ws and /ws/agent/<id> to a front (the one of `pi9 serve`, shared with other subsystems). */
  mount(front: HttpFront) {
    this.front = front;
    const take = (ws: WebSocket) => {
      this.conns.add(ws);
      ws.once("close", () => this.conns.delete(ws));
      this.alive.set(ws, true);
      ws.on("pong", () => this.alive.set(ws, true));
    };
    front.add({ path: "/ws", ws: (ws) => { take(ws); this.onRegistryConn(ws); } });
    front.add({
      path: "/ws/agent/", prefix: true, wsMaxPayload: AGENT_MAX_PAYLOAD,
      check: (_req, rest) => { if (!rest) throw new HttpError(400, "Missing node ID"); },
      ws: (ws, _req, rest) => {
        take(ws);
        let id = rest;
        try { id = decodeURIComponent(rest); } catch { /* keep it raw */ }
        this.onAgentConn(ws, id);
      },
    });
    // The /ws/agent prefix without its slash is still a path that needs an id.
    front.add({ path: "/ws/agent", check: () => { throw new HttpError(400, "Missing node ID"); }, ws: () => {} });
    const ms = this.opts.heartbeatMs ?? 30000;
    this.heart = setInterval(() => this.heartbeat(), ms);
    this.heart.unref();
  }

  /** The port pi9's own agents are listed with: the front's. */
  get port() { return this.front?.port ?? 0; }

  /** Listen on a front of its own (tests, and a hypivisor alone); resolves with the address as listened on. */
  async listen(a: Addr): Promise<string> {
    const front = new HttpFront({ token: this.opts.token, log: this.log });
    this.ownFront = true;
    this.mount(front);
    return front.listen(a);
  }

  async close() {
    this.x.watchers.delete(this.watcher);
    if (this.heart) clearInterval(this.heart);
    for (const c of this.conns) c.terminate();
    for (const s of this.sockets.values()) s.shutdown();
    if (this.ownFront) await this.front?.close();
  }

  private heartbeat() {
    for (const ws of this.conns) {
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
    if (!within(current, home)) throw new RpcError("Path resolves outside home directory");
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
      if (!(await realInside(target, [home]))) throw new RpcError("Path resolves outside home directory");
      try { await mkdir(target, { recursive: true }); } catch (e) { throw new RpcError(`Failed to create directory: ${(e as Error).message}`); }
    }
    let canonical: string;
    try { canonical = await realpath(target); } catch (e) { throw new RpcError(`Invalid path: ${(e as Error).message}`); }
    if (!within(canonical, home)) throw new RpcError("Path resolves outside home directory");
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
