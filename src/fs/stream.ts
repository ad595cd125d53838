// Event streams: broadcast line queues read through blocking reads.
//
// Every open is its own cursor, starting at the moment of the open. A read
// waits until at least one whole line is queued, then returns as many whole
// lines as fit (only a line longer than the read count is split). Readers
// share one log of recent lines, so an event costs the same whatever the
// number of readers; a reader that falls more than the limit behind loses
// the oldest lines and reads `lost <n>` in their place.
//
// A stream file says so (Node.stream); when a Tread that continues the
// previous one is answered with 0 at once is the wire's business, decided in
// src/ninep/stream-rule.ts (DESIGN.md 2.2), so this file never sees msize.

import { errs, FsError } from "./errors.js";
import { Ctx, Handle, Node, OpenFlags, ReadReq } from "./node.js";

const EMPTY = Buffer.alloc(0);
export const STREAM_QUEUE_BYTES = 1 << 20;
/** Lines a reader may fall behind (with the default byte limit). */
export const STREAM_QUEUE_LINES = 65536;

/** Escape an event payload so it never spans lines: `\` → `\\`, newline → `\n`. */
export function escapeEvent(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
export function unescapeEvent(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\"));
}

interface Waiter { count: number; resolve: (b: Buffer) => void; reject: (e: Error) => void }

/**
 * One open's position in a Broadcast: the sequence number of the next line
 * it reads. Cursors share the Broadcast's log, so publishing costs the same
 * whatever the number of readers, and an idle reader costs nothing.
 */
export class Cursor {
  /** Sequence number of the next line to read. */
  pos: number;
  /** Bytes of line `pos` already returned (a line longer than a read). */
  private skip = 0;
  /** Lines dropped before this reader got them, not yet reported. */
  private lost = 0;
  /** What is left of a `lost <n>` line split by a tiny read. */
  private note: Buffer | null = null;
  private waiter: Waiter | null = null;
  private wakeScheduled = false;
  private failure: FsError | null = null;
  /** What was still unread when the stream ended. */
  private rest: Buffer | null = null;

  constructor(private owner: Broadcast, pos: number) { this.pos = pos; }

  /** Lines arrived: a pending read takes them (once per burst of publishes). */
  wake() {
    if (!this.waiter || this.wakeScheduled) return;
    this.wakeScheduled = true;
    // Let a burst of synchronous publishes land in one reply.
    queueMicrotask(() => {
      this.wakeScheduled = false;
      const w = this.waiter;
      if (!w) return;
      const b = this.take(w.count);
      if (b.length) { this.waiter = null; this.owner.unwait(this); w.resolve(b); }
    });
  }

  /** Whole lines that fit in count (a longer first line is split). */
  private take(count: number): Buffer {
    const o = this.owner;
    if (this.pos < o.base) { this.lost += o.base - this.pos; this.pos = o.base; this.skip = 0; }
    const parts: Buffer[] = [];
    let n = 0;
    if (this.lost > 0 && !this.note) { this.note = Buffer.from(`lost ${this.lost}\n`); this.lost = 0; }
    if (this.note) {
      const b = this.note;
      if (b.length > count) { this.note = b.subarray(count); return b.subarray(0, count); }
      this.note = null;
      parts.push(b);
      n = b.length;
    }
    const end = o.end;
    while (this.pos < end) {
      let line = o.at(this.pos);
      if (this.skip) line = line.subarray(this.skip);
      if (n + line.length > count) {
        if (n === 0) { this.skip += count; return line.subarray(0, count); }
        break;
      }
      parts.push(line);
      n += line.length;
      this.pos++;
      this.skip = 0;
    }
    if (parts.length === 0) return EMPTY;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  read(count: number, signal: AbortSignal): Buffer | Promise<Buffer> {
    if (this.failure) {
      const b = this.takeRest(count);
      if (b.length) return b;
      throw this.failure;
    }
    if (this.waiter) throw new FsError("EBUSY", "a read is already pending on this open file");
    const b = this.take(count);
    if (b.length) return b;
    if (signal.aborted) throw errs.flushed();
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => { if (this.waiter === w) { this.waiter = null; this.owner.unwait(this); } reject(errs.flushed()); };
      const w: Waiter = {
        count,
        resolve: (b) => { signal.removeEventListener("abort", onAbort); resolve(b); },
        reject: (e) => { signal.removeEventListener("abort", onAbort); reject(e); },
      };
      this.waiter = w;
      signal.addEventListener("abort", onAbort, { once: true });
      this.owner.wait(this);
    });
  }

  /**
   * End this cursor: what it has not read yet (the `del` of a deleted
   * window, say) is still read, then every read fails with `e`.
   */
  fail(e: FsError) {
    if (!this.failure) {
      const left = this.take(Number.MAX_SAFE_INTEGER);
      if (left.length) this.rest = Buffer.from(left);
    }
    this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    if (!w) return;
    const b = this.takeRest(w.count);
    if (b.length) w.resolve(b); else w.reject(e);
  }

  /** Unread bytes kept at fail(): whole lines that fit in count (a longer first line is split). */
  private takeRest(count: number): Buffer {
    const r = this.rest;
    if (!r || r.length === 0) return EMPTY;
    let n = r.length;
    if (n > count) { const nl = r.lastIndexOf(10, count - 1); n = nl >= 0 ? nl + 1 : count; }
    this.rest = r.subarray(n);
    return r.subarray(0, n);
  }

  close() {
    this.owner.unsubscribe(this);
    const w = this.waiter;
    this.waiter = null;
    w?.reject(errs.flushed());
  }
}

/**
 * A broadcast line stream: one log of recent lines shared by every reader.
 * Each reader may fall up to maxBytes (and maxLines) behind; past that the
 * oldest lines go and the reader reads `lost <n>`, then the lines that are
 * left. The log holds at most twice the limits; what every reader has read
 * is dropped (at once when every reader waits at the end).
 */
export class Broadcast {
  private cursors = new Set<Cursor>();
  /** Cursors with a pending read (all of them at the end of the log). */
  private waiting = new Set<Cursor>();
  private closed: FsError | null = null;
  private log: (Buffer | undefined)[] = [];
  /** Index in log of line `base`. */
  private head = 0;
  /** Sequence number of the oldest line kept. */
  base = 0;
  private bytes = 0;
  private readonly maxLines: number;
  constructor(private maxBytes = STREAM_QUEUE_BYTES) {
    this.maxLines = Math.max(16, Math.min(STREAM_QUEUE_LINES, maxBytes >> 4));
  }

  get readers() { return this.cursors.size; }
  /** Sequence number after the newest line. */
  get end() { return this.base + this.log.length - this.head; }
  at(seq: number): Buffer { return this.log[this.head + seq - this.base]!; }

  subscribe(): Cursor {
    const c = new Cursor(this, this.end);
    if (this.closed) c.fail(this.closed);
    else this.cursors.add(c);
    return c;
  }
  unsubscribe(c: Cursor) {
    this.cursors.delete(c);
    this.waiting.delete(c);
    if (this.cursors.size === 0) this.dropTo(this.end);
  }
  /** A cursor blocked at the end; when all are, nothing kept is unread. */
  wait(c: Cursor) {
    this.waiting.add(c);
    if (this.waiting.size === this.cursors.size) this.dropTo(this.end);
  }
  unwait(c: Cursor) { this.waiting.delete(c); }

  /** Publish one event line (a trailing newline is added when missing). */
  publish(line: string) {
    if (this.cursors.size === 0) return;
    const b = Buffer.from(line.endsWith("\n") ? line : line + "\n", "utf8");
    this.log.push(b);
    this.bytes += b.length;
    if (this.bytes > 2 * this.maxBytes || this.end - this.base > 2 * this.maxLines) this.trim();
    for (const c of this.waiting) c.wake();
  }

  /** Back within the limits: first what every reader has read, then the oldest lines. */
  private trim() {
    let min = this.end;
    for (const c of this.cursors) if (c.pos < min) min = c.pos;
    this.dropTo(min);
    while (this.base < this.end && (this.bytes > this.maxBytes || this.end - this.base > this.maxLines)) this.dropTo(this.base + 1);
  }

  private dropTo(seq: number) {
    while (this.base < seq) {
      this.bytes -= this.log[this.head]!.length;
      this.log[this.head++] = undefined;
      this.base++;
    }
    if (this.head === this.log.length) { this.log = []; this.head = 0; }
    else if (this.head > 1024 && this.head * 2 > this.log.length) { this.log = this.log.slice(this.head); this.head = 0; }
  }

  /** End the stream: readers get what they have not read yet, then every read fails with `err`. */
  close(err: FsError) {
    this.closed = err;
    for (const c of this.cursors) c.fail(err);
    this.cursors.clear();
    this.waiting.clear();
    this.dropTo(this.end);
  }
}

/** The read side of one open stream. */
export class StreamReader {
  /** Bytes this open has taken from the stream so far (its logical file position). */
  private pos = 0;
  /** The bytes of the last reply taken from the stream, which end at pos. */
  private held: Buffer = EMPTY;
  constructor(private cursor: Cursor) {}

  read(r: ReadReq): Buffer | Promise<Buffer> {
    // A zero-count read can never be satisfied by a whole line: answer it now, not never.
    if (r.count <= 0) return EMPTY;
    // A read that starts inside the last reply re-reads from there. Shells
    // that read ahead and seek back to the end of the line they used (bash's
    // read builtin on a file that is not a pipe) then lose nothing. Offset 0
    // never rewinds, so a client that always reads at 0 still streams.
    const heldStart = this.pos - this.held.length;
    if (r.offset > 0 && r.offset < this.pos && r.offset >= heldStart) {
      const b = this.held.subarray(r.offset - heldStart, r.offset - heldStart + r.count);
      return b;
    }
    const got = this.cursor.read(r.count, r.signal);
    const note = (b: Buffer) => {
      this.held = b;
      this.pos += b.length;
      return b;
    };
    return got instanceof Promise ? got.then(note) : note(got);
  }
  close() { this.cursor.close(); }
}

/** A stream file: every open reads the broadcast from the moment of opening. */
export class StreamFile extends Node {
  readonly isDir = false;
  override readonly isStream = true;
  constructor(name: string, private stream: () => Broadcast,
    private onWrite?: (text: string, ctx: Ctx) => void) {
    super(name, onWrite ? 0o644 : 0o444);
  }
  open(flags: OpenFlags, ctx: Ctx): Handle {
    this.checkOpen(flags, true, !!this.onWrite);
    const reader = flags.read ? new StreamReader(this.stream().subscribe()) : null;
    return {
      read: (r) => {
        if (!reader) throw errs.writeOnly();
        return reader.read(r);
      },
      write: (w) => {
        if (!this.onWrite) throw errs.readOnly();
        this.onWrite(w.data.toString("utf8"), ctx);
        return w.data.length;
      },
      close: () => reader?.close(),
    };
  }
}
