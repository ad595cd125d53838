// Fuzzing the wire: the decoder against random and damaged frames, then
// whole sessions of hostile traffic against an in-process server and a real
// `pi9 serve`. After every session the server must still serve a fresh,
// well-behaved client. Seeded: the seed is printed, PI9_SEED replays it.

import t, { Test } from "tap";
import net from "node:net";
import { ALL_MESSAGES, decode, DecodeError, encode, messageInDialect, Msg } from "../src/ninep/codec.js";
import { Dialect, MT, MsgName, NOFID, NONUNAME, NOTAG } from "../src/ninep/constants.js";
import { genMsg } from "./helpers/gen.js";
import { Rng, seedFromEnv } from "./helpers/rand.js";
import { SAFETY_MS, startInProcess, until, wellBehaved } from "./helpers/raw9p.js";
import { startServe } from "./helpers/serve.js";

const seed = seedFromEnv();
t.comment(`fuzz seed ${seed} (replay with PI9_SEED=${seed})`);

const DIALECTS: Dialect[] = ["9P2000", "9P2000.u", "9P2000.L"];
const isT = (n: MsgName) => MT[n] % 2 === 0;
const T_OF = (d: Dialect) => ALL_MESSAGES.filter((n) => isT(n) && messageInDialect(n, d));
const R_ALL = ALL_MESSAGES.filter((n) => !isT(n));
const KNOWN_TYPES = new Set<number>(Object.values(MT));
const BAD_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xfe, 0xfe]];

/** Raw frame: size[4] type[1] tag[2] body. */
function rawFrame(type: number, tag: number, body: Buffer): Buffer {
  const h = Buffer.alloc(7);
  h.writeUInt32LE(7 + body.length); h[4] = type; h.writeUInt16LE(tag, 5);
  return Buffer.concat([h, body]);
}
function u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; }
function u16(v: number) { const b = Buffer.alloc(2); b.writeUInt16LE(v & 0xffff); return b; }
function rawStr(b: Buffer) { return Buffer.concat([u16(b.length), b]); }

function badUtf8Name(rng: Rng): Buffer {
  return Buffer.concat([Buffer.from(rng.pick(["", "mnt", "x", "index"])), Buffer.from(rng.pick(BAD_UTF8)), Buffer.from(rng.pick(["", "y"]))]);
}

// ---- 1. the decoder alone ----------------------------------------------------

t.test("decoder fuzz: a message or a DecodeError, nothing else", async (t) => {
  const rng = new Rng(seed);
  const bad: string[] = [];
  let msgs = 0, errs = 0, tagged = 0;
  const check = (buf: Buffer, d: Dialect, what: string) => {
    try {
      const m = decode(buf, d);
      if (typeof m.type !== "string" || typeof m.tag !== "number") bad.push(`${what}: odd message ${JSON.stringify(m)}`);
      msgs++;
    } catch (e) {
      errs++;
      if (!(e instanceof DecodeError)) { bad.push(`${what}: ${(e as Error)?.stack ?? e} on ${buf.toString("hex").slice(0, 200)}`); return; }
      // A frame that is whole and of a known type must name its tag, so the server can answer it.
      if (buf.length >= 7 && buf.readUInt32LE(0) === buf.length) {
        if (e.tag !== buf.readUInt16LE(5) || e.msgType !== buf[4]) bad.push(`${what}: DecodeError without the frame's tag/type`);
        else tagged++;
      }
    }
  };
  const valid = (d: Dialect) => encode(genMsg(rng, rng.pick(ALL_MESSAGES.filter((n) => messageInDialect(n, d))), d), d);
  for (let i = 0; i < 3000; i++) {
    const d = rng.pick(DIALECTS);
    // Random bytes, with and without a consistent size field.
    const r = rng.bytes(rng.int(80));
    check(r, d, "random");
    if (r.length >= 4) { r.writeUInt32LE(r.length); check(r, d, "random sized"); }
    // A valid frame with bytes flipped after the header.
    const f = Buffer.from(valid(d));
    for (let k = rng.range(1, 4); k > 0; k--) if (f.length > 7) f[rng.range(7, f.length - 1)] = rng.u32() & 0xff;
    check(f, d, "mutated");
    // Truncated, with the size field adjusted and not.
    const g = valid(d);
    const cut = Buffer.from(g.subarray(0, rng.int(g.length)));
    check(cut, d, "truncated");
    if (cut.length >= 7) { cut.writeUInt32LE(cut.length); check(cut, d, "truncated sized"); }
    // Oversized and undersized size fields.
    const o = Buffer.from(valid(d));
    o.writeUInt32LE(rng.pick([o.length + 1, 0xffffffff, 1 << 20, rng.u32(), 0, 6]));
    check(o, d, "size field");
    // Unknown types, with a plausible body.
    let ty: number;
    do ty = rng.int(256); while (KNOWN_TYPES.has(ty));
    check(rawFrame(ty, rng.int(0x10000), rng.bytes(rng.int(40))), d, "unknown type");
    // Counts that promise more than the frame holds.
    check(rawFrame(MT.Twalk, 1, Buffer.concat([u32(1), u32(2), u16(0xffff), rawStr(Buffer.from("a"))])), d, "nwname 65535");
    check(rawFrame(MT.Rwalk, 1, Buffer.concat([u16(0xffff), rng.bytes(13)])), d, "nwqid 65535");
    check(rawFrame(MT.Rread, 1, Buffer.concat([u32(0xffffffff), rng.bytes(10)])), d, "count 2^32-1");
    check(rawFrame(MT.Rstat, 1, Buffer.concat([u16(0xffff), u16(0xfffe), rng.bytes(30)])), d, "stat size");
  }
  // Invalid UTF-8 strings decode (U+FFFD) rather than throw.
  for (let i = 0; i < 500; i++) {
    const name = badUtf8Name(rng);
    const frames = [
      rawFrame(MT.Twalk, 1, Buffer.concat([u32(0), u32(1), u16(2), rawStr(Buffer.from("mnt")), rawStr(name)])),
      rawFrame(MT.Tattach, 1, Buffer.concat([u32(0), u32(NOFID), rawStr(name), rawStr(name), u32(NONUNAME)])),
      rawFrame(MT.Tlcreate, 1, Buffer.concat([u32(0), rawStr(name), u32(0), u32(0o644), u32(0)])),
    ];
    for (const f of frames) {
      try { const m = decode(f, "9P2000.L"); if (!JSON.stringify(m).includes("\\ufffd") && !JSON.stringify(m).includes("\ufffd")) bad.push(`invalid UTF-8 kept raw: ${f.toString("hex")}`); msgs++; }
      catch (e) { bad.push(`invalid UTF-8 threw ${(e as Error).message}: ${f.toString("hex")}`); }
    }
  }
  t.same(bad.slice(0, 5), [], "every input decoded or threw DecodeError");
  t.comment(`decoded ${msgs}, rejected ${errs} (${tagged} with their tag)`);
  t.ok(msgs > 1000 && errs > 1000, "both outcomes were exercised");
});

// ---- 2. hostile sessions -------------------------------------------------------

const NAMES = ["mnt", "xenith", "index", "event", "new", "log", "focus", "..", ".", "1", "2", "3", "ctl", "body", "tag", "n",
  "web", "tools", "pxldisk", "nope", "", "a/b", "x".repeat(300)];
const WRITES = ["window fuzz\n", "name fz\n", "del\n", "clean\n", "dirty\n", "focus 1\n", "1\n", "bogus\n", "", "x/a/ c/b/\n",
  ",s/a/b/g\n", "window\nwindow\n", "hello\n", "dot=addr\n", "0 5\n", "#3\n"];
const FID_FIELDS = new Set(["fid", "newfid", "afid", "dfid", "dirfid", "olddirfid", "newdirfid"]);

const FILES = [["index"], ["event"], ["new"], ["log"], ["focus"], [], ["1"], ["1", "ctl"], ["1", "body"], ["1", "event"], ["1", "tag"],
  ["2", "ctl"], ["2", "body"], ["3", "event"], ["1", ".."], ["..", "index"]];

class Session {
  readonly fids = [0, 1, 2, 3, 4, 5, 6, 7];
  aname = "";
  private recentTags: number[] = [];
  msize: number;
  constructor(readonly rng: Rng, readonly d: Dialect) { this.msize = rng.pick([8192, 65536, 131096, 1 << 20]); }

  fid() { return this.rng.bool(0.9) ? this.rng.pick(this.fids) : this.rng.pick([NOFID, this.rng.u32()]); }
  tag() {
    const r = this.rng.int(100);
    let tag: number;
    if (r < 4) tag = NOTAG;
    else if (r < 9 && this.recentTags.length) tag = this.rng.pick(this.recentTags); // reuse, maybe while outstanding
    else tag = this.rng.int(2048);
    this.recentTags.push(tag);
    if (this.recentTags.length > 8) this.recentTags.shift();
    return tag;
  }
  path() {
    const r = this.rng.int(100);
    const n = r < 4 ? this.rng.range(17, 20) : this.rng.int(5);
    const p = Array.from({ length: n }, () => this.rng.pick(NAMES));
    if (r === 99 && this.msize > 66000) p.push("w".repeat(65535)); // the longest name the wire carries
    return p;
  }
  enc(m: Msg) { return encode(m, this.d); }

  /** What a client does with a file: walk from the root fid, open, read or write, maybe clunk. */
  script(): Buffer[] {
    const { rng, d } = this;
    const L = d === "9P2000.L";
    const fid = rng.range(1, 7);
    const path = [...(this.aname === "" ? ["mnt", "xenith"] : []), ...rng.pick(FILES)];
    const out = [this.enc({ type: "Twalk", tag: this.tag(), fid: 0, newfid: fid, wnames: path })];
    const write = rng.bool(0.4);
    out.push(this.enc(L ? { type: "Tlopen", tag: this.tag(), fid, flags: write ? rng.pick([1, 2, 0o100101, 0o2001]) : 0 }
      : { type: "Topen", tag: this.tag(), fid, mode: write ? rng.pick([1, 2, 0x11, 0x81]) : 0 }));
    if (write && rng.bool(0.3)) {
      out.push(L ? this.enc({ type: "Tsetattr", tag: this.tag(), fid, valid: 0x68, mode: 0, uid: 0, gid: 0, size: 0, atime_sec: 0, atime_nsec: 0, mtime_sec: 0, mtime_nsec: 0 })
        : this.enc({ type: "Twstat", tag: this.tag(), fid, stat: { type: 0xffff, dev: 0xffffffff, qid: { type: 0xff, version: 0xffffffff, path: 2 ** 64 },
          mode: 0xffffffff, atime: 0xffffffff, mtime: 1700000000, length: 0, name: "", uid: "", gid: "", muid: "",
          ...(d === "9P2000.u" ? { extension: "", n_uid: NONUNAME, n_gid: NONUNAME, n_muid: NONUNAME } : {}) } }));
    }
    for (let k = rng.range(1, 3); k > 0; k--) {
      // Now and then a line longer than any 9P string (error messages quote it).
      const long = rng.bool(0.05) && this.msize > 70100 ? "b".repeat(70000) : null;
      if (write) out.push(this.enc({ type: "Twrite", tag: this.tag(), fid, offset: 0, data: Buffer.from(long ?? rng.pick(WRITES)) }));
      else if (L && path.length < 3 && rng.bool(0.5)) out.push(this.enc({ type: "Treaddir", tag: this.tag(), fid, offset: rng.pick([0, 2]), count: rng.pick([50, 8000]) }));
      else out.push(this.enc({ type: "Tread", tag: this.tag(), fid, offset: rng.pick([0, 0, 10]), count: rng.pick([0, 10, 4000, this.msize - 24]) }));
    }
    if (rng.bool(0.3)) out.push(this.enc({ type: "Tflush", tag: this.tag(), oldtag: this.recentTags[this.recentTags.length - 2] }));
    if (rng.bool(0.6)) out.push(this.enc({ type: "Tclunk", tag: this.tag(), fid }));
    return out;
  }

  /** One meaningful request, with hostile values where clients may send them. */
  sane(): Buffer[] {
    const { rng, d } = this;
    if (rng.bool(0.4)) return this.script();
    const tag = this.tag();
    const L = d === "9P2000.L";
    switch (rng.int(16)) {
      case 0: case 1: return [this.enc({ type: "Twalk", tag, fid: this.fid(), newfid: this.fid(), wnames: this.path() })];
      case 2: {
        const fid = this.fid();
        return [this.enc(L ? { type: "Tlopen", tag, fid, flags: rng.pick([0, 1, 2, 0o101, 0o100101, 0o1001, 0o2001, 0o4000, rng.u32()]) }
          : { type: "Topen", tag, fid, mode: rng.pick([0, 1, 2, 3, 0x11, 0x81, 0x40, 0x12, rng.int(256)]) })];
      }
      case 3: case 4: return [this.enc({ type: "Tread", tag, fid: this.fid(), offset: rng.pick([0, 0, 1, 2, 100, Number.MAX_SAFE_INTEGER, rng.u32()]),
        count: rng.pick([0, 1, 100, 4096, this.msize - 24, 0xffffffff, rng.u32()]) })];
      case 5: case 6: {
        const data = rng.int(10) === 0 ? rng.bytes(rng.int(Math.min(8000, this.msize - 100))) : Buffer.from(rng.pick(WRITES));
        return [this.enc({ type: "Twrite", tag, fid: this.fid(), offset: rng.pick([0, 3, rng.u32()]), data })];
      }
      case 7: {
        const fid = this.fid();
        const c = this.enc({ type: "Tclunk", tag, fid });
        return rng.bool(0.3) ? [c, this.enc({ type: "Tclunk", tag: this.tag(), fid })] : [c]; // pipelined double clunk
      }
      case 8: return [this.enc({ type: "Tflush", tag, oldtag: rng.bool(0.7) && this.recentTags.length ? rng.pick(this.recentTags) : rng.int(0x10000) })];
      case 9: return [this.enc({ type: "Tversion", tag: rng.bool(0.8) ? NOTAG : tag, msize: rng.pick([0, 100, 256, 8192, 65536, 0xffffffff]),
        version: rng.pick(["9P2000", "9P2000.L", "9P2000.u", "9P2000.foo", "junk", "", "9P2000.L\u0000"]) })];
      case 10: return [this.enc({ type: "Tattach", tag, fid: this.fid(), afid: rng.pick([NOFID, this.fid()]), uname: rng.pick(["", "u", "x".repeat(100)]),
        aname: rng.pick(["", "/", "/mnt/xenith", "/mnt/xenith/index", "/nope", "token=x", "token=", "..", "/mnt/../mnt"]), n_uname: rng.pick([NONUNAME, 0, 1000]) })];
      case 11: return [this.enc({ type: "Tauth", tag, afid: this.fid(), uname: "u", aname: "", n_uname: NONUNAME })];
      case 12: return [this.enc(L ? { type: "Treaddir", tag, fid: this.fid(), offset: rng.pick([0, 1, 2, 5, 1e9]), count: rng.pick([0, 10, 100, 8000, 0xffffffff]) }
        : { type: "Tstat", tag, fid: this.fid() })];
      case 13: return [this.enc(L ? { type: "Tgetattr", tag, fid: this.fid(), mask: 0x3fff } : { type: "Tremove", tag, fid: this.fid() })];
      case 14: {
        const names = [badUtf8Name(rng), badUtf8Name(rng)];
        return [rawFrame(MT.Twalk, tag, Buffer.concat([u32(this.fid()), u32(this.fid()), u16(names.length), ...names.map(rawStr)]))];
      }
      default: return [this.enc({ type: "Tclunk", tag, fid: rng.u32() })]; // a fid that never existed
    }
  }

  /** Any T-message of the dialect, fields random but fids from the pool. */
  anyT(): Buffer {
    const { rng, d } = this;
    const m = genMsg(rng, rng.pick(T_OF(d)), d, (f, kind) => {
      if (FID_FIELDS.has(f) && rng.bool(0.8)) return this.fid();
      if (f === "count" && rng.bool(0.5)) return rng.pick([0, 4096, 0xffffffff]);
      if (kind === "s" && rng.bool(0.5)) return rng.pick(NAMES);
      if (f === "wnames") return this.path();
      return undefined;
    });
    m.tag = this.tag();
    return encode(m, d);
  }

  mutate(f: Buffer): Buffer {
    const { rng } = this;
    const g = Buffer.from(f);
    switch (rng.int(3)) {
      case 0: for (let k = rng.range(1, 3); k > 0; k--) if (g.length > 7) g[rng.range(rng.bool(0.2) ? 4 : 7, g.length - 1)] = rng.u32() & 0xff; return g;
      case 1: { const c = Buffer.from(g.subarray(0, rng.range(7, g.length))); c.writeUInt32LE(c.length); return c; } // body cut short
      default: { const c = Buffer.concat([g, rng.bytes(rng.range(1, 20))]); c.writeUInt32LE(c.length); return c; } // trailing garbage
    }
  }

  /** The frames of one session; a "terminal" damage (misframing) ends it. */
  frames(): Buffer[] {
    const { rng, d } = this;
    const out: Buffer[] = [];
    if (rng.bool(0.9)) out.push(this.enc({ type: "Tversion", tag: NOTAG, msize: this.msize, version: d }));
    this.aname = rng.pick(["", "/mnt/xenith"]);
    if (rng.bool(0.9)) out.push(this.enc({ type: "Tattach", tag: this.tag(), fid: 0, afid: NOFID, uname: "fuzz", aname: this.aname, n_uname: NONUNAME }));
    const n = rng.range(5, 40);
    for (let i = 0; i < n; i++) {
      const r = rng.int(100);
      if (r < 50) out.push(...this.sane());
      else if (r < 72) out.push(this.anyT());
      else if (r < 76) { const m = genMsg(rng, rng.pick(R_ALL), d); m.tag = this.tag(); out.push(encode(m, d)); } // R-message as a request
      else if (r < 79) { let ty: number; do ty = rng.int(256); while (KNOWN_TYPES.has(ty)); out.push(rawFrame(ty, this.tag(), rng.bytes(rng.int(30)))); }
      else if (r < 98) out.push(this.mutate(rng.bool() ? this.sane()[0] : this.anyT()));
      else {
        // Terminal: the stream can no longer be framed, the server must drop only this connection.
        switch (rng.int(4)) {
          case 0: { const f = Buffer.from(this.sane()[0]); f.writeUInt32LE(rng.pick([0xffffffff, (1 << 20) + 1, this.msize + 1, rng.u32()])); out.push(f); break; }
          case 1: { const f = Buffer.from(this.sane()[0]); f.writeUInt32LE(rng.int(7)); out.push(f); break; }
          case 2: out.push(rng.bytes(rng.range(1, 200))); break;
          default: { const f = this.sane()[0]; out.push(f.subarray(0, rng.range(1, f.length - 1))); break; } // cut, size not fixed
        }
        break;
      }
    }
    return out;
  }
}

/** Frames the server will parse out of `bytes` (same rules as its framing), counted per tag. */
function tagsSent(bytes: Buffer): Map<number, number> {
  const m = new Map<number, number>();
  let off = 0;
  while (bytes.length - off >= 7) {
    const size = bytes.readUInt32LE(off);
    if (size < 7 || size > (1 << 20) || off + size > bytes.length) break;
    const tag = bytes.readUInt16LE(off + 5);
    m.set(tag, (m.get(tag) ?? 0) + 1);
    off += size;
  }
  return m;
}

/** Send one session, half-close, collect every reply until the server closes. */
const NAME_OF = new Map<number, string>(Object.entries(MT).map(([n, v]) => [v, n]));

async function runSession(sockPath: string, frames: Buffer[], rng: Rng, kinds: Map<string, number>): Promise<{ problems: string[]; replies: number }> {
  const bytes = Buffer.concat(frames);
  const sock = net.connect(sockPath);
  const got: Buffer[] = [];
  sock.on("data", (b: Buffer) => got.push(b));
  sock.on("error", () => {});
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => { sock.destroy(); resolve(false); }, SAFETY_MS);
    sock.once("close", () => { clearTimeout(timer); resolve(true); });
  });
  await new Promise<void>((resolve, reject) => { sock.once("connect", resolve); sock.once("error", reject); });
  // Write in a few random slices, so frames straddle chunk boundaries.
  let off = 0;
  for (let k = rng.range(1, 4); k > 0 && off < bytes.length; k--) {
    const end = k === 1 ? bytes.length : rng.range(off, bytes.length);
    sock.write(bytes.subarray(off, end));
    off = end;
    if (rng.bool(0.3)) await new Promise((r) => setImmediate(r));
  }
  if (off < bytes.length) sock.write(bytes.subarray(off));
  sock.end();
  const problems: string[] = [];
  if (!(await closed)) problems.push("the server did not finish the session (safety net)");
  // Every reply is a well-formed R-message, answering a tag that was sent, at most once per request.
  const all = Buffer.concat(got);
  const sent = tagsSent(bytes);
  const answered = new Map<number, number>();
  let p = 0, replies = 0;
  while (p < all.length) {
    if (all.length - p < 7) { problems.push(`a partial reply of ${all.length - p} bytes`); break; }
    const size = all.readUInt32LE(p);
    if (size < 7 || p + size > all.length) { problems.push(`a reply with size ${size}`); break; }
    const f = all.subarray(p, p + size);
    p += size;
    replies++;
    if (f[4] % 2 !== 1 || !KNOWN_TYPES.has(f[4])) problems.push(`reply of type ${f[4]}`);
    if (!DIALECTS.some((d) => { try { decode(f, d); return true; } catch { return false; } })) problems.push(`undecodable reply ${f.toString("hex").slice(0, 80)}`);
    const kind = NAME_OF.get(f[4]) ?? String(f[4]);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    const tag = f.readUInt16LE(5);
    answered.set(tag, (answered.get(tag) ?? 0) + 1);
  }
  for (const [tag, n] of answered) if (n > (sent.get(tag) ?? 0)) problems.push(`tag ${tag} answered ${n} times for ${sent.get(tag) ?? 0} requests`);
  return { problems, replies };
}

async function fuzzServer(t: Test, sockPath: string, sessions: number, rng: Rng, afterEach?: () => string[]) {
  let frames = 0, replies = 0;
  const problems: string[] = [];
  const kinds = new Map<string, number>();
  for (let i = 0; i < sessions && problems.length === 0; i++) {
    const s = new Session(rng, rng.pick(DIALECTS));
    const fs = s.frames();
    frames += fs.length;
    const r = await runSession(sockPath, fs, rng, kinds);
    replies += r.replies;
    problems.push(...r.problems.map((p) => `session ${i} (${s.d}): ${p}`));
    try {
      const dialect = rng.pick(DIALECTS);
      const idx = await wellBehaved(sockPath, dialect);
      if (!/^(\d+ \S+ \S+ .*\n)*$/.test(idx)) problems.push(`session ${i}: index reads ${JSON.stringify(idx.slice(0, 200))}`);
    } catch (e) {
      problems.push(`session ${i} (${s.d}): a fresh client failed afterwards: ${(e as Error).message}`);
    }
    if (afterEach) problems.push(...afterEach().map((p) => `session ${i}: ${p}`));
  }
  t.comment(`replies: ${[...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ")}`);
  t.same(problems.slice(0, 5), [], `${sessions} sessions, ${frames} frames, ${replies} replies: the server survived each`);
  t.ok(frames > sessions * 5, "sessions carried frames");
}

t.test("session fuzz against an in-process server", async (t) => {
  const rng = new Rng(seed ^ 0x5eed);
  const s = await startInProcess();
  t.teardown(() => s.close());
  s.ns.xenith.createWindow("window", "target");
  const uncaught: Error[] = [];
  const onUncaught = (e: Error) => uncaught.push(e);
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  t.teardown(() => { process.off("uncaughtException", onUncaught); process.off("unhandledRejection", onUncaught); });
  await fuzzServer(t, s.sock, 300, rng, () => {
    const out = [...s.warnings.splice(0), ...uncaught.splice(0).map((e) => `uncaught: ${e.stack}`)];
    return out;
  });
  const why = new Map<string, number>();
  for (const c of s.closes) { const k = c.replace(/\d+/g, "N"); why.set(k, (why.get(k) ?? 0) + 1); }
  t.comment(`connections the server dropped: ${[...why].map(([k, n]) => `${n}× ${k}`).join("; ")}`);
  // Nothing is left behind once every client is gone.
  await until(() => s.server.connections.size === 0, "every connection to close");
  t.equal(s.server.connections.size, 0, "no connection left");
  t.equal(s.ns.xenith.events.readers, 0, "no reader left on /mnt/xenith/event");
  const stuck = [...s.ns.xenith.windows.values()].filter((w) => w.events.readers > 0).map((w) => w.id);
  t.same(stuck, [], "no reader left on any window's event");
});

t.test("session fuzz against a real pi9 serve", async (t) => {
  const rng = new Rng(seed ^ 0xc0ffee);
  const served = await startServe();
  t.teardown(() => served.stop());
  await fuzzServer(t, served.sock, 60, rng, () => (served.proc.exitCode !== null ? [`pi9 serve exited with ${served.proc.exitCode}`] : []));
  t.equal(served.proc.exitCode, null, "pi9 serve is still running");
  t.notMatch(served.stderr(), /internal error|Uncaught|TypeError|RangeError|ReferenceError/, "and logged no internal error");
  t.equal(await served.stop(), 0, "it shuts down cleanly on SIGTERM");
});
