// /mnt/xenith: numbered windows, each a directory of files, plus the
// namespace files new, index, focus, event and log (DESIGN.md 2.1).

import { AppendFile, CtlCommand, CtlFile, FnFile, SessionFile } from "../fs/files.js";
import { errs, FsError } from "../fs/errors.js";
import { Ctx, Handle, Node, OpenFlags, StaticDir } from "../fs/node.js";
import { Broadcast, escapeEvent, StreamFile } from "../fs/stream.js";
import { EditError, EditState, parseEdit, resolveAddress, runEdit, type Cmd } from "./edit.js";
import { readPngSize } from "./image.js";
import { Change, changeLen, OffsetMap, Text } from "../fs/text.js";

export type WindowKind = "window" | "pi" | "pi-socket" | "script";
export type WindowStatus = "idle" | "working" | "offline" | "exited";

const dash = (s: string) => (s === "" ? "-" : s);

function checkName(n: string) {
  if (/\s/.test(n)) throw errs.inval(`bad window name ${JSON.stringify(n)}: names have no white space`);
  if (n.length > 256) throw errs.inval("window name longer than 256 bytes");
}

export interface Range { q0: number; q1: number }

/** A window's body: reads by offset, every write appends, size grows. */
class BodyFile extends Node {
  readonly isDir = false;
  constructor(readonly win: Window) { super("body", 0o644); }
  override size() { return this.win.text.size; }
  override isAppend() { return true; }
  open(flags: OpenFlags): Handle {
    this.checkOpen(flags, true, true);
    return {
      read: (r) => this.win.text.read(r.offset, r.count),
      write: (w) => {
        if (!this.win.bodyWritable) throw new FsError("EACCES", `permission denied: the body of a ${this.win.kind} window is written by its agent; write ctl (prompt …)`);
        this.win.append(w.data);
        return w.data.length;
      },
      close() {},
    };
  }
}

export class Window {
  readonly dir: WindowDir;
  readonly events = new Broadcast();
  readonly text = new Text();
  readonly body: BodyFile;
  name = "";
  status: WindowStatus = "idle";
  dirty = false;
  /** The user part of the tag, after the `|`. */
  tagText = "";
  deleted = false;
  /** The selection, byte offsets into body; empty when q0 == q1. */
  sel: Range = { q0: 0, q1: 0 };
  /** acme's addr, set through the addr file, used by data. */
  addr: Range = { q0: 0, q1: 0 };
  image: { path: string; width: number; height: number } | null = null;
  /** ctl messages; agents add theirs (prompt, steer, …). */
  readonly ctl: Record<string, CtlCommand>;
  /** Whether writes to body are accepted (an agent's body is written by the agent). */
  bodyWritable = true;
  /** Sees each line a program writes to this window's event file. */
  onEventWrite?: (line: string) => void;
  /** Stops what runs behind the window (an agent) before it is deleted. */
  stop?: () => Promise<void>;

  constructor(readonly x: Xenith, readonly id: number, readonly kind: WindowKind, public cwd: string) {
    this.dir = new WindowDir(String(id), this);
    this.body = this.dir.add(new BodyFile(this));
    this.ctl = {
      name: (a) => this.setName(a.trim()),
      clean: () => { this.dirty = false; },
      dirty: () => { this.dirty = true; },
      focus: () => this.x.setFocus(this.id),
      del: () => this.del(),
      delete: () => this.del(),
      "dot=addr": () => this.setSel(this.addr.q0, this.addr.q1),
      "addr=dot": () => { this.addr = { ...this.sel }; },
    };
    this.dir.add(new CtlFile("ctl", () => this.ctlLine() + "\n", this.ctl, (line) => {
      // Any other line must be a sam command; it is parsed now, so a write
      // with a bad line changes nothing.
      let cmds: Cmd[];
      try { cmds = parseEdit(line, { ...this.editState }); }
      catch (e) { throw errs.inval(`unknown ctl message: ${line} (${(e as Error).message})`); }
      return () => { this.samEdit(cmds); };
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
      for (const line of text.split("\n")) if (line !== "") { this.onEventWrite?.(line); this.events.publish(line); }
    }));
    this.dir.add(new FnFile("sel", 0o644, {
      read: () => (this.sel.q0 === this.sel.q1 ? "" : `${this.sel.q0} ${this.sel.q1}\n`),
      write: (t) => {
        const s = t.trim();
        if (s === "") { this.setSel(this.sel.q1, this.sel.q1); return; }
        const m = /^(\d+)\s+(\d+)$/.exec(s);
        if (!m) throw errs.inval(`sel: want "start end" byte offsets, got ${JSON.stringify(s)}`);
        const q0 = Number(m[1]), q1 = Number(m[2]), n = this.text.size;
        if (q0 > q1 || q1 > n) throw errs.inval(`sel: ${q0} ${q1} out of range: body has ${n} bytes`);
        this.setSel(q0, q1);
      },
    }));
    this.dir.add(new FnFile("dot", 0o644, {
      read: () => { const [l, c] = this.lineChar(this.sel.q0); return `${l} ${c}\n`; },
      write: (t) => {
        const s = t.trim();
        const m = /^(\d+)\s+(\d+)$/.exec(s);
        if (!m) throw errs.inval(`dot: want "line char", got ${JSON.stringify(s)}`);
        const q = this.offsetOf(Number(m[1]), Number(m[2]));
        this.sel = { q0: q, q1: q };
        this.events.publish(`dot ${m[1]} ${m[2]}`);
      },
    }));
    this.dir.add(new FnFile("dirty", 0o644, {
      read: () => (this.dirty ? "1\n" : "0\n"),
      write: (t) => {
        const s = t.trim();
        if (s !== "0" && s !== "1") throw errs.inval(`dirty: want 0 or 1, got ${JSON.stringify(s)}`);
        this.dirty = s === "1";
      },
    }));
    this.dir.add(new FnFile("image", 0o644, {
      read: () => (this.image ? `${this.image.path} ${this.image.width} ${this.image.height}\n` : ""),
      write: async (t) => {
        const p = t.trim();
        if (p === "") { this.image = null; return; }
        this.image = await readPngSize(p, this.cwd || this.x.defaultCwd);
      },
    }));
    this.dir.add(new FnFile("addr", 0o644, {
      read: () => `${this.addr.q0} ${this.addr.q1}\n`,
      // acme's habit: the address is evaluated with addr itself as dot.
      write: (t) => { this.addr = this.resolve(t.replace(/\n+$/, ""), this.addr); },
    }));
    this.dir.add(new SessionFile("data", 0o644, () => ({
      // Reads run from addr's start to the end of body and advance addr;
      // a write replaces addr's text, leaving addr just after what it wrote.
      read: (r) => {
        const q0 = Math.min(this.addr.q0, this.text.size);
        const b = Buffer.from(this.text.read(q0, r.count));
        const q = q0 + b.length;
        this.addr = { q0: q, q1: Math.max(q, this.addr.q1) };
        return b;
      },
      write: (w) => {
        const { q0, q1 } = this.addr;
        this.applyChanges([{ q0, q1, text: Buffer.from(w.data) }]);
        this.addr = { q0: q0 + w.data.length, q1: q0 + w.data.length };
        return w.data.length;
      },
      close() {},
    })));
    this.dir.add(new SessionFile("edit", 0o644, () => {
      // Each write is one edit transaction; reading the same open file gives what p and = printed.
      let out = Buffer.alloc(0), served = 0;
      return {
        read: (r) => { const b = out.subarray(served, served + r.count); served += b.length; return b; },
        write: (w) => {
          const src = w.data.toString("utf8");
          let cmds: Cmd[];
          try { cmds = parseEdit(src, { ...this.editState }); } catch (e) { throw errs.inval(`edit: ${(e as Error).message}`); }
          out = Buffer.from(this.samEdit(cmds), "utf8");
          served = 0;
          return w.data.length;
        },
        close() {},
      };
    }));
  }

  /** The last regular expression, for `//`, kept across edits. */
  editState: EditState = {};

  /** The body as a string with a byte/unit map; exact is false when the body is not valid UTF-8. */
  private snapshot() {
    const str = this.text.toString();
    const exact = this.text.ascii || Buffer.byteLength(str) === this.text.size;
    return { str, map: OffsetMap.of(str, this.text.ascii), exact };
  }

  /** Evaluate a sam address against the body, with dot given in bytes; the result is in bytes. */
  resolve(addr: string, dot: Range): Range {
    const { str, map } = this.snapshot();
    try {
      const r = resolveAddress(str, addr, { q0: map.toUnit(dot.q0), q1: map.toUnit(dot.q1) }, { state: this.editState });
      return { q0: map.toByte(r.q0), q1: map.toByte(r.q1) };
    } catch (e) {
      if (e instanceof EditError) throw errs.inval(`addr: ${e.message}`);
      throw e;
    }
  }

  /**
   * Run sam commands on the body. Dot is the selection, or the whole body
   * when nothing is selected. The selection is not moved by an edit (only
   * carried along with its text): use dot=addr or sel for that. Returns what
   * p and = printed.
   */
  samEdit(cmds: Cmd[]): string {
    const { str, map, exact } = this.snapshot();
    const dot = this.sel.q0 === this.sel.q1 ? { q0: 0, q1: str.length } : { q0: map.toUnit(this.sel.q0), q1: map.toUnit(this.sel.q1) };
    let r;
    try { r = runEdit(str, cmds, dot, { state: this.editState }); }
    catch (e) { if (e instanceof EditError) throw errs.inval(`edit: ${e.message}`); throw e; }
    if (r.changes.length === 0) return r.output;
    if (exact) {
      this.applyChanges(map.identity ? r.changes : r.changes.map((c) => ({ q0: map.toByte(c.q0), q1: map.toByte(c.q1), text: c.text })));
    } else {
      // Bytes that are not UTF-8 have no exact place in the string: rewrite the whole body.
      let next = "", pos = 0;
      for (const c of r.changes) { next += str.slice(pos, c.q0) + c.text; pos = c.q1; }
      next += str.slice(pos);
      this.applyChanges([{ q0: 0, q1: this.text.size, text: next }]);
    }
    return r.output;
  }

  /** Delete the window, stopping its agent first. */
  async del() {
    if (this.stop) await this.stop();
    if (!this.deleted) this.x.delete(this.id);
  }

  ctlLine() {
    return `${this.id} ${this.kind} ${this.status} ${dash(this.name)} ${dash(this.cwd)} ${this.text.size} ${this.dirty ? 1 : 0}`;
  }

  indexLine() { return `${this.id} ${this.kind} ${this.status} ${dash(this.name)} ${dash(this.cwd)}`; }

  setName(n: string) {
    checkName(n);
    if (n === "") throw errs.inval("name: missing name");
    this.name = n;
    this.x.lifecycle({ type: "name", id: this.id, name: n });
  }

  setSel(q0: number, q1: number) {
    this.sel = { q0, q1 };
    this.events.publish(`sel ${q0} ${q1}`);
  }

  /** Append text to the body, as a write to `body` does. */
  append(data: Buffer | string) {
    const b = typeof data === "string" ? Buffer.from(data) : data;
    if (b.length === 0) return;
    const q0 = this.text.size;
    this.text.append(b);
    this.body.mtime = Date.now();
    this.dirty = true;
    // Formatting an event costs a decode and an escape of the text: only when someone reads.
    if (this.events.readers) this.events.publish(`insert ${q0} ${q0 + b.length} ${escapeEvent(b.toString("utf8"))}`);
  }

  /**
   * Apply changes computed against the current body (sorted, not
   * overlapping). Events report each change at its place in the text as it
   * stands when that change is made: the batch is applied from the end.
   */
  applyChanges(changes: Change[]) {
    if (changes.length === 0) return;
    this.text.applyBatch(changes);
    this.body.mtime = Date.now();
    this.dirty = true;
    const map = (p: number) => mapThrough(p, changes);
    this.sel = { q0: map(this.sel.q0), q1: map(this.sel.q1) };
    this.addr = { q0: map(this.addr.q0), q1: map(this.addr.q1) };
    for (let i = changes.length - 1; i >= 0 && this.events.readers; i--) {
      const c = changes[i];
      if (c.q1 > c.q0) this.events.publish(`delete ${c.q0} ${c.q1}`);
      const n = changeLen(c);
      if (n) this.events.publish(`insert ${c.q0} ${c.q0 + n} ${escapeEvent(c.text.toString())}`);
    }
  }

  /** 1-based line and 0-based character (not byte) column of a byte offset. */
  lineChar(q: number): [number, number] {
    const b = this.text.read(0, q);
    let line = 1, start = 0;
    for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) { line++; start = i + 1; }
    return [line, [...b.subarray(start).toString("utf8")].length];
  }

  /** Byte offset of 1-based line and 0-based character column; errors when out of range. */
  offsetOf(line: number, char: number): number {
    if (line < 1) throw errs.inval(`dot: line ${line} out of range: lines start at 1`);
    const b = this.text.toBuffer();
    let start = 0;
    for (let l = 1; l < line; l++) {
      const nl = b.indexOf(10, start);
      if (nl === -1) throw errs.inval(`dot: line ${line} out of range: body has ${l} lines`);
      start = nl + 1;
    }
    let end = b.indexOf(10, start);
    if (end === -1) end = b.length;
    const chars = [...b.subarray(start, end).toString("utf8")];
    if (char > chars.length) throw errs.inval(`dot: char ${char} out of range: line ${line} has ${chars.length} characters`);
    return start + Buffer.byteLength(chars.slice(0, char).join(""));
  }
}

/** Where an offset of the old text lands after a batch of changes (a deleted place maps to the change's start). */
export function mapThrough(p: number, changes: Change[]): number {
  let delta = 0;
  for (const c of changes) {
    if (c.q1 <= p && !(c.q0 === c.q1 && c.q0 === p)) delta += changeLen(c) - (c.q1 - c.q0);
    else if (c.q0 < p) return c.q0 + delta;
    else break;
  }
  return p + delta;
}

class WindowDir extends StaticDir {
  constructor(name: string, readonly win: Window) { super(name, 0o755); }
  override remove() {
    // Tremove cannot wait: the window goes now, its agent is stopped behind it.
    const stop = this.win.stop;
    this.win.x.delete(this.win.id);
    if (stop) void stop().catch(() => {});
  }
}

/**
 * A change in the set of windows, as typed data. Xenith renders each one as
 * a line on `event` and `log` (`new <id> <kind> <name>`, …); in-process
 * watchers (the hypivisor's roster) get the object itself and never parse
 * the text.
 */
export type Lifecycle =
  | { type: "new"; id: number; kind: WindowKind; name: string }
  | { type: "del"; id: number }
  | { type: "focus"; id: number }
  | { type: "status"; id: number; status: WindowStatus }
  | { type: "name"; id: number; name: string };

export function lifecycleLine(e: Lifecycle): string {
  switch (e.type) {
    case "new": return `new ${e.id} ${e.kind} ${dash(e.name)}`;
    case "del": return `del ${e.id}`;
    case "focus": return `focus ${e.id}`;
    case "status": return `status ${e.id} ${e.status}`;
    case "name": return `name ${e.id} ${e.name}`;
  }
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
  /** In-process watchers of the lifecycle lines (the hypivisor's roster of agent windows). */
  readonly watchers = new Set<(e: Lifecycle) => void>();

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
  lifecycle(e: Lifecycle) {
    const line = lifecycleLine(e);
    this.events.publish(line);
    this.log.append(line + "\n");
    for (const f of this.watchers) f(e);
  }

  createWindow(kind: WindowKind = "window", name = "", cwd = this.defaultCwd): Window {
    if (name) checkName(name);
    const w = new Window(this, this.nextId++, kind, cwd);
    w.name = name;
    this.windows.set(w.id, w);
    this.dir.add(w.dir);
    this.lifecycle({ type: "new", id: w.id, kind, name });
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
    this.lifecycle({ type: "focus", id });
  }

  setStatus(w: Window, s: WindowStatus) {
    if (w.status === s) return;
    w.status = s;
    w.events.publish(`status ${s}`);
    this.lifecycle({ type: "status", id: w.id, status: s });
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
    this.lifecycle({ type: "del", id });
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
