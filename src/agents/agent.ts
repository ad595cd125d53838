// An agent window: a Xenith window whose body is a conversation and whose
// ctl drives an agent. What runs the agent is a Backend (a spawned pi over
// RPC, a pi-socket agent over WebSocket, or a script reading its inbox);
// this file turns the backend's native pi events into the window's body and
// event lines (DESIGN.md 2.1, 2.2) and maps ctl messages onto the backend.

import { FnFile } from "../fs/files.js";
import { Handle, Node, OpenFlags } from "../fs/node.js";
import { errs, FsError } from "../fs/errors.js";
import { Broadcast, escapeEvent } from "../fs/stream.js";
import type { Window, WindowStatus, Xenith, WindowKind } from "../xenith/xenith.js";

/** A tool as pi describes it. */
export interface ToolInfo { name: string; description: string; parameters?: unknown }

/** pi's own event objects (agent_*, turn_*, message_*, tool_execution_*, …). */
export type PiEvent = { type: string; [k: string]: any };

export type DeliverAs = "prompt" | "steer" | "followup";

/**
 * What drives an agent. Methods reject with an FsError carrying the agent's
 * own error message when it refuses (pi's "Model not found: …", say).
 */
export interface Backend {
  readonly kind: WindowKind;
  /** Send user text. `prompt` is only used while idle (the window turns a busy prompt into a follow-up). */
  send(text: string, as: DeliverAs): Promise<void>;
  abort(): Promise<void>;
  setModel?(provider: string, id: string): Promise<void>;
  compact?(): Promise<void>;
  newSession?(): Promise<void>;
  /** Stop the agent for good (SIGTERM, then SIGKILL after a grace); resolves when it is gone. */
  kill?(): Promise<void>;
  /** The session's messages, from the agent itself. */
  messages?(): Promise<unknown[]>;
  tools?(): Promise<ToolInfo[]>;
  /** key → value lines for `info`. */
  info(): Record<string, string | number | undefined>;
}

/** One-line summary of a tool result for `tool_end` events and the body. */
export function summarize(result: any, max = 120): string {
  let text = "";
  const content = result?.content;
  if (Array.isArray(content)) text = content.filter((c: any) => c?.type === "text").map((c: any) => c.text).join(" ");
  else if (typeof result === "string") text = result;
  else if (result !== undefined) { try { text = JSON.stringify(result); } catch { text = String(result); } }
  text = text.replace(/\s+/g, " ").trim();
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function oneLine(v: unknown): string {
  try { return JSON.stringify(v ?? {}); } catch { return "{}"; }
}

function userText(msg: any): string {
  const c = msg?.content;
  if (typeof c === "string") return c;
  if (Array.isArray(c)) return c.map((p: any) => (p?.type === "text" ? p.text : p?.type === "image" ? "[image]" : "")).join("");
  return "";
}

/**
 * Renders pi's native events into a window: body text (user prompts quoted
 * with "> ", assistant text as it streams, one line per tool call and
 * result) and the event lines of DESIGN.md 2.2. Used by every backend that
 * speaks pi's events.
 */
export class Renderer {
  private turn = 0;
  private atLineStart = true;
  private streamedText = false;
  constructor(private w: Window, private x: Xenith) {}

  private body(s: string) {
    if (!s) return;
    this.w.append(s);
    this.atLineStart = s.endsWith("\n");
  }
  private newline() { if (!this.atLineStart) this.body("\n"); }
  private ev(line: string) { this.w.events.publish(line); }

  /** A line of the backend's own in the body (a new session, say), on a line of its own. */
  note(line: string) {
    this.newline();
    this.body(line + "\n");
  }

  handle(e: PiEvent) {
    switch (e.type) {
      case "agent_start":
        this.ev("agent_start");
        this.x.setStatus(this.w, "working");
        break;
      case "agent_end":
        this.newline();
        this.ev("agent_end");
        this.x.setStatus(this.w, "idle");
        break;
      case "turn_start":
        this.ev(`turn_start ${++this.turn}`);
        break;
      case "turn_end":
        this.ev(`turn_end ${this.turn}`);
        break;
      case "message_start": {
        const m = e.message;
        if (m?.role === "user") {
          this.newline();
          const t = userText(m);
          this.body(t.split("\n").map((l) => `> ${l}`).join("\n") + "\n");
        } else if (m?.role === "assistant") this.streamedText = false;
        break;
      }
      case "message_update": {
        const a = e.assistantMessageEvent;
        if (a?.type === "text_delta" && typeof a.delta === "string") {
          this.ev(`text ${escapeEvent(a.delta)}`);
          this.body(a.delta);
          this.streamedText = true;
        } else if (a?.type === "thinking_delta" && typeof a.delta === "string") {
          this.ev(`thinking ${escapeEvent(a.delta)}`);
        }
        break;
      }
      case "message_end": {
        const m = e.message;
        const role = m?.role ?? "unknown";
        if (role === "assistant") {
          // A backend that sends no deltas (a history replay) still shows the text.
          if (!this.streamedText && Array.isArray(m.content)) {
            const t = m.content.filter((c: any) => c?.type === "text").map((c: any) => c.text).join("");
            if (t) this.body(t);
          }
          this.newline();
          if (m.stopReason === "error" && m.errorMessage) this.ev(`error ${escapeEvent(String(m.errorMessage))}`);
        }
        this.ev(`message_end ${role}`);
        break;
      }
      case "tool_execution_start":
        this.newline();
        this.ev(`tool_start ${e.toolCallId} ${e.toolName} ${oneLine(e.args)}`);
        this.body(`[${e.toolName}] ${oneLine(e.args)}\n`);
        break;
      case "tool_execution_end": {
        const ok = e.isError ? "error" : "ok";
        const sum = summarize(e.result);
        this.ev(`tool_end ${e.toolCallId} ${e.toolName} ${ok} ${escapeEvent(sum)}`);
        this.body(`[${e.toolName} ${ok}] ${sum}\n`);
        break;
      }
      case "error":
        this.ev(`error ${escapeEvent(String(e.message ?? "error"))}`);
        break;
      default:
        break;
    }
  }
}

/** Splits `key=value` words; other words are positional. */
export function parseArgs(s: string): { pos: string[]; kv: Map<string, string> } {
  const pos: string[] = [], kv = new Map<string, string>();
  for (const w of s.trim().split(/\s+/).filter(Boolean)) {
    const m = /^([a-z][a-z0-9_-]*)=(.*)$/i.exec(w);
    if (m) kv.set(m[1], m[2]); else pos.push(w);
  }
  return { pos, kv };
}

/**
 * Make a window an agent window: ctl messages for the backend, the files
 * tools, messages and info, the body written only by the agent, and native
 * pi events fanned out to `native` for the pi-socket protocol.
 */
export class AgentWindow {
  readonly renderer: Renderer;
  /** pi's native events as they come, for /ws/agent/<id> clients. */
  readonly native = new Broadcast();
  private nativeListeners = new Set<(e: PiEvent) => void>();
  exitCode: number | null = null;

  constructor(readonly x: Xenith, readonly w: Window, readonly backend: Backend) {
    this.renderer = new Renderer(w, x);
    w.bodyWritable = backend.kind === "script";
    const c = w.ctl;
    const need = (what: string, t: string) => { if (!t.trim()) throw errs.inval(`${what}: missing text`); return t; };
    c.prompt = async (t) => {
      need("prompt", t);
      if (w.status === "working") {
        // pi's rule: a prompt while busy must be queued explicitly; we queue it as a follow-up and say so.
        w.events.publish(`followup ${escapeEvent(t)}`);
        await this.backend.send(t, "followup");
      } else {
        w.events.publish(`prompt ${escapeEvent(t)}`);
        await this.backend.send(t, "prompt");
      }
    };
    c.steer = async (t) => { need("steer", t); w.events.publish(`steer ${escapeEvent(t)}`); await this.backend.send(t, "steer"); };
    c.followup = async (t) => { need("followup", t); w.events.publish(`followup ${escapeEvent(t)}`); await this.backend.send(t, "followup"); };
    c.abort = async () => { await this.backend.abort(); };
    c.model = async (a) => {
      const m = /^([^/\s]+)\/(\S+)$/.exec(a.trim());
      if (!m) throw errs.inval(`model: want provider/id, got ${JSON.stringify(a.trim())}`);
      if (!this.backend.setModel) throw new FsError("EOPNOTSUPP", `model: not supported by ${w.kind} agents`);
      await this.backend.setModel(m[1], m[2]);
    };
    c.compact = async () => {
      if (!this.backend.compact) throw new FsError("EOPNOTSUPP", `compact: not supported by ${w.kind} agents`);
      await this.backend.compact();
    };
    c.new = async () => {
      if (!this.backend.newSession) throw new FsError("EOPNOTSUPP", `new: not supported by ${w.kind} agents`);
      await this.backend.newSession();
    };
    c.kill = async () => {
      if (!this.backend.kill) throw new FsError("EOPNOTSUPP", `kill: not supported by ${w.kind} agents`);
      await this.backend.kill();
    };
    // A refused command is also an `error` line on the window's event stream:
    // a shell over the Linux client sees only an errno (EIO on 6.12), the
    // stream has the agent's own words.
    // The wrapping is a property: a handler a backend installs later
    // (pi-socket's `steer`) is wrapped too, whatever the order.
    for (const verb of ["prompt", "steer", "followup", "abort", "model", "compact", "new", "kill"]) {
      let f = c[verb];
      const wrapped: typeof f = async (a, ctx) => {
        try { await f(a, ctx); } catch (e) {
          const m = (e as Error).message;
          w.events.publish(`error ${escapeEvent(m.startsWith(`${verb}:`) ? m : `${verb}: ${m}`)}`);
          throw e;
        }
      };
      Object.defineProperty(c, verb, { configurable: true, enumerable: true, get: () => wrapped, set: (g: typeof f) => { f = g; } });
    }
    w.stop = async () => { if (this.backend.kill && w.status !== "exited") await this.backend.kill(); };
    w.dir.add(new AsyncTextFile("tools", async () => {
      const tools = this.backend.tools ? await this.backend.tools() : [];
      return tools.map((t) => `${t.name}\t${(t.description ?? "").replace(/\s+/g, " ").trim()}\n`).join("");
    }));
    w.dir.add(new AsyncTextFile("messages", async () => {
      if (!this.backend.messages) return "";
      return (await this.backend.messages()).map((m) => JSON.stringify(m) + "\n").join("");
    }));
    w.dir.add(new FnFile("info", 0o444, {
      read: () => {
        const i: Record<string, string | number | undefined> = { id: w.id, kind: w.kind, status: w.status, cwd: w.cwd, ...this.backend.info() };
        if (this.exitCode !== null) i.exit = this.exitCode;
        return Object.entries(i).filter(([, v]) => v !== undefined && v !== "").map(([k, v]) => `${k} ${v}\n`).join("");
      },
    }));
  }

  /** Feed one native pi event from the backend. */
  event(e: PiEvent) {
    this.renderer.handle(e);
    for (const l of this.nativeListeners) l(e);
  }

  onNative(l: (e: PiEvent) => void): () => void {
    this.nativeListeners.add(l);
    return () => this.nativeListeners.delete(l);
  }

  setStatus(s: WindowStatus) { this.x.setStatus(this.w, s); }

  /** The backend went away for good. */
  exited(code: number | null, why?: string) {
    this.exitCode = code;
    if (why) this.w.events.publish(`error ${escapeEvent(why)}`);
    this.x.setStatus(this.w, "exited");
  }
}

/** A read-only file whose content is produced asynchronously at each read from offset 0. */
export class AsyncTextFile extends Node {
  readonly isDir = false;
  constructor(name: string, private produce: () => Promise<string>) { super(name, 0o444); }
  open(flags: OpenFlags): Handle {
    this.checkOpen(flags, true, false);
    let snap: Buffer | null = null;
    return {
      read: async (r) => {
        if (r.offset === 0 || !snap) snap = Buffer.from(await this.produce(), "utf8");
        return snap.subarray(Math.min(r.offset, snap.length), Math.min(snap.length, r.offset + r.count));
      },
      write: () => { throw errs.readOnly(); },
      close() {},
    };
  }
}
