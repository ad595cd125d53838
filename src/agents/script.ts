// Scripted agents: any program can be an agent. `agent name=… [cwd=…]` in
// /mnt/xenith/new makes a window with an `inbox` stream; the program reads
// what users send there (prompt …, steer …, followup …, abort) and answers
// by appending to `body` and writing lines to the window's own `event`
// (a line `status working` or `status idle` there also sets the status).

import { Broadcast, escapeEvent, StreamFile } from "../fs/stream.js";
import type { Window, Xenith } from "../xenith/xenith.js";
import { AgentWindow, Backend, DeliverAs } from "./agent.js";

export class ScriptBackend implements Backend {
  readonly kind = "script" as const;
  readonly inbox = new Broadcast();
  async send(text: string, as: DeliverAs) { this.inbox.publish(`${as} ${escapeEvent(text)}`); }
  async abort() { this.inbox.publish("abort"); }
  info() { return { inbox_readers: this.inbox.readers }; }
}

export function makeScriptAgent(x: Xenith, w: Window): AgentWindow {
  const b = new ScriptBackend();
  const a = new AgentWindow(x, w, b);
  w.dir.add(new StreamFile("inbox", () => b.inbox));
  w.onEventWrite = (line) => {
    const m = /^status (idle|working)$/.exec(line);
    if (m && w.status !== m[1]) {
      // The line itself reaches the window's readers as written; tell the namespace.
      w.status = m[1] as "idle" | "working";
      x.lifecycle({ type: "status", id: w.id, status: w.status });
    }
  };
  return a;
}
