// /mnt/xenith: numbered windows, each a directory of files, plus the
// namespace files new, index, focus, event and log (DESIGN.md 2.1).

import { AppendFile, CtlFile, FnFile, SessionFile } from "../fs/files.js";
import { errs, FsError } from "../fs/errors.js";
import { Ctx, Handle, OpenFlags, StaticDir } from "../fs/node.js";
import { Broadcast, escapeEvent, StreamFile } from "../fs/stream.js";

export type WindowKind = "window" | "pi" | "pi-socket" | "script";
export type WindowStatus = "idle" | "working" | "offline" | "exited";

const dash = (s: string) => (s === "" ? "-" : s);

function checkName(n: string) {
  if (/\s/.test(n)) throw errs.inval(`bad window name ${JSON.stringify(n)}: names have no white space`);
  if (n.length > 256) throw errs.inval("window name longer than 256 bytes");
}

export class Window {
  readonly dir: WindowDir;
  readonly events = new Broadcast();
  readonly body: AppendFile;
  name = "";
  status: WindowStatus = "idle";
  dirty = false;
  /** The user part of the tag, after the `|`. */
  tagText = "";
  deleted = false;

  constructor(readonly x: Xenith, readonly id: number, readonly kind: WindowKind, public cwd: string) {
    this.dir = new WindowDir(String(id), this);
    this.body = this.dir.add(new AppendFile("body", 0o644, (data) => this.append(data)));
    this.dir.add(new CtlFile("ctl", () => this.ctlLine() + "\n", {
      name: (a) => this.setName(a.trim()),
      clean: () => { this.dirty = false; },
      dirty: () => { this.dirty = true; },
      focus: () => this.x.setFocus(this.id),
      del: () => this.x.delete(this.id),
      delete: () => this.x.delete(this.id),
    }));
    this.dir.add(new FnFile("tag", 0o644, {
      read: () => `${dash(this.name)} Del Snarf | ${this.tagText}`,
      write: (t) => {
        // Writing replaces the user part of the tag; a leading "…|" is dropped.
        const bar = t.indexOf("|");
        this.tagText = (bar >= 0 ? t.slice(bar + 1) : t).replace(/\n/g, " ").trim();
      },
    }));
    this.dir.add(new StreamFile("event", () => this.events, (text) => {
      for (const line of text.split("\n")) if (line !== "") this.events.publish(line);
    }));
  }

  ctlLine() {
    return `${this.id} ${this.kind} ${this.status} ${dash(this.name)} ${dash(this.cwd)} ${this.body.size()} ${this.dirty ? 1 : 0}`;
  }

  indexLine() { return `${this.id} ${this.kind} ${this.status} ${dash(this.name)} ${dash(this.cwd)}`; }

  setName(n: string) {
    checkName(n);
    if (n === "") throw errs.inval("name: missing name");
    this.name = n;
    this.x.lifecycle(`name ${this.id} ${n}`);
  }

  /** Append text to the body, as a write to `body` does. */
  append(data: Buffer | string) {
    const b = typeof data === "string" ? Buffer.from(data) : data;
    if (b.length === 0) return;
    const q0 = this.body.size();
    this.body.append(b);
    this.dirty = true;
    this.events.publish(`insert ${q0} ${q0 + b.length} ${escapeEvent(b.toString("utf8"))}`);
  }
}

class WindowDir extends StaticDir {
  constructor(name: string, readonly win: Window) { super(name, 0o755); }
  override remove() { this.win.x.delete(this.win.id); }
}

export interface NewRequestHandler {
  (verb: string, args: string, ctx: Ctx): number | Promise<number>;
}

export class Xenith {
  readonly dir = new StaticDir("xenith", 0o755);
  readonly windows = new Map<number, Window>();
  readonly events = new Broadcast();
  readonly log: AppendFile;
  focus = 0;
  private nextId = 1;
  /** Extra `new` verbs (spawn, agent) registered by other subsystems. */
  readonly newVerbs = new Map<string, NewRequestHandler>();

  constructor(readonly defaultCwd = "") {
    this.dir.add(new SessionFile("new", 0o666, (flags, ctx) => this.openNew(flags, ctx)));
    this.dir.add(new FnFile("index", 0o444, { read: () => [...this.windows.values()].map((w) => w.indexLine() + "\n").join("") }));
    this.dir.add(new FnFile("focus", 0o644, {
      read: () => (this.focus ? `${this.focus}\n` : ""),
      write: (t) => {
        const s = t.trim();
        if (!/^\d+$/.test(s)) throw errs.inval(`focus: not a window id: ${s}`);
        this.setFocus(Number(s));
      },
    }));
    this.dir.add(new StreamFile("event", () => this.events, (text) => {
      // wmii's habit: a line written is broadcast to every reader as written.
      for (const line of text.split("\n")) if (line !== "") this.events.publish(line);
    }));
    this.log = this.dir.add(new AppendFile("log", 0o444));
  }

  /** Record a lifecycle event: broadcast on `event` and appended to `log`. */
  lifecycle(line: string) {
    this.events.publish(line);
    this.log.append(line + "\n");
  }

  createWindow(kind: WindowKind = "window", name = "", cwd = this.defaultCwd): Window {
    if (name) checkName(name);
    const w = new Window(this, this.nextId++, kind, cwd);
    w.name = name;
    this.windows.set(w.id, w);
    this.dir.add(w.dir);
    this.lifecycle(`new ${w.id} ${kind} ${dash(name)}`);
    return w;
  }

  get(id: number): Window {
    const w = this.windows.get(id);
    if (!w) throw errs.notFound(`window ${id}`);
    return w;
  }

  setFocus(id: number) {
    const w = this.get(id);
    this.focus = id;
    w.events.publish("focus");
    this.lifecycle(`focus ${id}`);
  }

  setStatus(w: Window, s: WindowStatus) {
    if (w.status === s) return;
    w.status = s;
    w.events.publish(`status ${s}`);
    this.lifecycle(`status ${w.id} ${s}`);
  }

  delete(id: number) {
    const w = this.get(id);
    w.deleted = true;
    w.events.publish("del");
    // Let readers have the del line, then release pending reads with an error.
    queueMicrotask(() => w.events.close(new FsError("ENOENT", "window deleted")));
    this.windows.delete(id);
    this.dir.delete(String(id));
    if (this.focus === id) this.focus = 0;
    this.lifecycle(`del ${id}`);
  }

  /** `new`: each open keeps its own result; reading without writing makes a plain window. */
  private openNew(_flags: OpenFlags, ctx: Ctx): Handle {
    let id: number | null = null;
    // The result is read sequentially, whatever the offset: after a write the
    // file offset has moved past the request, yet the reply must still be read.
    let served = 0;
    return {
      read: (r) => {
        if (id === null) id = this.createWindow().id;
        const s = Buffer.from(`${id}\n`);
        const out = s.subarray(Math.min(served, s.length), Math.min(s.length, served + r.count));
        served += out.length;
        return out;
      },
      write: async (w) => {
        const lines = w.data.toString("utf8").split("\n").map((l) => l.trim()).filter(Boolean);
        if (lines.length !== 1) throw errs.inval(lines.length ? "new: one request per write" : "new: empty request");
        const m = /^(\S+)\s*(.*)$/.exec(lines[0])!;
        const [verb, args] = [m[1], m[2]];
        if (verb === "window") {
          id = this.createWindow("window", args.trim()).id;
        } else {
          const h = this.newVerbs.get(verb);
          if (!h) throw errs.inval(`new: unknown request: ${lines[0]}`);
          id = await h(verb, args, ctx);
        }
        served = 0;
        return w.data.length;
      },
      close() {},
    };
  }
}
