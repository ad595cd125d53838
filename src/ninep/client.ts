// The 9P client: one connection, many outstanding requests.
//
// It speaks 9P2000.L (the default), 9P2000.u and 9P2000, accepts a server's
// downgrade in Rversion, pipelines requests (a tag per outstanding request,
// replies matched by tag), allocates fids, and cancels a request with Tflush
// when its AbortSignal fires: the request settles only when Rflush (the
// request is abandoned) or the original reply (it completed) arrives, as
// flush(5) requires. Used by the pi9 CLI, the FUSE shim, federation and tests.

import os from "node:os";
import type { Duplex } from "node:stream";
import util from "node:util";
import { decode, decodeDirents, decodeStats, encode, Msg, Qid, Stat } from "./codec.js";
import { FrameBuffer } from "./frames.js";
import {
  Dialect, DMAPPEND, DMDIR, E, IOHDRSZ, L_O_APPEND, L_O_RDWR, L_O_TRUNC, L_O_WRONLY, MAX_MSIZE, MAXWELEM, MIN_MSIZE,
  MsgName, MT, NOFID, NONUNAME, NOTAG, OAPPEND, OREAD, ORDWR, OTRUNC, OWRITE, P9_GETATTR_BASIC, QTAPPEND, QTDIR, S_IFDIR,
} from "./constants.js";
import { Addr, formatAddr, parseAddr } from "../lib/addr.js";
import { dial } from "./transport.js";

export interface ClientOptions {
  /** Dialect to ask for; the server may answer with an older one. Default 9P2000.L. */
  dialect?: Dialect;
  /** msize to ask for (the server may lower it). Default 1 MiB. */
  msize?: number;
  /** User name for Tauth/Tattach. Default: the local user name. */
  uname?: string;
  /** Attach name: the subtree to attach (`/mnt/xenith`), default the whole tree. */
  aname?: string;
  /** Token for a server that requires one. Sent as aname prefix `token=<t>`, or through Tauth with `auth`. */
  token?: string;
  /** Present the token by Tauth (write it to the auth fid) instead of the attach name. */
  auth?: boolean;
  /** Milliseconds to wait for the connection to be established. */
  dialTimeoutMs?: number;
}

/** An error answered by the server (or raised by the client about a request). */
export class NinepError extends Error {
  constructor(
    message: string,
    /** What the request was about: a path, or an address for connection errors. */
    readonly subject: string,
    /** The server's words (9P2000, .u) or the errno's text (.L). */
    readonly serverMessage: string,
    /** errno, when known (.u and .L carry one). */
    readonly errno?: number,
    /** errno name (`ENOENT`), when known. */
    readonly code?: string,
  ) { super(message); }
  override name = "NinepError";
}

/** The connection ended (or never worked); every pending request rejects with this. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
}

/** A request cancelled by its AbortSignal (the server answered Rflush). */
export class AbortError extends Error {
  override name = "AbortError";
  readonly code = "ABORT_ERR";
}

/** A file's attributes, the same whatever the dialect. */
export interface FileInfo {
  name: string;
  /** Length in bytes (0 for directories and streams). */
  size: number;
  /** Plan 9 mode: permission bits | DMDIR | DMAPPEND. */
  mode: number;
  /** Permission bits alone (mode & 0o777). */
  perm: number;
  isDir: boolean;
  mtime: Date;
  atime: Date;
  qid: Qid;
  uid: string;
  gid: string;
  muid: string;
  /** Kernel type and device number (always 0 from pi9). */
  type: number;
  dev: number;
}

/** Open modes: "r", "w", "rw", or a 9P2000 mode number (OREAD|OTRUNC…). */
export type OpenMode = "r" | "w" | "rw" | number;
export interface OpenOptions { truncate?: boolean; append?: boolean; signal?: AbortSignal }

/** A fid held by this client. Clunk it (or close the client) when done. */
export class Fid {
  isOpen = false;
  /** The largest read or write count this fid accepts (iounit or msize-24). */
  iounit = 0;
  clunked = false;
  constructor(readonly client: Client, readonly num: number, public path: string, public qid: Qid) {}
  get isDir() { return (this.qid.type & QTDIR) !== 0; }
  read(offset: number, count: number, signal?: AbortSignal) { return this.client.read(this, offset, count, signal); }
  write(offset: number, data: Uint8Array | string, signal?: AbortSignal) { return this.client.write(this, offset, data, signal); }
  stat() { return this.client.fstat(this); }
  clunk() { return this.client.clunk(this); }
}

interface Pending {
  type: MsgName;
  subject: string;
  resolve: (m: Msg) => void;
  reject: (e: Error) => void;
  /** Set once a Tflush for this tag has been sent. */
  flushing: boolean;
}

const ERRNO_TEXT = new Map<number, string>();
const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(os.constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);
let SYSTEM_ERRORS: Map<number, [string, string]> | null = null;

/** `ENOENT`, `EACCES`… for an errno from the wire (Linux numbering). */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? (Object.entries(E).find(([, v]) => v === errno)?.[0]) ?? `errno ${errno}`;
}

/** A readable text for an errno: `no such file or directory (ENOENT)`. */
export function errnoMessage(errno: number): string {
  const cached = ERRNO_TEXT.get(errno);
  if (cached) return cached;
  SYSTEM_ERRORS ??= util.getSystemErrorMap();
  const name = errnoName(errno);
  const text = SYSTEM_ERRORS.get(-errno)?.[1];
  const msg = text ? `${text} (${name})` : name;
  ERRNO_TEXT.set(errno, msg);
  return msg;
}

/** Split a path into walk names; "" and "." elements go away. */
export function splitPath(p: string): string[] {
  return p.split("/").filter((s) => s !== "" && s !== ".");
}

const DIALECT_RANK: Record<Dialect, number> = { "9P2000": 0, "9P2000.u": 1, "9P2000.L": 2 };
const STREAM_READ_CAP = 65536;

/**
 * The count to use for sequential reads at a given msize. It is never
 * msize-24 when msize > 8216: pi9 (following the Linux kernel client's
 * habits) answers such a repeated read right after a short read with 0 bytes
 * at once, which a one-Tread-per-read client would take as end of file.
 */
export function streamCount(msize: number): number {
  let c = Math.min(msize - IOHDRSZ, STREAM_READ_CAP);
  if (msize > 8216 && c === msize - IOHDRSZ) c = Math.max(4096, Math.floor((c - 1) / 4096) * 4096);
  return c;
}

export class Client {
  dialect: Dialect = "9P2000.L";
  msize = 0;
  /** The attach root. */
  root!: Fid;
  readonly label: string;
  private pending = new Map<number, Pending>();
  /** Tags reserved: sent and unanswered, or about to be sent. */
  private usedTags = new Set<number>();
  private nextTag = 0;
  private tagWaiters: (() => void)[] = [];
  private nextFid = 1;
  private freeFids: number[] = [];
  private frames = new FrameBuffer();
  private closedWith: Error | null = null;
  private closedPromise: Promise<void>;
  private versionWaiter: { resolve: (m: Msg) => void; reject: (e: Error) => void } | null = null;

  private constructor(private stream: Duplex, label: string) {
    this.label = label;
    stream.on("data", (b: Buffer) => this.onData(b));
    stream.on("error", (e: NodeJS.ErrnoException) => {
      // A server that exits with our request unread resets the connection
      // rather than closing it: to a person both mean the server went away.
      const gone = e.code === "ECONNRESET" || e.code === "EPIPE";
      this.shutdown(new ConnectionError(`${label}: ${gone ? "connection closed by the server" : e.message}`));
    });
    this.closedPromise = new Promise((resolve) => {
      stream.once("close", () => { this.shutdown(new ConnectionError(`${label}: connection closed`)); resolve(); });
    });
    stream.on("end", () => { this.shutdown(new ConnectionError(`${label}: connection closed by the server`)); stream.destroy(); });
  }

  /** Dial `addr` (a dial string, host:port, a socket path, or an Addr), negotiate the version and attach. */
  static async connect(addr: string | Addr, opts: ClientOptions = {}): Promise<Client> {
    const a = typeof addr === "string" ? parseAddr(addr) : addr;
    const sock = await dial(a, opts.dialTimeoutMs);
    return Client.fromStream(sock, opts, formatAddr(a));
  }

  /** Speak 9P over an already connected stream (a socket, a child's stdio). */
  static async fromStream(stream: Duplex, opts: ClientOptions = {}, label = "9P connection"): Promise<Client> {
    const c = new Client(stream, label);
    try {
      await c.version(opts.dialect ?? "9P2000.L", opts.msize ?? MAX_MSIZE);
      await c.attach(opts);
    } catch (e) {
      c.stream.destroy();
      throw e;
    }
    return c;
  }

  /** The count `readAll`, `readStream` and `pi9 cat` use for each Tread. */
  get readCount() { return streamCount(this.msize); }
  get closed() { return this.closedWith !== null; }

  // ---- wire ----------------------------------------------------------------

  private onData(b: Buffer) {
    if (this.closedWith) return;
    this.frames.push(b);
    while (!this.closedWith) {
      let frame: Buffer | null;
      try { frame = this.frames.next(this.msize || MAX_MSIZE); }
      catch (e) { this.protocolError(`server sent a ${(e as Error).message}`); return; }
      if (!frame) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer) {
    let m: Msg;
    try {
      m = decode(frame, this.dialect);
    } catch (e) {
      this.protocolError(`undecodable reply: ${(e as Error).message}`);
      return;
    }
    if (m.tag === NOTAG) {
      const w = this.versionWaiter;
      this.versionWaiter = null;
      if (w) w.resolve(m); else this.protocolError(`unexpected ${m.type} with NOTAG`);
      return;
    }
    const p = this.pending.get(m.tag);
    if (!p) return; // a reply to a tag we no longer wait for: nothing to do
    this.releaseTag(m.tag);
    if (m.type === "Rerror" || m.type === "Rlerror") { p.reject(this.serverError(m, p.subject)); return; }
    if (MT[m.type] !== MT[p.type] + 1) {
      p.reject(new NinepError(`${p.subject}: protocol error: ${m.type} in reply to ${p.type}`, p.subject, `${m.type} in reply to ${p.type}`));
      return;
    }
    p.resolve(m);
  }

  private serverError(m: Msg, subject: string): NinepError {
    if (m.type === "Rlerror") {
      const text = errnoMessage(m.ecode);
      return new NinepError(`${subject}: ${text}`, subject, text, m.ecode, errnoName(m.ecode));
    }
    const errno: number | undefined = m.errno !== undefined && m.errno !== 0 && m.errno !== 0xffffffff ? m.errno : undefined;
    return new NinepError(`${subject}: ${m.ename}`, subject, m.ename, errno, errno !== undefined ? errnoName(errno) : undefined);
  }

  private protocolError(why: string) {
    this.shutdown(new ConnectionError(`${this.label}: protocol error: ${why}`));
    this.stream.destroy();
  }

  private shutdown(e: Error) {
    if (this.closedWith) return;
    this.closedWith = e;
    this.frames.clear();
    const all = [...this.pending.values()];
    this.pending.clear();
    this.usedTags.clear();
    for (const p of all) p.reject(new ConnectionError(`${p.subject}: ${e.message}`));
    this.versionWaiter?.reject(e);
    this.versionWaiter = null;
    const waiters = this.tagWaiters;
    this.tagWaiters = [];
    for (const w of waiters) w();
  }

  /** Reserve a free tag at once (tags are 0..65534; NOTAG is Tversion's), or null when all are in use. */
  private tryAllocTag(): number | null {
    if (this.usedTags.size >= NOTAG) return null;
    for (;;) {
      const t = this.nextTag;
      this.nextTag = (t + 1) % NOTAG;
      if (!this.usedTags.has(t)) { this.usedTags.add(t); return t; }
    }
  }

  private async allocTag(subject: string, signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (this.closedWith) throw new ConnectionError(`${subject}: ${this.closedWith.message}`);
      const t = this.tryAllocTag();
      if (t !== null) return t;
      await new Promise<void>((r) => this.tagWaiters.push(r));
      if (signal?.aborted) {
        this.tagWaiters.shift()?.(); // pass the wake-up on: a tag may be free
        throw new AbortError(`${subject}: interrupted`);
      }
    }
  }

  private releaseTag(tag: number) {
    this.pending.delete(tag);
    if (this.usedTags.delete(tag)) this.tagWaiters.shift()?.();
  }

  /**
   * Send one request and wait for its reply. With a signal, an abort sends
   * Tflush; the promise then settles with the original reply if it comes
   * first, or rejects with AbortError when Rflush comes.
   */
  async rpc(m: { type: MsgName; [field: string]: any }, subject: string, signal?: AbortSignal): Promise<Msg> {
    if (signal?.aborted) throw new AbortError(`${subject}: interrupted`);
    // The tag is reserved synchronously when one is free, so concurrent calls never share one.
    const tag = this.tryAllocTag() ?? await this.allocTag(subject, signal);
    let frame: Buffer;
    try {
      if (this.closedWith) throw new ConnectionError(`${subject}: ${this.closedWith.message}`);
      if (signal?.aborted) throw new AbortError(`${subject}: interrupted`);
      try {
        frame = encode({ ...m, tag } as Msg, this.dialect);
      } catch (e) {
        throw new NinepError(`${subject}: cannot encode ${m.type}: ${(e as Error).message}`, subject, (e as Error).message);
      }
      if (frame.length > this.msize) throw new NinepError(`${subject}: ${m.type} of ${frame.length} bytes exceeds msize ${this.msize}`, subject, "message too long");
    } catch (e) {
      this.releaseTag(tag);
      throw e;
    }
    return new Promise<Msg>((resolve, reject) => {
      let onAbort: (() => void) | null = null;
      const done = () => { if (onAbort) signal!.removeEventListener("abort", onAbort); };
      const p: Pending = {
        type: m.type, subject, flushing: false,
        resolve: (r) => { done(); resolve(r); },
        reject: (e) => { done(); reject(e); },
      };
      this.pending.set(tag, p);
      if (signal) {
        onAbort = () => {
          if (p.flushing || this.pending.get(tag) !== p) return;
          p.flushing = true;
          this.rpc({ type: "Tflush", oldtag: tag }, subject).then(
            () => {
              // Rflush: the server will never answer the old tag.
              if (this.pending.get(tag) === p) { this.releaseTag(tag); p.reject(new AbortError(`${subject}: interrupted`)); }
            },
            (e: Error) => { if (this.pending.get(tag) === p) { this.releaseTag(tag); p.reject(e); } },
          );
        };
        signal.addEventListener("abort", onAbort, { once: true });
      }
      this.stream.write(frame);
    });
  }

  private async version(want: Dialect, msize: number) {
    if (!(msize >= MIN_MSIZE)) throw new ConnectionError(`${this.label}: msize ${msize} is below ${MIN_MSIZE}`);
    msize = Math.min(msize, MAX_MSIZE);
    this.msize = msize;
    // Until the reply, errors come in 9P2000 form (no dialect yet).
    this.dialect = "9P2000";
    const reply = new Promise<Msg>((resolve, reject) => { this.versionWaiter = { resolve, reject }; });
    this.stream.write(encode({ type: "Tversion", tag: NOTAG, msize, version: want }, "9P2000"));
    const r = await reply;
    if (r.type === "Rerror" || r.type === "Rlerror") throw new ConnectionError(`${this.label}: version: ${r.type === "Rerror" ? r.ename : errnoMessage(r.ecode)}`);
    if (r.type !== "Rversion") throw new ConnectionError(`${this.label}: protocol error: ${r.type} in reply to Tversion`);
    const got = r.version as string;
    if (got === "unknown") throw new ConnectionError(`${this.label}: the server does not speak ${want}`);
    if (!(got in DIALECT_RANK) || DIALECT_RANK[got as Dialect] > DIALECT_RANK[want]) {
      throw new ConnectionError(`${this.label}: the server answered version ${got} to ${want}`);
    }
    if (!(r.msize >= MIN_MSIZE) || r.msize > msize) throw new ConnectionError(`${this.label}: the server answered msize ${r.msize} to ${msize}`);
    this.dialect = got as Dialect;
    this.msize = r.msize;
  }

  private allocFid(): number {
    return this.freeFids.pop() ?? this.nextFid++;
  }

  private freeFid(n: number) { this.freeFids.push(n); }

  private async attach(o: ClientOptions) {
    const uname = o.uname ?? safeUser();
    let aname = o.aname ?? "";
    let afid = NOFID;
    const what = `attach ${aname || "/"}`;
    if (o.token !== undefined && !o.auth) {
      if (/[\s/]/.test(o.token) || o.token === "") throw new ConnectionError(`${this.label}: ${what}: the token cannot go in the attach name (it is empty or holds / or white space); use Tauth`);
      aname = aname ? `token=${o.token} ${aname}` : `token=${o.token}`;
    }
    const n_uname = process.getuid?.() ?? NONUNAME;
    if (o.auth) {
      const num = this.allocFid();
      try {
        await this.rpc({ type: "Tauth", afid: num, uname, aname, n_uname }, `${this.label}: ${what}`);
        afid = num;
      } catch (e) {
        this.freeFid(num);
        if (!(e instanceof NinepError) || e.errno !== E.ENOENT && !/not required/.test(e.serverMessage)) throw this.attachError(e, what, o);
      }
      if (afid !== NOFID) {
        try {
          await this.rpc({ type: "Twrite", fid: afid, offset: 0, data: Buffer.from(o.token ?? "") }, `${this.label}: ${what}`);
        } catch (e) {
          await this.clunkNum(afid, what).catch(() => {});
          throw this.attachError(e, what, o);
        }
      }
    }
    const fid = this.allocFid();
    try {
      const r = await this.rpc({ type: "Tattach", fid, afid, uname, aname, n_uname }, `${this.label}: ${what}`);
      this.root = new Fid(this, fid, "/", r.qid);
    } catch (e) {
      this.freeFid(fid);
      throw this.attachError(e, what, o);
    } finally {
      if (afid !== NOFID) await this.clunkNum(afid, what).catch(() => {});
    }
  }

  private attachError(e: unknown, what: string, o: ClientOptions): Error {
    if (e instanceof NinepError && e.code === "EACCES" && this.dialect === "9P2000.L") {
      // .L carries only the errno; at attach, pi9 refuses for one reason.
      const why = o.token !== undefined ? "authentication failed: wrong token?" : "authentication required: set PI9_TOKEN or use --token-file";
      return new NinepError(`${e.message} — ${why}`, e.subject, e.serverMessage, e.errno, e.code);
    }
    return e as Error;
  }

  // ---- fids and paths ------------------------------------------------------

  /** Walk `names` from the fid `from` to a new fid. */
  async walkFrom(from: Fid, names: string[], subject = names.join("/")): Promise<Fid> {
    const num = this.allocFid();
    let created = false;
    let qid = from.qid;
    try {
      let i = 0;
      do {
        const chunk = names.slice(i, i + MAXWELEM);
        const r = await this.rpc({ type: "Twalk", fid: created ? num : from.num, newfid: num, wnames: chunk }, subject);
        const qids: Qid[] = r.wqids;
        if (qids.length < chunk.length) {
          const last = qids.length ? qids[qids.length - 1] : qid;
          const why = (last.type & QTDIR) ? `file does not exist: ${chunk[qids.length]}` : `not a directory: ${names.slice(0, i + qids.length).join("/")}`;
          throw new NinepError(`${subject}: ${why}`, subject, why, (last.type & QTDIR) ? E.ENOENT : E.ENOTDIR, (last.type & QTDIR) ? "ENOENT" : "ENOTDIR");
        }
        created = true;
        if (qids.length) qid = qids[qids.length - 1];
        i += chunk.length;
      } while (i < names.length);
    } catch (e) {
      if (created) await this.clunkNum(num, subject).catch(() => {}); else this.freeFid(num);
      throw e;
    }
    const base = from.path === "/" ? "" : from.path;
    return new Fid(this, num, names.length ? `${base}/${names.join("/")}` : from.path, qid);
  }

  /** A new fid for `path` (relative to the attach root), not open. */
  walk(path: string): Promise<Fid> {
    return this.walkFrom(this.root, splitPath(path), displayPath(path));
  }

  private openFlags(mode: OpenMode, o: OpenOptions): { mode9: number; flagsL: number } {
    let mode9: number;
    if (typeof mode === "number") mode9 = mode;
    else mode9 = mode === "r" ? OREAD : mode === "w" ? OWRITE : ORDWR;
    if (o.truncate) mode9 |= OTRUNC;
    if (o.append) mode9 |= OAPPEND;
    const acc = mode9 & 3;
    let flagsL = acc === OWRITE ? L_O_WRONLY : acc === ORDWR ? L_O_RDWR : 0;
    if (mode9 & OTRUNC) flagsL |= L_O_TRUNC;
    if (mode9 & OAPPEND) flagsL |= L_O_APPEND;
    // Plain 9P2000 has no append bit: the caller writes at the end instead.
    if (this.dialect === "9P2000") mode9 &= ~OAPPEND;
    return { mode9, flagsL };
  }

  /** Open a path (or a walked, unopened fid) for reading and/or writing. */
  async open(target: string | Fid, mode: OpenMode = "r", o: OpenOptions = {}): Promise<Fid> {
    const fid = typeof target === "string" ? await this.walk(target) : target;
    const { mode9, flagsL } = this.openFlags(mode, o);
    try {
      const r = this.dialect === "9P2000.L"
        ? await this.rpc({ type: "Tlopen", fid: fid.num, flags: flagsL }, fid.path, o.signal)
        : await this.rpc({ type: "Topen", fid: fid.num, mode: mode9 }, fid.path, o.signal);
      fid.qid = r.qid;
      fid.isOpen = true;
      fid.iounit = r.iounit > 0 && r.iounit <= this.msize - IOHDRSZ ? r.iounit : this.msize - IOHDRSZ;
    } catch (e) {
      if (typeof target === "string") await fid.clunk().catch(() => {});
      throw e;
    }
    return fid;
  }

  /** Create `path` (its parent must exist) and return it open. */
  async create(path: string, o: { perm?: number; mode?: OpenMode; signal?: AbortSignal } = {}): Promise<Fid> {
    const names = splitPath(path);
    if (names.length === 0) throw new NinepError(`${displayPath(path)}: cannot create the root`, displayPath(path), "cannot create the root");
    const name = names.pop()!;
    const fid = await this.walkFrom(this.root, names, displayPath(path));
    const { mode9, flagsL } = this.openFlags(o.mode ?? "rw", {});
    const perm = o.perm ?? 0o644;
    try {
      const r = this.dialect === "9P2000.L"
        ? await this.rpc({ type: "Tlcreate", fid: fid.num, name, flags: flagsL, mode: perm & 0o7777, gid: process.getgid?.() ?? 0 }, displayPath(path), o.signal)
        : await this.rpc({ type: "Tcreate", fid: fid.num, name, perm, mode: mode9, extension: "" }, displayPath(path), o.signal);
      fid.qid = r.qid;
      fid.path = displayPath(path);
      fid.isOpen = true;
      fid.iounit = r.iounit > 0 && r.iounit <= this.msize - IOHDRSZ ? r.iounit : this.msize - IOHDRSZ;
      return fid;
    } catch (e) {
      await fid.clunk().catch(() => {});
      throw e;
    }
  }

  /** Make a directory. */
  async mkdir(path: string, perm = 0o755): Promise<void> {
    if (this.dialect !== "9P2000.L") {
      const f = await this.create(path, { perm: (perm & 0o777) | DMDIR, mode: "r" });
      await f.clunk();
      return;
    }
    const names = splitPath(path);
    const name = names.pop();
    if (!name) throw new NinepError(`${displayPath(path)}: cannot create the root`, displayPath(path), "cannot create the root");
    const dir = await this.walkFrom(this.root, names, displayPath(path));
    try {
      await this.rpc({ type: "Tmkdir", dfid: dir.num, name, mode: perm & 0o7777, gid: process.getgid?.() ?? 0 }, displayPath(path));
    } finally {
      await dir.clunk().catch(() => {});
    }
  }

  /** Remove a file or directory. */
  async remove(path: string): Promise<void> {
    const fid = await this.walk(path);
    await this.removeFid(fid);
  }

  /** Tremove: the fid is clunked whether or not the removal succeeds. */
  async removeFid(fid: Fid): Promise<void> {
    if (fid.clunked) throw new NinepError(`${fid.path}: fid already clunked`, fid.path, "fid already clunked");
    fid.clunked = true;
    try {
      await this.rpc({ type: "Tremove", fid: fid.num }, fid.path);
    } finally {
      if (!this.closedWith) this.freeFid(fid.num);
    }
  }

  /** Release a fid. */
  async clunk(fid: Fid): Promise<void> {
    if (fid.clunked) return;
    fid.clunked = true;
    await this.clunkNum(fid.num, fid.path);
  }

  private async clunkNum(num: number, subject: string) {
    try {
      await this.rpc({ type: "Tclunk", fid: num }, subject);
      this.freeFid(num);
    } catch (e) {
      // The server drops the fid even when it answers an error; a dead connection frees everything.
      if (!(e instanceof ConnectionError)) this.freeFid(num);
      throw e;
    }
  }

  // ---- I/O -------------------------------------------------------------------

  /** One Tread (count is capped at msize-24). Resolves with the bytes; 0 bytes is end of file. */
  async read(fid: Fid, offset: number, count: number, signal?: AbortSignal): Promise<Buffer> {
    count = Math.max(0, Math.min(count, this.msize - IOHDRSZ));
    const r = await this.rpc({ type: "Tread", fid: fid.num, offset, count }, fid.path, signal);
    return r.data as Buffer;
  }

  /** Write all of `data` at `offset`, in as few Twrites as fit the fid's iounit. Returns bytes written. */
  async write(fid: Fid, offset: number, data: Uint8Array | string, signal?: AbortSignal): Promise<number> {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const max = fid.iounit || this.msize - IOHDRSZ;
    if (buf.length === 0) {
      await this.rpc({ type: "Twrite", fid: fid.num, offset, data: buf }, fid.path, signal);
      return 0;
    }
    let done = 0;
    while (done < buf.length) {
      const piece = buf.subarray(done, done + max);
      const r = await this.rpc({ type: "Twrite", fid: fid.num, offset: offset + done, data: piece }, fid.path, signal);
      const n: number = r.count;
      if (!(n > 0) || n > piece.length) throw new NinepError(`${fid.path}: short write (${n} of ${piece.length} bytes)`, fid.path, "short write");
      done += n;
    }
    return done;
  }

  /**
   * Read a file from `offset` to end of file (a 0-byte read), yielding each
   * chunk as it arrives: on a stream file it yields events as they come and
   * ends only when the signal aborts or the server ends the stream.
   */
  async *readStream(target: string | Fid, o: { signal?: AbortSignal; offset?: number } = {}): AsyncGenerator<Buffer> {
    const own = typeof target === "string";
    const fid = own ? await this.open(target, "r", { signal: o.signal }) : target;
    try {
      const count = Math.min(fid.iounit || this.readCount, this.readCount);
      let off = o.offset ?? 0;
      for (;;) {
        const b = await this.read(fid, off, count, o.signal);
        if (b.length === 0) return;
        off += b.length;
        yield b;
      }
    } finally {
      if (own) await fid.clunk().catch(() => {});
    }
  }

  /** The whole content of a file. */
  async readAll(path: string, o: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const b of this.readStream(path, o)) parts.push(b);
    return Buffer.concat(parts);
  }

  /**
   * Write a file: open for writing (truncating, or appending with `append`)
   * and write `data`. Returns bytes written.
   */
  async writeFile(path: string, data: Uint8Array | string, o: { append?: boolean; signal?: AbortSignal } = {}): Promise<number> {
    const fid = await this.open(path, "w", { truncate: !o.append, append: o.append, signal: o.signal });
    try {
      // 9P2000 has no append mode: write at the end, as Linux does for >>.
      const offset = o.append && this.dialect !== "9P2000.L" ? (await this.fstat(fid)).size : 0;
      return await this.write(fid, offset, data, o.signal);
    } finally {
      await fid.clunk().catch(() => {});
    }
  }

  // ---- attributes --------------------------------------------------------------

  /** Attributes of a path. */
  async stat(path: string): Promise<FileInfo> {
    const fid = await this.walk(path);
    try {
      return await this.fstat(fid);
    } finally {
      await fid.clunk().catch(() => {});
    }
  }

  /** Attributes of a fid. */
  async fstat(fid: Fid): Promise<FileInfo> {
    if (this.dialect === "9P2000.L") {
      const r = await this.rpc({ type: "Tgetattr", fid: fid.num, mask: P9_GETATTR_BASIC }, fid.path);
      return fromGetattr(r, baseName(fid.path));
    }
    const r = await this.rpc({ type: "Tstat", fid: fid.num }, fid.path);
    return fromStat(r.stat);
  }

  /** The entries of a directory (without . and ..), with their attributes. */
  async readdir(path: string): Promise<FileInfo[]> {
    const dir = await this.walk(path);
    try {
      const sub = dir.path;
      if (!dir.isDir) throw new NinepError(`${sub}: not a directory`, sub, "not a directory", E.ENOTDIR, "ENOTDIR");
      if (this.dialect !== "9P2000.L") {
        const f = await this.openClone(dir);
        try {
          const out: FileInfo[] = [];
          for (let off = 0; ;) {
            const b = await this.read(f, off, f.iounit);
            if (b.length === 0) break;
            off += b.length;
            for (const st of decodeStats(b, this.dialect)) out.push(fromStat(st));
          }
          return out;
        } finally {
          await f.clunk().catch(() => {});
        }
      }
      const names: string[] = [];
      const f = await this.openClone(dir);
      try {
        for (let off = 0; ;) {
          const r = await this.rpc({ type: "Treaddir", fid: f.num, offset: off, count: f.iounit }, sub);
          const ents = decodeDirents(r.data);
          if (ents.length === 0) break;
          for (const e of ents) if (e.name !== "." && e.name !== "..") names.push(e.name);
          off = ents[ents.length - 1].offset;
        }
      } finally {
        await f.clunk().catch(() => {});
      }
      // Attributes: walk and getattr every entry, all requests in flight together.
      const infos = await Promise.all(names.map(async (name) => {
        let e: Fid;
        try { e = await this.walkFrom(dir, [name], `${sub === "/" ? "" : sub}/${name}`); }
        catch (err) { if (err instanceof NinepError && err.errno === E.ENOENT) return null; throw err; }
        try { return await this.fstat(e); } finally { await e.clunk().catch(() => {}); }
      }));
      return infos.filter((x): x is FileInfo => x !== null);
    } finally {
      await dir.clunk().catch(() => {});
    }
  }

  /** A fresh fid for the same file as `fid`, opened for reading. */
  private async openClone(fid: Fid): Promise<Fid> {
    const c = await this.walkFrom(fid, [], fid.path);
    try {
      return await this.open(c, "r");
    } catch (e) {
      await c.clunk().catch(() => {});
      throw e;
    }
  }

  // ---- end -------------------------------------------------------------------

  /** Close the connection; pending requests reject. Resolves once the stream has closed. */
  async close(): Promise<void> {
    this.shutdown(new ConnectionError(`${this.label}: connection closed by the client`));
    this.stream.destroy();
    await this.closedPromise;
  }
}

function safeUser() {
  try { return os.userInfo().username || "none"; } catch { return process.env.USER || "none"; }
}

function displayPath(p: string) {
  const parts = splitPath(p);
  return "/" + parts.join("/");
}

function baseName(p: string) {
  const parts = splitPath(p);
  return parts.length ? parts[parts.length - 1] : "/";
}

function fromStat(st: Stat): FileInfo {
  return {
    name: st.name, size: st.length, mode: st.mode, perm: st.mode & 0o777, isDir: (st.mode & DMDIR) !== 0,
    mtime: new Date(st.mtime * 1000), atime: new Date(st.atime * 1000), qid: st.qid,
    uid: st.uid, gid: st.gid, muid: st.muid, type: st.type, dev: st.dev,
  };
}

function fromGetattr(r: Msg, name: string): FileInfo {
  const isDir = (r.mode & 0o170000) === S_IFDIR || (r.qid.type & QTDIR) !== 0;
  let mode = r.mode & 0o777;
  if (isDir) mode |= DMDIR;
  if (r.qid.type & QTAPPEND) mode |= DMAPPEND;
  return {
    name, size: r.size, mode, perm: r.mode & 0o777, isDir,
    mtime: new Date(r.mtime_sec * 1000 + Math.floor(r.mtime_nsec / 1e6)),
    atime: new Date(r.atime_sec * 1000 + Math.floor(r.atime_nsec / 1e6)),
    qid: r.qid, uid: String(r.uid), gid: String(r.gid), muid: "", type: 0, dev: 0,
  };
}
