// The 9P server: one Connection per transport stream. It speaks 9P2000,
// 9P2000.u and 9P2000.L over one file tree (src/fs), keeps a fid table and
// the outstanding tags of each connection, answers Tflush as plan9port lib9p
// does (cancel what can be cancelled; otherwise the reply first, then
// Rflush), and frees everything when the client goes away.

import type { Duplex } from "node:stream";
import { Ctx, Dir, Handle, Node, OpenFlags } from "../fs/node.js";
import { FsError } from "../fs/errors.js";
import { decode, DecodeError, encode, encodeStat, Msg, messageInDialect, Qid, rreadHeader, Stat, statLen, typeName, writeDirent, direntLen } from "./codec.js";
import {
  Dialect, DMDIR, E, IOHDRSZ, L_O_ACCMODE, L_O_APPEND, L_O_TRUNC, MAX_MSIZE, MAXWELEM, MIN_MSIZE, MT, NOFID,
  OAPPEND, OEXEC, ORCLOSE, ORDWR, OTRUNC, OWRITE, P9_LOCK_SUCCESS, P9_LOCK_TYPE_UNLCK,
  P9_SETATTR_ATIME, P9_SETATTR_ATIME_SET, P9_SETATTR_GID, P9_SETATTR_MODE, P9_SETATTR_MTIME, P9_SETATTR_MTIME_SET,
  P9_SETATTR_SIZE, P9_SETATTR_UID, QTAUTH,
} from "./constants.js";
import { FrameBuffer } from "./frames.js";
import { getattrOf, numericIds, PI9_FSTYPE, qidOf, statfsOf, statOf } from "./attrs.js";
import { StreamReadRule } from "./stream-rule.js";
import { Logger, nullLogger } from "../lib/log.js";
import { tokenMatches } from "../lib/token.js";

export { PI9_FSTYPE };

export interface ServerOptions {
  root: Dir;
  /** When set, every attach must present it (aname `token=<t>` or Tauth). */
  token?: string;
  maxMsize?: number;
  /** Fids one connection may hold. */
  maxFids?: number;
  /** Requests one connection may have outstanding before the server stops reading from it. */
  maxPending?: number;
  log?: Logger;
}

export const LIMITS = { maxMsize: MAX_MSIZE, maxFids: 16384, maxPending: 1024 };

interface Fid {
  node: Node;
  root: Dir; // the attach root: ".." stops here
  ctx: Ctx;
  handle: Handle | null;
  flags: OpenFlags | null;
  rclose: boolean;
  dirSnap: { entries: Buffer[]; offsets: number[] } | null; // 9P2000 directory read state
  ldirSnap: Node[] | null; // .L readdir snapshot
  /** The read history of an open stream file (stream-rule.ts). */
  streamRule: StreamReadRule | null;
  auth: { data: string } | null;
  num: number;
}

const EMPTY = Buffer.alloc(0);
/** Longest error string sent (bytes); Plan 9's ERRMAX is 128, Linux reads any length. */
const MAX_ENAME = 1024;

/** s cut to at most max bytes of UTF-8, on a character boundary, marked with "...". */
function clipUtf8(s: string, max: number): string {
  const b = Buffer.from(s, "utf8");
  if (b.length <= max) return s;
  let n = Math.max(0, max - 3);
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
  return b.toString("utf8", 0, n) + "...";
}

/** The node behind an auth fid: outside the tree, so an afid leads nowhere. */
class AuthNode extends Node {
  readonly isDir = false;
  constructor() { super("auth", 0o600); }
  open(): Handle { throw new FsError("EBADF", "cannot open an auth fid"); }
}
/** Bytes an auth fid accepts: a token, not a dump. */
const MAX_AUTH_BYTES = 4096;
const U64_MAX_APPROX = 1.8446744073709552e19;
const U32_MAX = 0xffffffff;

/**
 * One request while it is being handled. Its AbortSignal is made only when a
 * handler asks for it: most requests finish synchronously and never need
 * one, and an AbortController is the dearest object of a small request.
 * Tread and Twrite hand the request itself to the file as ReadReq/WriteReq.
 */
class Req {
  /** The session ended (teardown or Tversion): never answer it. */
  flushed = false;
  /** Tags of the Tflushes waiting for this request, in arrival order: each gets Rflush after it settles. */
  flushers: number[] | null = null;
  offset = 0;
  count = 0;
  data: Buffer = EMPTY;
  private ac: AbortController | null = null;
  get signal(): AbortSignal {
    if (!this.ac) { this.ac = new AbortController(); if (this.flushed) this.ac.abort(); }
    return this.ac.signal;
  }
  /** The session ended: never answer it, and tell whoever waits. */
  abort() { this.flushed = true; this.ac?.abort(); }
  /**
   * A Tflush arrived: tell whoever waits, but keep the request answerable.
   * A wait that honours the signal rejects with ECANCELED and only Rflush is
   * sent; work that cannot be cancelled finishes and its reply goes first.
   */
  cancel(flushTag: number) {
    (this.flushers ??= []).push(flushTag);
    if (this.ac) this.ac.abort(); else { this.ac = new AbortController(); this.ac.abort(); }
  }
}

/** The error a wait rejects with when its signal is aborted (errs.flushed()). */
function isCancellation(e: unknown): boolean {
  return e instanceof FsError && e.code === "ECANCELED";
}

/** Split an attach name into its token (`token=<t>` prefix) and subtree path. */
export function parseAname(aname: string): { token: string | null; path: string } {
  const m = /^token=([^/\s]*)\s*(.*)$/.exec(aname);
  if (m) return { token: m[1], path: m[2] };
  return { token: null, path: aname };
}

export class NinepServer {
  readonly connections = new Set<Connection>();
  readonly opts: Required<Omit<ServerOptions, "token">> & { token?: string };
  constructor(opts: ServerOptions) {
    this.opts = { maxMsize: LIMITS.maxMsize, maxFids: LIMITS.maxFids, maxPending: LIMITS.maxPending, log: nullLogger, ...opts };
  }
  serve(stream: Duplex, label = "conn"): Connection {
    const c = new Connection(this, stream, label);
    this.connections.add(c);
    stream.once("close", () => this.connections.delete(c));
    return c;
  }
  closeAll() { for (const c of this.connections) c.close("server shutting down"); }
}

export class Connection {
  dialect: Dialect | null = null;
  msize = 0;
  private fids = new Map<number, Fid>();
  private inflight = new Map<number, Req>();
  /** Tflush tags not yet answered, and the request each waits for. */
  private pendingFlush = new Map<number, Req>();
  private frames = new FrameBuffer();
  private closed = false;
  private pausedForWrite = false;
  private pausedForPending = false;
  private corked = false;
  private pumping = false;
  private readonly log: Logger;

  constructor(readonly server: NinepServer, readonly stream: Duplex, readonly label: string) {
    this.log = server.opts.log;
    stream.on("data", (b: Buffer) => this.onData(b));
    stream.on("drain", () => { this.pausedForWrite = false; this.maybeResume(); });
    stream.on("error", (e) => this.log.debug(`${label}: ${e.message}`));
    stream.on("close", () => this.teardown());
    stream.on("end", () => { this.teardown(); stream.end(); });
  }

  // ---- framing ----------------------------------------------------------

  private onData(b: Buffer) {
    if (this.closed) return;
    this.frames.push(b);
    this.pump();
  }

  /**
   * Handle the whole frames buffered, but only while the connection is not
   * paused: one socket chunk holds thousands of small requests, and each may
   * produce up to msize bytes of reply, so pausing the socket alone would
   * still answer the whole chunk. What is left waits in `frames` (at most one
   * chunk, since the socket is paused) until maybeResume.
   */
  private pump() {
    if (this.pumping) return; // re-entered from a handler (a Tflush resuming): the outer loop goes on
    this.pumping = true;
    try { this.pumpFrames(); } finally { this.pumping = false; }
  }

  private pumpFrames() {
    if (!this.corked) { this.corked = true; this.stream.cork(); process.nextTick(() => { this.corked = false; this.stream.uncork(); }); }
    while (!this.closed && !this.pausedForWrite && !this.pausedForPending) {
      let frame: Buffer | null;
      try { frame = this.frames.next(this.msize || this.server.opts.maxMsize); }
      catch (e) { this.close((e as Error).message); return; }
      if (!frame) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer) {
    const d: Dialect = this.dialect ?? "9P2000";
    let m: Msg;
    try {
      m = decode(frame, d);
    } catch (e) {
      const de = e as DecodeError;
      if (de.tag !== undefined && de.msgType !== undefined && de.msgType % 2 === 0) {
        // The frame is intact but its body is not: answer that tag, keep serving.
        this.log.debug(`${this.label}: ${de.message}`);
        this.sendError(de.tag, new FsError("EPROTO", de.message));
        return;
      }
      this.close(de.message);
      return;
    }
    this.dispatch(m);
  }

  // ---- output ------------------------------------------------------------

  private send(buf: Buffer | Buffer[]) {
    if (this.closed) return;
    let ok = true;
    if (Array.isArray(buf)) for (const b of buf) ok = this.stream.write(b);
    else ok = this.stream.write(buf);
    if (!ok && !this.pausedForWrite) { this.pausedForWrite = true; this.stream.pause(); }
  }

  private reply(m: Msg) {
    const d = this.dialect ?? "9P2000";
    if (m.type === "Rread" || m.type === "Rreaddir") {
      const data: Buffer = m.data;
      this.send([rreadHeader(m.tag, data.length, MT[m.type]), data]);
    } else {
      let b: Buffer;
      try {
        b = encode(m, d);
      } catch (e) {
        // A reply the wire cannot carry must not take the process down.
        const why = `cannot encode ${m.type}: ${(e as Error).message}`;
        if (m.type === "Rerror" || m.type === "Rlerror") { this.close(why); return; }
        this.log.warn(`${this.label}: ${why}`);
        this.sendError(m.tag, new FsError("EIO", why));
        return;
      }
      this.send(b);
    }
  }

  private sendError(tag: number, e: unknown) {
    let fe: FsError;
    if (e instanceof FsError) fe = e;
    else {
      this.log.warn(`${this.label}: internal error: ${(e as Error)?.stack ?? e}`);
      fe = new FsError("EIO", `internal error: ${(e as Error)?.message ?? e}`);
    }
    const errno = E[fe.code] ?? E.EIO;
    if (this.dialect === "9P2000.L") this.reply({ type: "Rlerror", tag, ecode: errno });
    else {
      // Messages may quote what the client sent (a 64 KiB name): keep them readable and inside msize.
      const room = Math.min(MAX_ENAME, (this.msize || MIN_MSIZE) - 7 - 2 - 4);
      this.reply({ type: "Rerror", tag, ename: clipUtf8(fe.message, room), errno });
    }
  }

  private maybeResume() {
    if (this.closed) return;
    this.pausedForPending = this.inflight.size >= this.server.opts.maxPending;
    if (this.pausedForWrite || this.pausedForPending) return;
    this.pump(); // frames that arrived before the pause
    if (!this.closed && !this.pausedForWrite && !this.pausedForPending) this.stream.resume();
  }

  // ---- dispatch ------------------------------------------------------------

  private dispatch(m: Msg) {
    const tag = m.tag;
    if (m.type === "Tversion") { this.reply(this.version(m)); return; }
    if (m.type === "Tflush") { this.flush(tag, m.oldtag); return; }
    if (!this.dialect) { this.sendError(tag, new FsError("EPROTO", "version not negotiated: send Tversion first")); return; }
    if (MT[m.type] % 2 === 1 || !messageInDialect(m.type, this.dialect)) {
      this.sendError(tag, new FsError("EOPNOTSUPP", `${m.type} is not a request of ${this.dialect}`));
      return;
    }
    if (this.inflight.has(tag)) { this.close(`tag ${tag} reused while outstanding`); return; }
    const entry = new Req();
    let result: Msg | Promise<Msg>;
    try {
      result = this.handle(m, entry);
    } catch (e) {
      this.sendError(tag, e);
      return;
    }
    if (!(result instanceof Promise)) { this.reply(result); return; }
    this.inflight.set(tag, entry);
    if (this.inflight.size >= this.server.opts.maxPending && !this.pausedForPending) {
      this.pausedForPending = true;
      this.stream.pause();
    }
    result.then(
      (r) => { if (this.finish(tag, entry)) this.reply(r); this.flushed(entry); },
      (e) => {
        // Cancelled by a Tflush: Rflush alone says it never happened.
        if (this.finish(tag, entry) && !(entry.flushers && isCancellation(e))) this.sendError(tag, e);
        this.flushed(entry);
      },
    );
  }

  /** Retire a tag; false when the session ended (then it is never answered). */
  private finish(tag: number, entry: Req) {
    if (this.inflight.get(tag) === entry) this.inflight.delete(tag);
    if (this.pausedForPending) this.maybeResume();
    return !entry.flushed && !this.closed;
  }

  /** After a flushed request's own reply (or none), answer its Tflushes in order. */
  private flushed(entry: Req) {
    const tags = entry.flushers;
    if (!tags) return;
    entry.flushers = null;
    for (const t of tags) this.pendingFlush.delete(t);
    if (entry.flushed || this.closed) return;
    for (const t of tags) this.reply({ type: "Rflush", tag: t });
  }

  /**
   * Tflush, as plan9port lib9p: Rflush at once when oldtag is not
   * outstanding; otherwise cancel the request and answer the Tflush when it
   * settles — after its reply if it could not be cancelled, alone if it was.
   * Several Tflushes of one tag (or of a waiting Tflush) queue behind it.
   */
  private flush(tag: number, oldtag: number) {
    const p = this.inflight.get(oldtag) ?? this.pendingFlush.get(oldtag);
    if (!p || p.flushed) { this.reply({ type: "Rflush", tag }); return; }
    this.pendingFlush.set(tag, p);
    p.cancel(tag);
  }

  private version(m: Msg): Msg {
    // A new Tversion aborts everything outstanding and clunks every fid.
    this.resetSession();
    const v: string = m.version;
    let dialect: Dialect | null = null;
    if (v === "9P2000.L") dialect = "9P2000.L";
    else if (v === "9P2000.u") dialect = "9P2000.u";
    else if (v === "9P2000" || v.startsWith("9P2000.")) dialect = "9P2000";
    const msize = Math.min(m.msize, this.server.opts.maxMsize);
    if (!dialect || msize < MIN_MSIZE) {
      this.dialect = null;
      return { type: "Rversion", tag: m.tag, msize, version: "unknown" };
    }
    this.dialect = dialect;
    this.msize = msize;
    this.log.debug(`${this.label}: version ${dialect} msize ${msize}`);
    return { type: "Rversion", tag: m.tag, msize, version: dialect };
  }

  private resetSession() {
    for (const p of this.inflight.values()) p.abort();
    this.inflight.clear();
    this.pendingFlush.clear();
    for (const f of this.fids.values()) this.release(f);
    this.fids.clear();
  }

  private release(f: Fid) {
    if (f.handle) { try { f.handle.close(); } catch { /* closing must not fail */ } f.handle = null; }
  }

  close(why: string) {
    if (this.closed) return;
    this.log.info(`${this.label}: closing connection: ${why}`);
    this.teardown();
    this.stream.destroy();
  }

  private teardown() {
    if (this.closed) return;
    this.closed = true;
    this.resetSession();
    this.frames.clear();
  }

  // ---- requests --------------------------------------------------------------

  private fid(n: number): Fid {
    const f = this.fids.get(n);
    if (!f) throw new FsError("EBADF", `unknown fid ${n}`);
    return f;
  }

  private newFid(n: number, f: Omit<Fid, "handle" | "flags" | "rclose" | "dirSnap" | "ldirSnap" | "auth" | "num" | "streamRule"> & Partial<Fid>) {
    if (n === NOFID) throw new FsError("EBADF", "fid NOFID cannot be used");
    if (this.fids.has(n)) throw new FsError("EBADF", `fid ${n} is already in use`);
    if (this.fids.size >= this.server.opts.maxFids) throw new FsError("EMFILE", `too many fids on this connection (limit ${this.server.opts.maxFids})`);
    const fid: Fid = { handle: null, flags: null, rclose: false, dirSnap: null, ldirSnap: null, auth: null, streamRule: null, ...f, num: n };
    this.fids.set(n, fid);
    return fid;
  }

  private handle(m: Msg, req: Req): Msg | Promise<Msg> {
    const tag = m.tag;
    switch (m.type) {
      case "Tauth": return this.auth(m);
      case "Tattach": return this.attach(m);
      case "Twalk": return this.walk(m);
      case "Topen": return this.open(tag, this.fid(m.fid), this.openFlags9(m.mode), m.mode & ORCLOSE);
      case "Tlopen": return this.open(tag, this.fid(m.fid), this.openFlagsL(m.flags), 0);
      case "Tcreate": return this.create(m, false);
      case "Tlcreate": return this.create(m, true);
      case "Tread": return this.read(m, req);
      case "Treaddir": return this.readdir(m);
      case "Twrite": return this.write(m, req);
      case "Tclunk": {
        const f = this.fid(m.fid);
        this.fids.delete(m.fid);
        this.release(f);
        if (f.rclose) { try { f.node.remove(f.ctx); this.detach(f.node); } catch { /* best effort, as Plan 9 */ } }
        return { type: "Rclunk", tag };
      }
      case "Tremove": {
        const f = this.fid(m.fid);
        this.fids.delete(m.fid);
        this.release(f);
        f.node.remove(f.ctx);
        this.detach(f.node);
        return { type: "Rremove", tag };
      }
      case "Tstat": {
        const f = this.fid(m.fid);
        return { type: "Rstat", tag, stat: this.stat(f.node, f) };
      }
      case "Twstat": return this.wstat(m);
      case "Tgetattr": return this.getattr(m);
      case "Tsetattr": return this.setattr(m);
      case "Tstatfs":
        this.fid(m.fid);
        return { type: "Rstatfs", tag, ...statfsOf() };
      case "Txattrwalk":
        this.fid(m.fid);
        throw new FsError("ENODATA", `no extended attribute ${m.name}`);
      case "Txattrcreate":
        this.fid(m.fid);
        throw new FsError("EOPNOTSUPP", "extended attributes are not supported");
      case "Tfsync": this.fid(m.fid); return { type: "Rfsync", tag };
      case "Tlock": this.fid(m.fid); return { type: "Rlock", tag, status: P9_LOCK_SUCCESS };
      case "Tgetlock":
        this.fid(m.fid);
        return { type: "Rgetlock", tag, locktype: P9_LOCK_TYPE_UNLCK, start: m.start, length: m.length, proc_id: m.proc_id, client_id: m.client_id };
      case "Tmkdir": {
        const f = this.fid(m.dfid);
        const d = this.asDir(f.node);
        const n = d.create(m.name, m.mode & 0o777, true, { read: false, write: false, truncate: false, append: false }, f.ctx);
        return { type: "Rmkdir", tag, qid: qidOf(n.attr()) };
      }
      case "Tunlinkat": {
        const f = this.fid(m.dirfid);
        const d = this.asDir(f.node);
        const n = d.lookup(m.name);
        if (!n) throw new FsError("ENOENT", "file does not exist");
        n.remove(f.ctx);
        this.detach(n);
        return { type: "Runlinkat", tag };
      }
      case "Treadlink": this.fid(m.fid); throw new FsError("EINVAL", "not a symbolic link");
      case "Tsymlink": case "Tmknod": case "Tlink":
        throw new FsError("EPERM", `${m.type.slice(1)} is not supported by pi9`);
      case "Trename": case "Trenameat":
        throw new FsError("EPERM", "files of pi9 cannot be renamed");
      default:
        throw new FsError("EOPNOTSUPP", `${m.type} is not supported`);
    }
  }

  /** After a node left the tree, nothing else is needed: open handles keep working until clunked. */
  private detach(_n: Node) {}

  private asDir(n: Node): Dir {
    if (!(n instanceof Dir)) throw new FsError("ENOTDIR", "not a directory");
    return n;
  }

  private auth(m: Msg): Msg {
    const token = this.server.opts.token;
    if (!token) throw new FsError("ENOENT", "authentication not required");
    const f = this.newFid(m.afid, { node: new AuthNode(), root: this.server.opts.root, ctx: { uname: m.uname } });
    f.auth = { data: "" };
    return { type: "Rauth", tag: m.tag, aqid: { type: QTAUTH, version: 0, path: 0 } };
  }

  private attach(m: Msg): Msg {
    const { token, path } = parseAname(m.aname ?? "");
    const want = this.server.opts.token;
    if (want) {
      let ok = token !== null && tokenMatches(token, want);
      if (!ok && m.afid !== NOFID) {
        const af = this.fids.get(m.afid);
        ok = !!af?.auth && tokenMatches(af.auth.data.trim(), want);
      }
      if (!ok) throw new FsError("EACCES", token !== null || m.afid !== NOFID ? "authentication failed: wrong token" : "authentication required: attach with aname token=<t> or use Tauth");
    }
    let root: Node | undefined = this.server.opts.root;
    for (const part of path.split("/").filter(Boolean)) {
      root = root instanceof Dir ? root.lookup(part) : undefined;
      if (!root) break;
    }
    if (!(root instanceof Dir)) throw new FsError("ENOENT", `no such tree to attach: ${path}`);
    const uname = m.uname || (m.n_uname !== undefined && m.n_uname !== U32_MAX ? String(m.n_uname) : "none");
    this.newFid(m.fid, { node: root, root, ctx: { uname } });
    return { type: "Rattach", tag: m.tag, qid: qidOf(root.attr()) };
  }

  private walk(m: Msg): Msg {
    const f = this.fid(m.fid);
    const names: string[] = m.wnames;
    if (names.length > MAXWELEM) throw new FsError("EINVAL", `walk of ${names.length} names exceeds ${MAXWELEM}`);
    if (f.auth) throw new FsError("EBADF", "cannot walk an auth fid");
    // walk(5) forbids walking an open fid; diod and QEMU accept a walk from it
    // to a new fid (which starts unopened), and diodls -l relies on that.
    if (f.handle && m.newfid === m.fid) throw new FsError("EBADF", "cannot walk an open fid in place");
    if (m.newfid !== m.fid && this.fids.has(m.newfid)) throw new FsError("EBADF", `fid ${m.newfid} is already in use`);
    let n: Node = f.node;
    const qids: Qid[] = [];
    for (const name of names) {
      let next: Node | undefined;
      if (n.removed) next = undefined;
      else if (!(n instanceof Dir)) { if (qids.length === 0) throw new FsError("ENOTDIR", "not a directory"); break; }
      else if (name === "..") next = n === f.root ? n : (n.parent ?? n);
      else if (name === ".") next = n;
      else next = n.lookup(name);
      if (!next) {
        if (qids.length === 0) throw new FsError("ENOENT", "file does not exist");
        break;
      }
      n = next;
      qids.push(qidOf(n.attr()));
    }
    if (qids.length === names.length) {
      if (m.newfid === m.fid) { f.node = n; f.dirSnap = null; f.ldirSnap = null; }
      else this.newFid(m.newfid, { node: n, root: f.root, ctx: f.ctx });
    }
    return { type: "Rwalk", tag: m.tag, wqids: qids };
  }

  private openFlags9(mode: number): OpenFlags {
    const acc = mode & 3;
    return { read: acc === 0 || acc === ORDWR || acc === OEXEC, write: acc === OWRITE || acc === ORDWR, truncate: !!(mode & OTRUNC), append: !!(mode & OAPPEND) };
  }

  private openFlagsL(flags: number): OpenFlags {
    const acc = flags & L_O_ACCMODE;
    return { read: acc === 0 || acc === 2, write: acc === 1 || acc === 2, truncate: !!(flags & L_O_TRUNC), append: !!(flags & L_O_APPEND) };
  }

  private iounit() { return 0; }

  private open(tag: number, f: Fid, flags: OpenFlags, rclose: number): Msg | Promise<Msg> {
    if (f.handle) throw new FsError("EBADF", "fid is already open");
    if (f.auth) throw new FsError("EBADF", "cannot open an auth fid");
    if (f.node.removed) throw new FsError("ENOENT", "file has been removed");
    const type = this.dialect === "9P2000.L" ? "Rlopen" : "Ropen";
    const done = (h: Handle): Msg => {
      if (this.closed || this.fids.get(f.num) !== f) { h.close(); throw new FsError("EBADF", "fid was clunked during open"); }
      f.handle = h; f.flags = flags; f.rclose = !!rclose; f.streamRule = f.node.isStream ? new StreamReadRule() : null;
      return { type, tag, qid: qidOf(f.node.attr()), iounit: this.iounit() };
    };
    if (flags.truncate && !f.node.isDir) f.node.truncate(0, f.ctx);
    const h = f.node.open(flags, f.ctx);
    return h instanceof Promise ? h.then(done) : done(h);
  }

  private create(m: Msg, linux: boolean): Msg | Promise<Msg> {
    const f = this.fid(m.fid);
    if (f.handle) throw new FsError("EBADF", "fid is already open");
    const d = this.asDir(f.node);
    let flags: OpenFlags, isDir = false, perm: number;
    if (linux) { flags = this.openFlagsL(m.flags); perm = m.mode & 0o777; }
    else { flags = this.openFlags9(m.mode); isDir = !!(m.perm & DMDIR); perm = m.perm & 0o777; }
    if (m.name === "." || m.name === ".." || m.name.includes("/") || m.name === "") throw new FsError("EINVAL", `bad file name: ${m.name}`);
    if (d.lookup(m.name)) throw new FsError("EEXIST", `file already exists: ${m.name}`);
    const n = d.create(m.name, perm, isDir, flags, f.ctx);
    f.node = n;
    const type = linux ? "Rlcreate" : "Rcreate";
    const done = (h: Handle): Msg => { f.handle = h; f.flags = flags; f.streamRule = n.isStream ? new StreamReadRule() : null; f.rclose = !linux && !!(m.mode & ORCLOSE); return { type, tag: m.tag, qid: qidOf(n.attr()), iounit: this.iounit() }; };
    const h = n.open(flags, f.ctx);
    return h instanceof Promise ? h.then(done) : done(h);
  }

  private read(m: Msg, req: Req): Msg | Promise<Msg> {
    const f = this.fid(m.fid);
    if (f.auth) return { type: "Rread", tag: m.tag, data: EMPTY };
    if (!f.handle || !f.flags) throw new FsError("EBADF", "fid is not open");
    if (!f.flags.read) throw new FsError("EBADF", "fid is not open for reading");
    const count = Math.min(m.count, this.msize - IOHDRSZ);
    if (f.node.isDir) {
      if (this.dialect === "9P2000.L") throw new FsError("EOPNOTSUPP", "use Treaddir on 9P2000.L");
      return { type: "Rread", tag: m.tag, data: this.dirRead(f, m.offset, count) };
    }
    const rule = f.streamRule;
    if (rule?.continues(m.offset, count, this.msize)) {
      rule.answered(m.offset, count, 0);
      return { type: "Rread", tag: m.tag, data: EMPTY };
    }
    req.offset = m.offset; req.count = count;
    const done = (data: Buffer): Msg => {
      const d = data.length > count ? data.subarray(0, count) : data;
      rule?.answered(m.offset, count, d.length);
      return { type: "Rread", tag: m.tag, data: d };
    };
    let r: Buffer | Promise<Buffer>;
    try { r = f.handle.read(req); } catch (e) { rule?.forget(); throw e; }
    if (r instanceof Promise) return r.then(done, (e) => { rule?.forget(); throw e; });
    return done(r);
  }

  private dirRead(f: Fid, offset: number, count: number): Buffer {
    if (offset === 0 || !f.dirSnap) {
      const entries: Buffer[] = [], offsets: number[] = [];
      let off = 0;
      for (const n of (f.node as Dir).list()) {
        const b = encodeStat(this.stat(n, f), this.dialect!);
        entries.push(b); offsets.push(off); off += b.length;
      }
      f.dirSnap = { entries, offsets };
    }
    const { entries, offsets } = f.dirSnap;
    let i = offsets.indexOf(offset);
    if (i < 0) {
      const total = entries.length ? offsets[offsets.length - 1] + entries[entries.length - 1].length : 0;
      if (offset >= total) return EMPTY;
      throw new FsError("EINVAL", `bad offset ${offset} in directory read`);
    }
    const out: Buffer[] = [];
    let n = 0;
    for (; i < entries.length && n + entries[i].length <= count; i++) { out.push(entries[i]); n += entries[i].length; }
    if (out.length === 0 && i < entries.length) throw new FsError("EINVAL", "directory read count too small for one entry");
    return Buffer.concat(out, n);
  }

  private readdir(m: Msg): Msg {
    const f = this.fid(m.fid);
    if (!f.handle) throw new FsError("EBADF", "fid is not open");
    if (!f.node.isDir) throw new FsError("ENOTDIR", "not a directory");
    const d = f.node as Dir;
    if (m.offset === 0 || !f.ldirSnap) f.ldirSnap = d.list();
    const parent = d === f.root ? d : (d.parent ?? d);
    const all: { n: Node; name: string }[] = [{ n: d, name: "." }, { n: parent, name: ".." }, ...f.ldirSnap.map((n) => ({ n, name: n.name }))];
    const count = Math.min(m.count, this.msize - IOHDRSZ);
    const buf = Buffer.allocUnsafe(count);
    let off = 0;
    for (let i = m.offset; i < all.length; i++) {
      const { n, name } = all[i];
      if (off + direntLen(name) > count) break;
      const a = n.attr();
      off = writeDirent(buf, off, { qid: qidOf(a), offset: i + 1, type: a.isDir ? 4 : 8, name });
    }
    return { type: "Rreaddir", tag: m.tag, data: buf.subarray(0, off) };
  }

  private write(m: Msg, req: Req): Msg | Promise<Msg> {
    const f = this.fid(m.fid);
    const data: Buffer = m.data;
    if (f.auth) {
      if (f.auth.data.length + data.length > MAX_AUTH_BYTES) throw new FsError("EINVAL", `auth fid: a token is at most ${MAX_AUTH_BYTES} bytes`);
      f.auth.data += data.toString("utf8");
      return { type: "Rwrite", tag: m.tag, count: data.length };
    }
    if (!f.handle || !f.flags) throw new FsError("EBADF", "fid is not open");
    if (!f.flags.write) throw new FsError("EBADF", "fid is not open for writing");
    if (data.length === 0) return { type: "Rwrite", tag: m.tag, count: 0 };
    const check = (n: number): Msg => {
      // An Rwrite of 0 for a non-empty write makes Linux retry forever.
      if (!(n > 0)) throw new FsError("EIO", "write accepted no data");
      return { type: "Rwrite", tag: m.tag, count: Math.min(n, data.length) };
    };
    req.offset = m.offset; req.data = data;
    const r = f.handle.write(req);
    return r instanceof Promise ? r.then(check) : check(r);
  }

  private wstat(m: Msg): Msg {
    const f = this.fid(m.fid);
    const st: Stat = m.stat;
    const n = f.node;
    const a = n.attr();
    // "Don't touch" values: ~0 numbers and empty strings.
    if (st.name !== "" && st.name !== n.name && !(n === f.root && st.name === "/")) throw new FsError("EPERM", "files of pi9 cannot be renamed");
    if (st.mode !== U32_MAX && (st.mode & 0o777) !== (a.perm & 0o777)) throw new FsError("EPERM", "permissions of pi9 files are fixed");
    if (st.length < U64_MAX_APPROX) {
      if (n.isDir) throw new FsError("EISDIR", "cannot set the length of a directory");
      n.truncate(st.length, f.ctx);
    }
    const at = st.atime !== U32_MAX ? st.atime * 1000 : undefined;
    const mt = st.mtime !== U32_MAX ? st.mtime * 1000 : undefined;
    n.setTimes(at, mt);
    return { type: "Rwstat", tag: m.tag };
  }

  private getattr(m: Msg): Msg {
    const f = this.fid(m.fid);
    return { type: "Rgetattr", tag: m.tag, ...getattrOf(f.node.attr()) };
  }

  /** The stat of n as seen through f: the attach root of the whole tree is named "/". */
  private stat(n: Node, f: Fid): Stat {
    return statOf(n.attr(), n === f.root && !n.parent ? "/" : n.name, this.dialect ?? "9P2000");
  }

  private setattr(m: Msg): Msg {
    const f = this.fid(m.fid);
    const n = f.node;
    const a = n.attr();
    const v: number = m.valid;
    if (v & P9_SETATTR_MODE && (m.mode & 0o777) !== (a.perm & 0o777)) throw new FsError("EPERM", "permissions of pi9 files are fixed");
    const ids = numericIds();
    if (v & P9_SETATTR_UID && m.uid !== ids.uid) throw new FsError("EPERM", "owner of pi9 files is fixed");
    if (v & P9_SETATTR_GID && m.gid !== ids.gid) throw new FsError("EPERM", "group of pi9 files is fixed");
    if (v & P9_SETATTR_SIZE) {
      if (n.isDir) throw new FsError("EISDIR", "cannot set the length of a directory");
      n.truncate(m.size, f.ctx);
    }
    const now = Date.now();
    const at = v & P9_SETATTR_ATIME ? (v & P9_SETATTR_ATIME_SET ? m.atime_sec * 1000 + Math.floor(m.atime_nsec / 1e6) : now) : undefined;
    const mt = v & P9_SETATTR_MTIME ? (v & P9_SETATTR_MTIME_SET ? m.mtime_sec * 1000 + Math.floor(m.mtime_nsec / 1e6) : now) : undefined;
    n.setTimes(at, mt);
    return { type: "Rsetattr", tag: m.tag };
  }
}

export { typeName, statLen };
