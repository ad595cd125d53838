// pi-socket's agent protocol served by pi9 itself, for agent windows whose
// backend pi9 drives (spawned pi children, scripted agents), so that Pi-DE
// opens them through /ws/agent/<id> as it opens pi-socket agents:
//
//   on connect      {"type":"init_state","messages":[…],"tools":[…]}
//                   (truncated like pi-socket past 512000 characters)
//   then            pi's native message_* and tool_execution_* events
//   text frame      a prompt (a follow-up while the agent works)
//   {"type":"abort"}                          abort, no reply
//   {"type":"fetch_history","before","limit"} {"type":"history_page",…}
//   {"type":"list_commands"}                  {"type":"commands_list","commands":[]}
//   {"type":"list_files","prefix"?}           {"type":"files_list","files","cwd"}
//   {"type":"attach_file","filename","content","mimeType"?}
//                                             {"type":"attach_file_ack",…}
//
// Messages always come from the backend (Backend.messages()), never from a
// copy kept here. Events that happen while the first messages are fetched
// are held and sent after init_state.

import { readdir } from "node:fs/promises";
import { realInside, within } from "../lib/confine.js";
import path from "node:path";
import type WebSocket from "ws";
import { escapeEvent } from "../fs/stream.js";
import type { Logger } from "../lib/log.js";
import type { AgentWindow, PiEvent } from "./agent.js";

/** The events pi-socket forwards (and so the ones Pi-DE expects). */
export const FORWARDED = new Set(["message_start", "message_update", "message_end", "tool_execution_start", "tool_execution_update", "tool_execution_end"]);

/** pi-socket truncates init_state past this many characters of messages. */
const MAX_INIT = 500 * 1024;
/** list_files returns at most this many entries. */
const MAX_FILES = 100;
/** attach_file refuses content longer than this (bytes of base64 text, as pi-socket counts). */
const MAX_ATTACH = 10 * 1024 * 1024;

/** init_state as pi-socket builds it: the last messages when the whole history is too large. */
export function initState(messages: unknown[], tools: { name: string; description?: string; parameters?: unknown }[]) {
  const t = tools.map((x) => ({ name: x.name, description: x.description ?? "", parameters: x.parameters ?? { type: "object", properties: {} } }));
  const ser = JSON.stringify(messages);
  if (ser.length <= MAX_INIT || messages.length === 0) return { type: "init_state", messages, tools: t };
  const keep = Math.max(10, Math.floor((MAX_INIT * 0.9) / (ser.length / messages.length)));
  return { type: "init_state", messages: messages.slice(Math.max(0, messages.length - keep)), tools: t, truncated: true, totalMessages: messages.length };
}

/** fetch_history as pi-socket answers it: [max(0, min(before, n) - limit), min(before, n)). */
export function historyPage(messages: unknown[], before: unknown, limit: unknown) {
  const n = messages.length;
  const b = typeof before === "number" && Number.isFinite(before) ? before : n;
  const l = typeof limit === "number" && Number.isFinite(limit) && limit >= 0 ? limit : 50;
  const end = Math.max(0, Math.min(Math.floor(b), n));
  const start = Math.max(0, end - Math.floor(l));
  return { type: "history_page", messages: messages.slice(start, end), hasMore: start > 0, oldestIndex: start };
}


/**
 * list_files as pi-socket answers it: the folder of the prefix (or cwd),
 * no dot files, paths relative to cwd, at most 100; nothing outside cwd
 * (checked on the real path, so a symbolic link cannot lead out).
 */
export async function listFiles(cwd: string, prefix: unknown) {
  const none = { type: "files_list", files: [] as { path: string; isDirectory: boolean }[], cwd };
  if (!cwd) return none;
  const target = typeof prefix === "string" && prefix ? path.resolve(cwd, path.dirname(prefix)) : cwd;
  if (!within(target, cwd)) return none;
  try {
    if (!(await realInside(target, [cwd]))) return none;
    const files: { path: string; isDirectory: boolean }[] = [];
    for (const e of await readdir(target, { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      files.push({ path: path.relative(cwd, path.join(target, e.name)), isDirectory: e.isDirectory() });
      if (files.length >= MAX_FILES) break;
    }
    return { ...none, files };
  } catch {
    return none;
  }
}

/** Serve pi-socket's agent protocol for one client of one agent window. */
export function serveAgentSocket(ws: WebSocket, a: AgentWindow, log: Logger) {
  const w = a.w;
  const cwd = () => w.cwd || w.x.defaultCwd;
  const send = (v: unknown) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(v)); };
  let held: PiEvent[] | null = [];
  const off = a.onNative((e) => {
    if (!FORWARDED.has(e.type)) return;
    if (held) held.push(e); else send(e);
  });
  ws.on("close", off);
  const messages = async () => (a.backend.messages ? await a.backend.messages() : []);
  const problem = (what: string, e: unknown) => {
    const m = `${what}: ${(e as Error)?.message ?? e}`;
    log.debug(`/ws/agent ${w.id}: ${m}`);
    w.events.publish(`error ${escapeEvent(m)}`);
  };

  // Replies go out in the order of the requests (as pi-socket's, which are
  // synchronous), init_state first; events are not held behind them.
  let last: Promise<void> = Promise.resolve();
  const reply = (p: Promise<unknown>) => {
    const prev = last;
    last = (async () => { const v = await p.catch(() => undefined); await prev; if (v !== undefined) send(v); })();
  };

  reply((async () => {
    let msgs: unknown[] = [], tools: Awaited<ReturnType<NonNullable<typeof a.backend.tools>>> = [];
    try { msgs = await messages(); } catch (e) { problem("init_state: messages", e); }
    try { tools = a.backend.tools ? await a.backend.tools() : []; } catch (e) { problem("init_state: tools", e); }
    return initState(msgs, tools);
  })());
  void last.then(() => {
    const h = held ?? [];
    held = null;
    for (const e of h) send(e);
  });

  const prompt = async (text: string) => {
    // As pi-socket does: a prompt while idle, a follow-up while the agent works.
    if (w.status === "working") await w.ctl.followup(text, { uname: "pi-de" });
    else await w.ctl.prompt(text, { uname: "pi-de" });
  };

  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const text = data.toString();
    if (!text.trim()) return;
    let m: any = null;
    try { m = JSON.parse(text); } catch { m = null; }
    const type = m && typeof m === "object" && !Array.isArray(m) ? m.type : undefined;
    switch (type) {
      case "fetch_history":
        reply(messages().then((all) => historyPage(all, m.before, m.limit), (e) => { problem("fetch_history", e); return historyPage([], 0, 0); }));
        return;
      case "abort":
        Promise.resolve().then(() => w.ctl.abort("", { uname: "pi-de" })).catch((e) => problem("abort", e));
        return;
      case "list_commands":
        reply(Promise.resolve({ type: "commands_list", commands: [] }));
        return;
      case "list_files":
        reply(listFiles(cwd(), m.prefix));
        return;
      case "attach_file":
        reply(attach(m));
        return;
      default:
        prompt(text).catch((e) => problem("prompt", e));
    }
  });

  async function attach(m: any) {
    const ack: { type: string; filename: unknown; success: boolean; error?: string } = { type: "attach_file_ack", filename: m.filename, success: false };
    if (!m.filename || typeof m.filename !== "string") return { ...ack, error: "filename is required" };
    if (!m.content || typeof m.content !== "string") return { ...ack, error: "content is required" };
    const bytes = Buffer.byteLength(m.content, "utf8");
    if (bytes > MAX_ATTACH) return { ...ack, error: `file too large (${Math.round(bytes / 1024 / 1024)}MB > 10MB)` };
    if (typeof m.mimeType === "string" && m.mimeType.startsWith("image/")) {
      return { ...ack, error: `images cannot be attached to ${w.kind} agents through pi9 (text files only)` };
    }
    try {
      await prompt(`[File: ${m.filename}]\n${Buffer.from(m.content, "base64").toString("utf8")}`);
      return { ...ack, success: true };
    } catch (e) {
      return { ...ack, error: `failed to attach file: ${(e as Error).message}` };
    }
  }
}
