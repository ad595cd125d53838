// A test double of a pi running hyper-pi's pi-socket extension: its agent
// WebSocket server (init_state with messages and tools on connect, pi's
// native message_* / tool_execution_* events to every client, replies to
// fetch_history / list_commands / list_files, plain text = a prompt) and
// what it received. It answers every prompt with one bash tool call and a
// streamed "Hello!".

import { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { WAIT_MS } from "./ws.js";

export const DOUBLE_TOOLS = [
  { name: "bash", description: "Run a shell command", parameters: { type: "object", properties: { command: { type: "string" } } } },
  { name: "read", description: "Read a file", parameters: { type: "object", properties: {} } },
];

export const user = (text: string) => ({ role: "user", content: [{ type: "text", text }], timestamp: 1 });
export const assistant = (content: unknown[], stopReason: string) => ({ role: "assistant", content, stopReason, api: "x", provider: "x", model: "x", usage: {}, timestamp: 2 });

export class PiSocketDouble {
  readonly history: any[] = [user("hello"), assistant([{ type: "text", text: "Hi there" }], "stop")];
  /** Every frame received: [connection number, text]. */
  readonly got: [number, string][] = [];
  readonly conns: WebSocket[] = [];
  private wss!: WebSocketServer;
  port = 0;
  /** While set, new connections wait for it before init_state. */
  gate: Promise<void> | null = null;
  /** fetch_history pages hold at most this many messages (pi-socket has no cap; this exercises paging). */
  pageCap = 4;
  private waiters: (() => void)[] = [];

  async start() {
    this.wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((r) => this.wss.once("listening", () => r()));
    this.port = (this.wss.address() as AddressInfo).port;
    this.wss.on("connection", (ws) => void this.onConn(ws));
  }

  get open() { return this.conns.filter((c) => c.readyState === WebSocket.OPEN).length; }

  private poke() { for (const w of this.waiters.splice(0)) w(); }

  /** Wait until cond holds (re-checked whenever the double sees something). */
  until(cond: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`double: no ${what}; got ${JSON.stringify(this.got).slice(0, 2000)}`)), WAIT_MS);
      const check = () => { if (cond()) { clearTimeout(t); resolve(); } else this.waiters.push(check); };
      check();
    });
  }

  private broadcast(e: unknown) {
    const s = JSON.stringify(e);
    for (const c of this.wss.clients) if (c.readyState === WebSocket.OPEN) c.send(s);
  }

  private async onConn(ws: WebSocket) {
    const n = this.conns.push(ws);
    this.poke();
    ws.on("close", () => this.poke());
    ws.on("message", (d) => {
      const text = d.toString();
      this.got.push([n, text]);
      this.poke();
      if (!text.trim()) return;
      let m: any = null;
      try { m = JSON.parse(text); } catch { m = null; }
      const send = (v: unknown) => ws.send(JSON.stringify(v));
      switch (m?.type) {
        case "fetch_history": {
          const all = this.history.length;
          const end = Math.max(0, Math.min(m.before, all));
          const start = Math.max(0, end - Math.min(m.limit, this.pageCap));
          send({ type: "history_page", messages: this.history.slice(start, end), hasMore: start > 0, oldestIndex: start });
          return;
        }
        case "abort": return;
        case "list_commands": send({ type: "commands_list", commands: [{ name: "/double", description: "a test double" }] }); return;
        case "list_files": send({ type: "files_list", files: [], cwd: "/double" }); return;
        default: this.reply(text);
      }
    });
    if (this.gate) await this.gate;
    ws.send(JSON.stringify({ type: "init_state", messages: this.history, tools: DOUBLE_TOOLS }));
    this.poke();
  }

  /** What pi does with a prompt, as pi-socket forwards it. */
  private reply(text: string) {
    const u = user(text);
    this.broadcast({ type: "message_start", message: u });
    this.broadcast({ type: "message_end", message: u });
    this.history.push(u);
    const a1 = assistant([{ type: "toolCall", id: "call_1", name: "bash", arguments: { command: "ls" } }], "toolUse");
    this.broadcast({ type: "message_start", message: a1 });
    this.broadcast({ type: "message_end", message: a1 });
    this.history.push(a1);
    this.broadcast({ type: "tool_execution_start", toolCallId: "call_1", toolName: "bash", args: { command: "ls" } });
    const result = { content: [{ type: "text", text: "a.txt" }] };
    this.broadcast({ type: "tool_execution_end", toolCallId: "call_1", toolName: "bash", result, isError: false });
    const tr = { role: "toolResult", toolCallId: "call_1", toolName: "bash", content: result.content, isError: false, timestamp: 3 };
    this.broadcast({ type: "message_start", message: tr });
    this.broadcast({ type: "message_end", message: tr });
    this.history.push(tr);
    this.broadcast({ type: "message_start", message: assistant([], "stop") });
    for (const delta of ["Hel", "lo!"]) {
      this.broadcast({ type: "message_update", message: assistant([], "stop"), assistantMessageEvent: { type: "text_delta", contentIndex: 0, delta } });
    }
    const a2 = assistant([{ type: "text", text: "Hello!" }], "stop");
    this.broadcast({ type: "message_end", message: a2 });
    this.history.push(a2);
  }

  async close() {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
