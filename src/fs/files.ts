// Ordinary kinds of synthetic files.

import { Text } from "./text.js";
import { errs, FsError } from "./errors.js";
import { Ctx, Handle, Node, OpenFlags, ReadReq, WriteReq } from "./node.js";

const EMPTY = Buffer.alloc(0);

type Content = string | Buffer;
const toBuf = (c: Content) => (typeof c === "string" ? Buffer.from(c, "utf8") : c);

export interface FnFileOpts {
  /** Content, generated afresh on every read at offset 0 (acme's habit). */
  read?: (ctx: Ctx) => Content;
  /** Called with the whole text of each write. Throw an FsError to fail it. */
  write?: (text: string, ctx: Ctx) => void | Promise<void>;
}

/** A file whose content is computed, and whose writes are handed to a function. */
export class FnFile extends Node {
  readonly isDir = false;
  constructor(name: string, perm: number, private opts: FnFileOpts) { super(name, perm); }
  open(flags: OpenFlags, ctx: Ctx): Handle {
    this.checkOpen(flags, !!this.opts.read, !!this.opts.write);
    let snap: Buffer | null = null;
    return {
      read: (r: ReadReq) => {
        if (!this.opts.read) throw errs.writeOnly();
        if (r.offset === 0 || !snap) snap = toBuf(this.opts.read(ctx));
        return snap.subarray(Math.min(r.offset, snap.length), Math.min(snap.length, r.offset + r.count));
      },
      write: async (w: WriteReq) => {
        if (!this.opts.write) throw errs.readOnly();
        await this.opts.write(w.data.toString("utf8"), ctx);
        this.mtime = Date.now();
        return w.data.length;
      },
      close() {},
    };
  }
}

export type CtlCommand = (args: string, ctx: Ctx) => void | Promise<void>;

/**
 * A ctl file: reading gives a status line; writing takes one command per
 * line. Every line is checked before any runs, so a write with an unknown
 * command changes nothing and fails with a message naming the line.
 */
export class CtlFile extends FnFile {
  constructor(name: string, status: (ctx: Ctx) => Content, commands: Record<string, CtlCommand>,
    fallback?: (line: string) => CtlCommand | undefined) {
    super(name, 0o644, {
      read: status,
      write: async (text, ctx) => {
        const lines = text.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "");
        const todo: [CtlCommand, string][] = [];
        for (const line of lines) {
          const m = /^\s*(\S+)\s?(.*)$/.exec(line)!;
          const cmd = Object.prototype.hasOwnProperty.call(commands, m[1]) ? commands[m[1]] : fallback?.(line);
          if (!cmd) throw new FsError("EINVAL", `unknown ctl message: ${line}`);
          todo.push([cmd, cmd === commands[m[1]] ? m[2] : line]);
        }
        for (const [cmd, args] of todo) await cmd(args, ctx);
      },
    });
  }
}

/** A file with a fresh handle per open: the handle holds that open's state. */
export class SessionFile extends Node {
  readonly isDir = false;
  constructor(name: string, perm: number, private factory: (flags: OpenFlags, ctx: Ctx) => Handle) { super(name, perm); }
  open(flags: OpenFlags, ctx: Ctx) { return this.factory(flags, ctx); }
}

/**
 * An append-only file with a growing size (`log`, `body`): reads by offset,
 * every write appends whatever its offset, so `>>` and `tail -f` behave.
 */
export class AppendFile extends Node {
  readonly isDir = false;
  readonly store = new Text();
  constructor(name: string, perm: number, private onWrite?: (data: Buffer, ctx: Ctx) => void) { super(name, perm); }
  override size() { return this.store.size; }
  override isAppend() { return true; }
  append(data: Buffer | string) {
    this.store.append(data);
    this.mtime = Date.now();
  }
  open(flags: OpenFlags, ctx: Ctx): Handle {
    this.checkOpen(flags, true, !!this.onWrite);
    return {
      read: (r) => this.store.read(r.offset, r.count),
      write: (w) => {
        if (!this.onWrite) throw errs.readOnly();
        this.onWrite(w.data, ctx);
        return w.data.length;
      },
      close() {},
    };
  }
}

/** An ordinary in-memory file: positioned reads and writes, any length. */
export class MemFile extends Node {
  readonly isDir = false;
  private data: Buffer;
  private len: number;
  constructor(name: string, perm = 0o644, content: Content = EMPTY) {
    super(name, perm);
    this.data = Buffer.from(toBuf(content));
    this.len = this.data.length;
  }
  override size() { return this.len; }
  override truncate(size: number) {
    this.ensure(size);
    if (size > this.len) this.data.fill(0, this.len, size);
    this.len = size;
    this.mtime = Date.now();
  }
  private ensure(n: number) {
    if (n > 1 << 30) throw new FsError("EFBIG", `${this.name}: file too large`);
    if (n <= this.data.length) return;
    const b = Buffer.alloc(Math.max(n, this.data.length * 2, 4096));
    this.data.copy(b, 0, 0, this.len);
    this.data = b;
  }
  contents() { return this.data.subarray(0, this.len); }
  open(flags: OpenFlags): Handle {
    this.checkOpen(flags, (this.perm & 0o444) !== 0, (this.perm & 0o222) !== 0);
    return {
      // A copy: the reply may sit in the socket buffer while a later write changes the file.
      read: (r) => Buffer.from(this.data.subarray(Math.min(r.offset, this.len), Math.min(this.len, r.offset + r.count))),
      write: (w) => {
        const off = flags.append ? this.len : w.offset;
        const end = off + w.data.length;
        this.ensure(end);
        if (off > this.len) this.data.fill(0, this.len, off);
        w.data.copy(this.data, off);
        if (end > this.len) this.len = end;
        this.mtime = Date.now();
        return w.data.length;
      },
      close() {},
    };
  }
}
