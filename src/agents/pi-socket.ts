// pi-socket agents: a pi running hyper-pi's pi-socket extension registers
// with the hypivisor registry (hypivisor.ts) and serves its own WebSocket at
// ws://<machine>:<port>/. pi9 shows each such agent as a window of kind
// pi-socket and drives it through that socket:
//
//   init_state {messages, tools}   → the history rendered into body; tools
//   message_* / tool_execution_*   → AgentWindow.event (body, event lines)
//   prompt, followup               → a plain text frame (pi-socket itself
//                                    delivers it as a follow-up while busy)
//   abort                          → {"type":"abort"}
//   messages                       → fetch_history, every page, each read
//
// pi-socket forwards no agent_start/agent_end/turn_* events, so the status
// is inferred (see PiSocketAgent.infer): working from the first user,
// assistant or toolResult message_start, message_update or
// tool_execution_start; idle after an assistant message_end whose stopReason
// is not "toolUse" (stop, length, error, aborted). The window gets the
// agent_start/agent_end lines of those inferred transitions.

import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { FsError } from "../fs/errors.js";
import type { Logger } from "../lib/log.js";
import type { Window, Xenith } from "../xenith/xenith.js";
import { AgentWindow, Backend, DeliverAs, PiEvent, ToolInfo } from "./agent.js";

/** A registry entry, as hyper-pi's hypivisor keeps and sends it. */
export interface NodeInfo {
  id: string;
  machine: string;
  cwd: string;
  port: number;
  status: "active" | "offline";
  offline_since?: number;
  last_seen?: number;
  pid?: number;
}

/** How long a connection to an agent may take to open (hypivisor's relay uses 5 s). */
export const AGENT_CONNECT_MS = 5000;
/** How long one fetch_history page may take. */
export const HISTORY_PAGE_MS = 10000;
/** Messages asked for per fetch_history page. */
export const HISTORY_PAGE = 1000;
/** Reconnection to a registered agent whose socket closed: first delay and cap. */
const RETRY_FIRST_MS = 1000, RETRY_MAX_MS = 30000;

/** Roles pi persists as session messages (and so counts in its history). */
const PERSISTED = new Set(["user", "assistant", "toolResult"]);

/**
 * The WebSocket URL of an agent. A machine that names this host (its
 * hostname, or localhost) is dialled on 127.0.0.1: pi-socket listens on
 * every interface, and a hostname need not resolve.
 */
export function agentUrl(machine: string, port: number): string {
  const m = machine.toLowerCase();
  const local = m === "localhost" || m === os.hostname().toLowerCase();
  const host = local ? "127.0.0.1" : machine.includes(":") && !machine.startsWith("[") ? `[${machine}]` : machine;
  return `ws://${host}:${port}/`;
}

/** A window name from a node: the basename of its cwd, else its id. */
export function nodeWindowName(n: NodeInfo): string {
  const clean = (s: string) => s.replace(/\s+/g, "_");
  const base = clean(path.posix.basename(n.cwd.replace(/\/+$/, "")));
  if (base && base.length <= 256) return base;
  const id = clean(n.id);
  return id.length <= 256 ? id : id.slice(0, 256);
}

interface Waiter { resolve: (v: any) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }

/** The backend of a pi-socket window: one WebSocket to the agent while it is registered. */
export class PiSocketAgent implements Backend {
  readonly kind = "pi-socket" as const;
  readonly agent: AgentWindow;
  private ws: WebSocket | null = null;
  private open = false;
  /** Whether the agent is registered (active): pi9 keeps a connection to it. */
  private active = false;
  private toolList: ToolInfo[] = [];
  /** Session messages already rendered into body (pi's persisted roles), to render only new ones on a revive. */
  private rendered = 0;
  private working = false;
  private opened: Waiter[] = [];
  private pages: Waiter[] = [];
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private gone = false;

  constructor(readonly x: Xenith, readonly w: Window, public node: NodeInfo, private log: Logger, onDelete: () => void) {
    this.agent = new AgentWindow(x, w, this);
    const c = w.ctl;
    // pi-socket has no steering: a text frame becomes a prompt, or a
    // follow-up while pi is busy, which is not what `steer` promises.
    c.steer = async () => {
      throw new FsError("EOPNOTSUPP", "steer: pi-socket agents take no steering messages (pi-socket queues text sent while busy as a follow-up); use followup, or abort then prompt");
    };
    // Deleting the window forgets the agent (deregisters it); the agent keeps running.
    w.stop = async () => { this.gone = true; this.disconnect(); onDelete(); };
  }

  // ── Backend ────────────────────────────────────────────────
  async send(text: string, as: DeliverAs) {
    if (as === "steer") throw new FsError("EOPNOTSUPP", "steer: pi-socket agents take no steering messages");
    const ws = await this.connected();
    await new Promise<void>((resolve, reject) => ws.send(text, (e) => (e ? reject(new FsError("EIO", `pi-socket agent ${this.node.id}: ${e.message}`)) : resolve())));
  }

  async abort() {
    const ws = await this.connected();
    ws.send(JSON.stringify({ type: "abort" }));
  }

  async tools(): Promise<ToolInfo[]> { return this.toolList; }

  /** Every message of the session, paged with fetch_history from the agent itself. */
  async messages(): Promise<unknown[]> {
    const ws = await this.connected();
    const pages: unknown[][] = [];
    let before = Number.MAX_SAFE_INTEGER;
    // Each page ends below the last, so this runs at most once per page of the history.
    for (;;) {
      const p = await this.page(ws, before);
      pages.unshift(Array.isArray(p.messages) ? p.messages : []);
      const oldest = Number(p.oldestIndex);
      if (!p.hasMore || !Number.isInteger(oldest) || oldest <= 0 || oldest >= before) break;
      before = oldest;
    }
    return pages.flat();
  }

  info() {
    return {
      node: this.node.id,
      session: this.node.id,
      machine: this.node.machine,
      port: this.node.port,
      pid: this.node.pid,
      url: agentUrl(this.node.machine, this.node.port),
      connected: this.open ? "yes" : "no",
    };
  }

  // ── Registry side ──────────────────────────────────────────
  /** The agent (re)registered: status back, (re)connect to its socket. */
  online(node: NodeInfo) {
    const moved = node.machine !== this.node.machine || node.port !== this.node.port;
    this.node = node;
    this.active = true;
    if (node.cwd && node.cwd !== this.w.cwd) this.w.cwd = node.cwd;
    if (this.w.status === "offline" || this.w.status === "exited") this.agent.setStatus(this.working ? "working" : "idle");
    if (moved || !this.ws) { this.disconnect(); this.connect(); }
  }

  /** The agent's registration ended (socket dropped, deregistered, evicted): the window stays, offline. */
  offline(why: string) {
    this.active = false;
    this.disconnect();
    if (this.w.deleted) return;
    this.working = false;
    this.log.debug(`pi-socket ${this.node.id}: window ${this.w.id} offline: ${why}`);
    this.agent.setStatus("offline");
  }

  /** pi9 shuts down: drop the connection, change nothing else. */
  shutdown() {
    this.active = false;
    this.disconnect();
  }

  // ── The agent's socket ─────────────────────────────────────
  private connect() {
    if (!this.active || this.gone) return;
    const url = agentUrl(this.node.machine, this.node.port);
    const ws = new WebSocket(url, { handshakeTimeout: AGENT_CONNECT_MS, maxPayload: 256 << 20 });
    this.ws = ws;
    ws.on("open", () => {
      if (this.ws !== ws) return;
      this.open = true;
      this.retryMs = 0;
      this.log.debug(`pi-socket ${this.node.id}: connected to ${url}`);
      for (const o of this.opened.splice(0)) o.resolve(ws);
    });
    ws.on("message", (data, isBinary) => {
      if (this.ws !== ws || isBinary) return;
      let m: any;
      try { m = JSON.parse(data.toString()); } catch { return; }
      if (m && typeof m === "object" && !Array.isArray(m)) this.onFrame(m);
    });
    ws.on("error", (e) => this.log.debug(`pi-socket ${this.node.id}: ${url}: ${e.message}`));
    ws.on("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.open = false;
      this.failWaiters(new FsError("EIO", `pi-socket agent ${this.node.id}: connection to ${url} closed`));
      if (this.active && !this.gone && !this.w.deleted) {
        // Registered but unreachable for now: try again, backing off.
        this.retryMs = this.retryMs ? Math.min(this.retryMs * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.connect(); }, this.retryMs);
        this.retryTimer.unref();
      }
    });
  }

  private disconnect() {
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = null; }
    const ws = this.ws;
    this.ws = null;
    this.open = false;
    if (ws) { try { ws.terminate(); } catch { /* already closed */ } }
    this.failWaiters(new FsError("EIO", `pi-socket agent ${this.node.id}: disconnected`));
  }

  private failWaiters(e: Error) {
    for (const o of this.opened.splice(0)) { if (o.timer) clearTimeout(o.timer); o.reject(e); }
    for (const p of this.pages.splice(0)) { if (p.timer) clearTimeout(p.timer); p.reject(e); }
  }

  /** The open socket, waiting for a connection under way. */
  private connected(): Promise<WebSocket> {
    if (this.ws && this.open) return Promise.resolve(this.ws);
    if (!this.active || !this.ws) return Promise.reject(new FsError("EAGAIN", `pi-socket agent ${this.node.id} is offline: it is not registered with pi9 (or its socket is unreachable)`));
    return new Promise((resolve, reject) => {
      const o: Waiter = { resolve, reject };
      o.timer = setTimeout(() => {
        this.opened.splice(this.opened.indexOf(o), 1);
        reject(new FsError("ETIMEDOUT", `pi-socket agent ${this.node.id}: no connection to ${agentUrl(this.node.machine, this.node.port)}`));
      }, AGENT_CONNECT_MS);
      this.opened.push(o);
    });
  }

  private page(ws: WebSocket, before: number): Promise<any> {
    return new Promise((resolve, reject) => {
      const p: Waiter = { resolve, reject };
      p.timer = setTimeout(() => {
        const i = this.pages.indexOf(p);
        if (i >= 0) this.pages.splice(i, 1);
        reject(new FsError("ETIMEDOUT", `pi-socket agent ${this.node.id}: no answer to fetch_history`));
      }, HISTORY_PAGE_MS);
      this.pages.push(p);
      ws.send(JSON.stringify({ type: "fetch_history", before, limit: HISTORY_PAGE }));
    });
  }

  private onFrame(m: any) {
    switch (m.type) {
      case "init_state":
        this.onInit(m);
        return;
      case "history_page": {
        // pi-socket answers each connection's requests in order.
        const p = this.pages.shift();
        if (p) { if (p.timer) clearTimeout(p.timer); p.resolve(m); }
        return;
      }
      case "commands_list": case "files_list": case "attach_file_ack":
        return;
      default:
        if (typeof m.type === "string") this.onEvent(m as PiEvent);
    }
  }

  private onInit(m: any) {
    if (Array.isArray(m.tools)) {
      this.toolList = m.tools.filter((t: any) => t && typeof t.name === "string")
        .map((t: any) => ({ name: t.name, description: typeof t.description === "string" ? t.description : "", parameters: t.parameters }));
    }
    const msgs: any[] = Array.isArray(m.messages) ? m.messages.filter((x: any) => x && typeof x === "object") : [];
    const total = Number.isInteger(m.totalMessages) && m.totalMessages >= msgs.length ? m.totalMessages : msgs.length;
    const first = total - msgs.length;
    const r = this.agent.renderer;
    if (total < this.rendered) {
      // The agent's history is shorter than what the window showed: show it again from the start.
      r.note("--- the agent's history changed; shown again ---");
      this.rendered = 0;
    }
    if (this.rendered < first) r.note(`[${first - this.rendered} earlier messages not shown]`);
    const args = new Map<string, unknown>();
    for (let i = 0; i < msgs.length; i++) {
      const msg = msgs[i];
      if (msg.role === "assistant" && Array.isArray(msg.content)) {
        for (const c of msg.content) if (c?.type === "toolCall" && typeof c.id === "string") args.set(c.id, c.arguments);
      }
      if (first + i < this.rendered) continue;
      if (msg.role === "toolResult") {
        r.handle({ type: "tool_execution_start", toolCallId: msg.toolCallId, toolName: msg.toolName, args: args.get(msg.toolCallId) ?? {} });
        r.handle({ type: "tool_execution_end", toolCallId: msg.toolCallId, toolName: msg.toolName, result: { content: msg.content }, isError: !!msg.isError });
      }
      r.handle({ type: "message_start", message: msg });
      r.handle({ type: "message_end", message: msg });
    }
    this.rendered = Math.max(this.rendered, total);
    // pi persists a user message when it ends and an assistant message when
    // it ends: a history ending in a user message, a tool result or a tool
    // call means a run is under way.
    const last = msgs[msgs.length - 1];
    const busy = !!last && (last.role === "user" || last.role === "toolResult" || (last.role === "assistant" && last.stopReason === "toolUse"));
    this.setWorking(busy);
  }

  private onEvent(e: PiEvent) {
    this.infer(e);
    this.agent.event(e);
    if (e.type === "message_end" && PERSISTED.has(e.message?.role)) this.rendered++;
    if (e.type === "message_end" && e.message?.role === "assistant" && e.message.stopReason !== "toolUse") this.setWorking(false);
  }

  /** Status from message events (pi-socket forwards no agent_start/agent_end). */
  private infer(e: PiEvent) {
    const starts = (e.type === "message_start" && PERSISTED.has(e.message?.role)) || e.type === "message_update" || e.type === "tool_execution_start";
    if (starts) this.setWorking(true);
  }

  private setWorking(on: boolean) {
    if (on === this.working && this.w.status === (on ? "working" : "idle")) return;
    this.working = on;
    if (this.w.status === "offline" || this.w.status === "exited") return;
    this.agent.event({ type: on ? "agent_start" : "agent_end" });
  }
}
