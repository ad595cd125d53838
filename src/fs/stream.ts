// Event streams: broadcast line queues read through blocking reads.
//
// Every open is its own cursor, starting at the moment of the open. A read
// waits until at least one whole line is queued, then returns as many whole
// lines as fit (only a line longer than the read count is split). A slow
// reader has a bounded queue; on overflow it later reads `lost <n>`.
//
// The follow-up rule (DESIGN.md 2.2): the Linux kernel client keeps issuing
// Treads inside one read(2) until its buffer is full or a Tread returns 0,
// while plan9port, 9pfuse, diod's tools and pi9's own client take any 0 as
// end of file. So after a reply of 0 < n < count bytes, the next Tread on
// the same open is answered with 0 at once when it continues that read
// (offset = previous offset + n and a smaller count), or when it repeats a
// count of msize-24 on a connection with msize > 8216 (a kernel reader with
// a buffer of at least msize); every other read blocks.

import { errs, FsError } from "./errors.js";
import { Ctx, Handle, Node, OpenFlags, ReadReq } from "./node.js";

const EMPTY = Buffer.alloc(0);
export const STREAM_QUEUE_BYTES = 1 << 20;
const IOHDRSZ = 24;

/** Escape an event payload so it never spans lines: `\` → `\\`, newline → `\n`. */
export function escapeEvent(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
export function unescapeEvent(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\"));
}

interface Waiter { count: number; resolve: (b: Buffer) => void; reject: (e: Error) => void }

export class Cursor {
  private q: Buffer[] = [];
  private qBytes = 0;
  private lost = 0;
  private waiter: Waiter | null = null;
  private wakeScheduled = false;
  private failure: FsError | null = null;

  constructor(private owner: Broadcast, private maxBytes: number) {}

  push(line: Buffer) {
    if (this.failure) return;
    if (this.qBytes + line.length > this.maxBytes) { this.lost++; return; }
    if (this.lost > 0) this.flushLost();
    this.q.push(line);
    this.qBytes += line.length;
    this.scheduleWake();
  }

  private flushLost() {
    const l = Buffer.from(`lost ${this.lost}\n`);
    this.lost = 0;
    this.q.push(l);
    this.qBytes += l.length;
  }

  private scheduleWake() {
    if (!this.waiter || this.wakeScheduled) return;
    this.wakeScheduled = true;
    // Let a burst of synchronous publishes land in one reply.
    queueMicrotask(() => {
      this.wakeScheduled = false;
      const w = this.waiter;
      if (!w) return;
      const b = this.take(w.count);
      if (b.length) { this.waiter = null; w.resolve(b); }
    });
  }

  /** Whole lines that fit in count (a longer first line is split). */
  private take(count: number): Buffer {
    if (this.q.length === 0 && this.lost > 0) this.flushLost();
    if (this.q.length === 0) return EMPTY;
    const first = this.q[0];
    if (first.length > count) {
      this.q[0] = first.subarray(count);
      this.qBytes -= count;
      return first.subarray(0, count);
    }
    let n = 0, i = 0;
    while (i < this.q.length && n + this.q[i].length <= count) n += this.q[i++].length;
    const out = i === 1 ? this.q[0] : Buffer.concat(this.q.slice(0, i), n);
    this.q.splice(0, i);
    this.qBytes -= n;
    return out;
  }

  read(count: number, signal: AbortSignal): Buffer | Promise<Buffer> {
    if (this.failure) throw this.failure;
    if (this.waiter) throw new FsError("EBUSY", "a read is already pending on this open file");
    const b = this.take(count);
    if (b.length) return b;
    if (signal.aborted) throw errs.flushed();
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => { if (this.waiter === w) this.waiter = null; reject(errs.flushed()); };
      const w: Waiter = {
        count,
        resolve: (b) => { signal.removeEventListener("abort", onAbort); resolve(b); },
        reject: (e) => { signal.removeEventListener("abort", onAbort); reject(e); },
      };
      this.waiter = w;
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  fail(e: FsError) {
    this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  close() { this.owner.unsubscribe(this); this.waiter?.reject(errs.flushed()); this.waiter = null; }
}

export class Broadcast {
  private cursors = new Set<Cursor>();
  private closed: FsError | null = null;
  constructor(private maxQueueBytes = STREAM_QUEUE_BYTES) {}

  get readers() { return this.cursors.size; }

  subscribe(): Cursor {
    const c = new Cursor(this, this.maxQueueBytes);
    if (this.closed) c.fail(this.closed);
    else this.cursors.add(c);
    return c;
  }
  unsubscribe(c: Cursor) { this.cursors.delete(c); }

  /** Publish one event line (a trailing newline is added when missing). */
  publish(line: string) {
    if (this.cursors.size === 0) return;
    const b = Buffer.from(line.endsWith("\n") ? line : line + "\n", "utf8");
    for (const c of this.cursors) c.push(b);
  }

  /** End the stream: pending and later reads fail with `err`. */
  close(err: FsError) {
    this.closed = err;
    for (const c of this.cursors) c.fail(err);
    this.cursors.clear();
  }
}

/** The read side of one open stream, with the follow-up rule. */
export class StreamReader {
  private last: { offset: number; count: number; n: number } | null = null;
  constructor(private cursor: Cursor) {}

  read(r: ReadReq): Buffer | Promise<Buffer> {
    // A zero-count read can never be satisfied by a whole line: answer it now, not never.
    if (r.count <= 0) return EMPTY;
    const last = this.last;
    if (last && last.n > 0 && last.n < last.count) {
      const continues = r.offset === last.offset + last.n && r.count < last.count;
      const kernelFull = r.count === last.count && r.count === r.msize - IOHDRSZ && r.msize > 8216;
      if (continues || kernelFull) {
        this.last = { offset: r.offset, count: r.count, n: 0 };
        return EMPTY;
      }
    }
    this.last = null;
    const got = this.cursor.read(r.count, r.signal);
    const note = (b: Buffer) => { this.last = { offset: r.offset, count: r.count, n: b.length }; return b; };
    return got instanceof Promise ? got.then(note) : note(got);
  }
  close() { this.cursor.close(); }
}

/** A stream file: every open reads the broadcast from the moment of opening. */
export class StreamFile extends Node {
  readonly isDir = false;
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
