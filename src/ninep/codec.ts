// The 9P codec: every message of 9P2000, 9P2000.u and 9P2000.L, in both
// directions, driven by one table of field layouts.
//
// A frame is size[4] type[1] tag[2] fields…, little-endian. 64-bit fields are
// carried as JS numbers (exact below 2^53, which covers offsets and the qid
// paths pi9 hands out; larger values from other servers lose low bits).

import { Dialect, MT, MsgName } from "./constants.js";

export interface Qid { type: number; version: number; path: number }

export interface Stat {
  type: number; dev: number; qid: Qid; mode: number;
  atime: number; mtime: number; length: number;
  name: string; uid: string; gid: string; muid: string;
  // 9P2000.u
  extension?: string; n_uid?: number; n_gid?: number; n_muid?: number;
}

export interface Dirent { qid: Qid; offset: number; type: number; name: string }

type Kind = "u8" | "u16" | "u32" | "u64" | "s" | "qid" | "qids" | "strs" | "data" | "stat" | "u32opt";
type Spec = ReadonlyArray<readonly [string, Kind]>;

const U = "u"; // marker for fields present only in .u / .L (n_uname etc.)

// Field layouts after size/type/tag. Entries with a third element U exist
// only in 9P2000.u (and .L where the message is shared).
const SPECS: Record<MsgName, ReadonlyArray<readonly [string, Kind, string?]>> = {
  Tlerror: [],
  Rlerror: [["ecode", "u32"]],
  Tstatfs: [["fid", "u32"]],
  Rstatfs: [["fstype", "u32"], ["bsize", "u32"], ["blocks", "u64"], ["bfree", "u64"], ["bavail", "u64"],
    ["files", "u64"], ["ffree", "u64"], ["fsid", "u64"], ["namelen", "u32"]],
  Tlopen: [["fid", "u32"], ["flags", "u32"]],
  Rlopen: [["qid", "qid"], ["iounit", "u32"]],
  Tlcreate: [["fid", "u32"], ["name", "s"], ["flags", "u32"], ["mode", "u32"], ["gid", "u32"]],
  Rlcreate: [["qid", "qid"], ["iounit", "u32"]],
  Tsymlink: [["fid", "u32"], ["name", "s"], ["symtgt", "s"], ["gid", "u32"]],
  Rsymlink: [["qid", "qid"]],
  Tmknod: [["dfid", "u32"], ["name", "s"], ["mode", "u32"], ["major", "u32"], ["minor", "u32"], ["gid", "u32"]],
  Rmknod: [["qid", "qid"]],
  Trename: [["fid", "u32"], ["dfid", "u32"], ["name", "s"]],
  Rrename: [],
  Treadlink: [["fid", "u32"]],
  Rreadlink: [["target", "s"]],
  Tgetattr: [["fid", "u32"], ["mask", "u64"]],
  Rgetattr: [["valid", "u64"], ["qid", "qid"], ["mode", "u32"], ["uid", "u32"], ["gid", "u32"], ["nlink", "u64"],
    ["rdev", "u64"], ["size", "u64"], ["blksize", "u64"], ["blocks", "u64"],
    ["atime_sec", "u64"], ["atime_nsec", "u64"], ["mtime_sec", "u64"], ["mtime_nsec", "u64"],
    ["ctime_sec", "u64"], ["ctime_nsec", "u64"], ["btime_sec", "u64"], ["btime_nsec", "u64"],
    ["gen", "u64"], ["data_version", "u64"]],
  Tsetattr: [["fid", "u32"], ["valid", "u32"], ["mode", "u32"], ["uid", "u32"], ["gid", "u32"], ["size", "u64"],
    ["atime_sec", "u64"], ["atime_nsec", "u64"], ["mtime_sec", "u64"], ["mtime_nsec", "u64"]],
  Rsetattr: [],
  Txattrwalk: [["fid", "u32"], ["newfid", "u32"], ["name", "s"]],
  Rxattrwalk: [["size", "u64"]],
  Txattrcreate: [["fid", "u32"], ["name", "s"], ["attr_size", "u64"], ["flags", "u32"]],
  Rxattrcreate: [],
  Treaddir: [["fid", "u32"], ["offset", "u64"], ["count", "u32"]],
  Rreaddir: [["data", "data"]],
  Tfsync: [["fid", "u32"], ["datasync", "u32opt"]],
  Rfsync: [],
  Tlock: [["fid", "u32"], ["locktype", "u8"], ["flags", "u32"], ["start", "u64"], ["length", "u64"],
    ["proc_id", "u32"], ["client_id", "s"]],
  Rlock: [["status", "u8"]],
  Tgetlock: [["fid", "u32"], ["locktype", "u8"], ["start", "u64"], ["length", "u64"], ["proc_id", "u32"], ["client_id", "s"]],
  Rgetlock: [["locktype", "u8"], ["start", "u64"], ["length", "u64"], ["proc_id", "u32"], ["client_id", "s"]],
  Tlink: [["dfid", "u32"], ["fid", "u32"], ["name", "s"]],
  Rlink: [],
  Tmkdir: [["dfid", "u32"], ["name", "s"], ["mode", "u32"], ["gid", "u32"]],
  Rmkdir: [["qid", "qid"]],
  Trenameat: [["olddirfid", "u32"], ["oldname", "s"], ["newdirfid", "u32"], ["newname", "s"]],
  Rrenameat: [],
  Tunlinkat: [["dirfid", "u32"], ["name", "s"], ["flags", "u32"]],
  Runlinkat: [],
  Tversion: [["msize", "u32"], ["version", "s"]],
  Rversion: [["msize", "u32"], ["version", "s"]],
  Tauth: [["afid", "u32"], ["uname", "s"], ["aname", "s"], ["n_uname", "u32", U]],
  Rauth: [["aqid", "qid"]],
  Tattach: [["fid", "u32"], ["afid", "u32"], ["uname", "s"], ["aname", "s"], ["n_uname", "u32", U]],
  Rattach: [["qid", "qid"]],
  Terror: [],
  Rerror: [["ename", "s"], ["errno", "u32", U]],
  Tflush: [["oldtag", "u16"]],
  Rflush: [],
  Twalk: [["fid", "u32"], ["newfid", "u32"], ["wnames", "strs"]],
  Rwalk: [["wqids", "qids"]],
  Topen: [["fid", "u32"], ["mode", "u8"]],
  Ropen: [["qid", "qid"], ["iounit", "u32"]],
  Tcreate: [["fid", "u32"], ["name", "s"], ["perm", "u32"], ["mode", "u8"], ["extension", "s", U]],
  Rcreate: [["qid", "qid"], ["iounit", "u32"]],
  Tread: [["fid", "u32"], ["offset", "u64"], ["count", "u32"]],
  Rread: [["data", "data"]],
  Twrite: [["fid", "u32"], ["offset", "u64"], ["data", "data"]],
  Rwrite: [["count", "u32"]],
  Tclunk: [["fid", "u32"]],
  Rclunk: [],
  Tremove: [["fid", "u32"]],
  Rremove: [],
  Tstat: [["fid", "u32"]],
  Rstat: [["stat", "stat"]],
  Twstat: [["fid", "u32"], ["stat", "stat"]],
  Rwstat: [],
};

const NAME_BY_TYPE: (MsgName | undefined)[] = [];
for (const [n, t] of Object.entries(MT)) NAME_BY_TYPE[t] = n as MsgName;

/** Messages that exist in each dialect (T and R). */
const LEGACY = new Set<MsgName>(["Tversion", "Rversion", "Tauth", "Rauth", "Tattach", "Rattach", "Rerror",
  "Tflush", "Rflush", "Twalk", "Rwalk", "Topen", "Ropen", "Tcreate", "Rcreate", "Tread", "Rread",
  "Twrite", "Rwrite", "Tclunk", "Rclunk", "Tremove", "Rremove", "Tstat", "Rstat", "Twstat", "Rwstat"]);
const LINUX_ONLY_LEGACY = new Set<MsgName>(["Rerror", "Topen", "Ropen", "Tcreate", "Rcreate", "Tstat", "Rstat", "Twstat", "Rwstat"]);

export function messageInDialect(name: MsgName, d: Dialect): boolean {
  if (name === "Terror" || name === "Tlerror") return false;
  if (d === "9P2000.L") return !LINUX_ONLY_LEGACY.has(name);
  return LEGACY.has(name);
}

export function typeName(t: number): MsgName | undefined { return NAME_BY_TYPE[t]; }

// A message is a plain object: { type, tag, ...fields }.
export interface Msg { type: MsgName; tag: number; [field: string]: any }

export class DecodeError extends Error {
  constructor(message: string, readonly tag?: number, readonly msgType?: number) { super(message); this.name = "DecodeError"; }
}

const TWO32 = 0x100000000;
const TWO64 = TWO32 * TWO32;

class Reader {
  off: number;
  constructor(readonly b: Buffer, start: number, readonly end: number) { this.off = start; }
  need(n: number, what: string) {
    if (this.off + n > this.end) throw new DecodeError(`truncated message: ${what} runs past the frame`);
  }
  u8() { this.need(1, "u8"); return this.b[this.off++]; }
  u16() { this.need(2, "u16"); const v = this.b.readUInt16LE(this.off); this.off += 2; return v; }
  u32() { this.need(4, "u32"); const v = this.b.readUInt32LE(this.off); this.off += 4; return v; }
  u64() {
    this.need(8, "u64");
    const lo = this.b.readUInt32LE(this.off), hi = this.b.readUInt32LE(this.off + 4);
    this.off += 8; return hi * TWO32 + lo;
  }
  s() {
    const n = this.u16(); this.need(n, "string");
    const v = this.b.toString("utf8", this.off, this.off + n); this.off += n; return v;
  }
  qid(): Qid {
    this.need(13, "qid");
    const type = this.b[this.off], version = this.b.readUInt32LE(this.off + 1);
    const path = this.b.readUInt32LE(this.off + 9) * TWO32 + this.b.readUInt32LE(this.off + 5);
    this.off += 13; return { type, version, path };
  }
  data() {
    const n = this.u32(); this.need(n, "data");
    const v = this.b.subarray(this.off, this.off + n); this.off += n; return v;
  }
}

class Writer {
  off = 0;
  constructor(readonly b: Buffer) {}
  u8(v: number) { this.b[this.off++] = v & 0xff; }
  u16(v: number) { this.b.writeUInt16LE(v & 0xffff, this.off); this.off += 2; }
  u32(v: number) { this.b.writeUInt32LE(v >>> 0, this.off); this.off += 4; }
  u64(v: number) {
    if (!(v >= 0)) v = 0;
    // 2^64-1 (NOFID-like "don't touch" values) is 2^64 as a double: saturate
    // instead of wrapping to 0.
    if (v >= TWO64) { this.b.writeUInt32LE(0xffffffff, this.off); this.b.writeUInt32LE(0xffffffff, this.off + 4); }
    else { this.b.writeUInt32LE(v % TWO32 >>> 0, this.off); this.b.writeUInt32LE(Math.floor(v / TWO32) >>> 0, this.off + 4); }
    this.off += 8;
  }
  s(v: string) { const n = this.b.write(v, this.off + 2, "utf8"); this.b.writeUInt16LE(n, this.off); this.off += 2 + n; }
  qid(q: Qid) { this.u8(q.type); this.u32(q.version); this.u64(q.path); }
  bytes(v: Uint8Array) { this.b.set(v, this.off); this.off += v.length; }
}

function strLen(s: string) {
  const n = Buffer.byteLength(s, "utf8");
  if (n > 0xffff) throw new RangeError("string longer than 65535 bytes");
  return 2 + n;
}

function statBodyLen(st: Stat, d: Dialect) {
  let n = 2 + 4 + 13 + 4 + 4 + 4 + 8 + strLen(st.name) + strLen(st.uid) + strLen(st.gid) + strLen(st.muid);
  if (d === "9P2000.u") n += strLen(st.extension ?? "") + 12;
  // size[2] of the stat and the count[2] before it in Rstat/Twstat must both fit.
  if (n + 2 > 0xffff) throw new RangeError("stat longer than 65535 bytes");
  return n;
}

/** Bytes a stat occupies on the wire, including its own size[2]. */
export function statLen(st: Stat, d: Dialect) { return 2 + statBodyLen(st, d); }

function writeStat(w: Writer, st: Stat, d: Dialect) {
  w.u16(statBodyLen(st, d));
  w.u16(st.type); w.u32(st.dev); w.qid(st.qid); w.u32(st.mode); w.u32(st.atime); w.u32(st.mtime);
  w.u64(st.length); w.s(st.name); w.s(st.uid); w.s(st.gid); w.s(st.muid);
  if (d === "9P2000.u") { w.s(st.extension ?? ""); w.u32(st.n_uid ?? 0xffffffff); w.u32(st.n_gid ?? 0xffffffff); w.u32(st.n_muid ?? 0xffffffff); }
}

function readStat(r: Reader, d: Dialect): Stat {
  const size = r.u16(); r.need(size, "stat");
  const end = r.off + size;
  const sub = new Reader(r.b, r.off, end);
  const st: Stat = {
    type: sub.u16(), dev: sub.u32(), qid: sub.qid(), mode: sub.u32(), atime: sub.u32(), mtime: sub.u32(),
    length: sub.u64(), name: sub.s(), uid: sub.s(), gid: sub.s(), muid: sub.s(),
  };
  if (d === "9P2000.u" && sub.off < end) {
    st.extension = sub.s(); st.n_uid = sub.u32(); st.n_gid = sub.u32(); st.n_muid = sub.u32();
  }
  r.off = end;
  return st;
}

/** Encode one stat entry (as in a 9P2000 directory read). */
export function encodeStat(st: Stat, d: Dialect): Buffer {
  const b = Buffer.allocUnsafe(statLen(st, d));
  writeStat(new Writer(b), st, d);
  return b;
}

/** Decode the stat entries of a 9P2000 directory read. */
export function decodeStats(buf: Buffer, d: Dialect): Stat[] {
  const r = new Reader(buf, 0, buf.length), out: Stat[] = [];
  while (r.off < buf.length) out.push(readStat(r, d));
  return out;
}

export function direntLen(name: string) { return 13 + 8 + 1 + strLen(name); }

export function writeDirent(b: Buffer, off: number, e: Dirent): number {
  const w = new Writer(b); w.off = off;
  w.qid(e.qid); w.u64(e.offset); w.u8(e.type); w.s(e.name);
  return w.off;
}

export function decodeDirents(buf: Buffer): Dirent[] {
  const r = new Reader(buf, 0, buf.length), out: Dirent[] = [];
  while (r.off < buf.length) out.push({ qid: r.qid(), offset: r.u64(), type: r.u8(), name: r.s() });
  return out;
}

function fieldsFor(name: MsgName, d: Dialect) {
  const spec = SPECS[name];
  return d === "9P2000" ? spec.filter((f) => f[2] !== U) : spec;
}

/** Decode one whole frame (size included). Throws DecodeError when malformed. */
export function decode(frame: Buffer, d: Dialect): Msg {
  if (frame.length < 7) throw new DecodeError("frame shorter than its header");
  const size = frame.readUInt32LE(0);
  if (size !== frame.length) throw new DecodeError(`frame size ${size} does not match ${frame.length} bytes`);
  const t = frame[4], tag = frame.readUInt16LE(5);
  const name = NAME_BY_TYPE[t];
  if (!name) throw new DecodeError(`unknown message type ${t}`, tag, t);
  const r = new Reader(frame, 7, frame.length);
  const m: Msg = { type: name, tag };
  for (const [f, kind] of fieldsFor(name, d)) {
    try {
      switch (kind) {
        case "u8": m[f] = r.u8(); break;
        case "u16": m[f] = r.u16(); break;
        case "u32": m[f] = r.u32(); break;
        case "u32opt": m[f] = r.off + 4 <= r.end ? r.u32() : 0; break;
        case "u64": m[f] = r.u64(); break;
        case "s": m[f] = r.s(); break;
        case "qid": m[f] = r.qid(); break;
        case "data": m[f] = r.data(); break;
        case "stat": { const n = r.u16(); r.need(n, "stat"); m[f] = readStat(new Reader(frame, r.off, r.off + n), d); r.off += n; break; }
        case "qids": { const n = r.u16(); const a: Qid[] = []; for (let i = 0; i < n; i++) a.push(r.qid()); m[f] = a; break; }
        case "strs": { const n = r.u16(); const a: string[] = []; for (let i = 0; i < n; i++) a.push(r.s()); m[f] = a; break; }
      }
    } catch (e) {
      if (e instanceof DecodeError) throw new DecodeError(`${name}: ${e.message} (field ${f})`, tag, t);
      throw e;
    }
  }
  return m;
}

function count16(n: number) {
  if (n > 0xffff) throw new RangeError("more than 65535 elements in a counted array");
  return n;
}

function fieldLen(kind: Kind, v: any, d: Dialect): number {
  switch (kind) {
    case "u8": return 1;
    case "u16": return 2;
    case "u32": case "u32opt": return 4;
    case "u64": return 8;
    case "s": return strLen(v ?? "");
    case "qid": return 13;
    case "data": return 4 + (v ? v.length : 0);
    case "stat": return 2 + statLen(v, d);
    case "qids": return 2 + 13 * count16(v ? v.length : 0);
    case "strs": { let n = 2; for (const s of v ?? []) n += strLen(s); count16((v ?? []).length); return n; }
  }
}

/** Encode a message into one frame. */
export function encode(m: Msg, d: Dialect): Buffer {
  const fields = fieldsFor(m.type, d);
  let size = 7;
  for (const [f, kind] of fields) size += fieldLen(kind, m[f], d);
  const b = Buffer.allocUnsafe(size);
  const w = new Writer(b);
  w.u32(size); w.u8(MT[m.type]); w.u16(m.tag);
  for (const [f, kind] of fields) {
    const v = m[f];
    switch (kind) {
      case "u8": w.u8(v ?? 0); break;
      case "u16": w.u16(v ?? 0); break;
      case "u32": case "u32opt": w.u32(v ?? 0); break;
      case "u64": w.u64(v ?? 0); break;
      case "s": w.s(v ?? ""); break;
      case "qid": w.qid(v); break;
      case "data": w.u32(v ? v.length : 0); if (v) w.bytes(v); break;
      case "stat": w.u16(statLen(v, d)); writeStat(w, v, d); break;
      case "qids": w.u16(v.length); for (const q of v) w.qid(q); break;
      case "strs": w.u16(v.length); for (const s of v) w.s(s); break;
    }
  }
  return b;
}

/** Header of an Rread (or Rreaddir) carrying `count` bytes that follow separately. */
export function rreadHeader(tag: number, count: number, type: number = MT.Rread): Buffer {
  const b = Buffer.allocUnsafe(11);
  b.writeUInt32LE(11 + count, 0); b[4] = type; b.writeUInt16LE(tag, 5); b.writeUInt32LE(count, 7);
  return b;
}

export const ALL_MESSAGES = Object.keys(SPECS) as MsgName[];
export function specOf(name: MsgName, d: Dialect): Spec { return fieldsFor(name, d).map(([f, k]) => [f, k] as const); }
