// The codec: every message of every dialect survives encode → decode, and a
// few messages have exactly the byte layout the 9P manuals (intro(5),
// version(5), walk(5), read(5), stat(5)), the 9P2000.u draft and the
// 9P2000.L protocol description (diod's protocol.md, Linux's 9p.h) give.

import t, { Test } from "tap";
import {
  ALL_MESSAGES, decode, decodeDirents, decodeStats, DecodeError, encode, encodeStat, messageInDialect, Msg,
  rreadHeader, Stat, statLen, writeDirent, direntLen,
} from "../src/ninep/codec.js";
import { Dialect, MT, MsgName, NOFID, NOTAG } from "../src/ninep/constants.js";
import { Rng, seedFromEnv } from "./helpers/rand.js";
import { genMsg as genMsgFrom } from "./helpers/gen.js";

const DIALECTS: Dialect[] = ["9P2000", "9P2000.u", "9P2000.L"];

/** The error fn throws, checked to be a DecodeError. */
function decodeErr(t: Test, fn: () => unknown, what: string): DecodeError | undefined {
  try { fn(); } catch (e) { t.ok(e instanceof DecodeError, `${what}: DecodeError (${(e as Error).message})`); return e as DecodeError; }
  t.fail(`${what}: did not throw`);
  return undefined;
}
const seed = seedFromEnv();
t.comment(`codec seed ${seed} (replay with PI9_SEED=${seed})`);
const rng = new Rng(seed);

// ---- an independent little-endian byte builder for the hand-checked layouts ----

class B {
  parts: Buffer[] = [];
  u8(v: number) { this.parts.push(Buffer.from([v])); return this; }
  u16(v: number) { const b = Buffer.alloc(2); b.writeUInt16LE(v); this.parts.push(b); return this; }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.parts.push(b); return this; }
  u64(v: bigint | number) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.parts.push(b); return this; }
  s(v: string) { const b = Buffer.from(v, "utf8"); this.u16(b.length); this.parts.push(b); return this; }
  raw(b: Buffer) { this.parts.push(b); return this; }
  qid(type: number, version: number, path: bigint | number) { return this.u8(type).u32(version).u64(path); }
  body() { return Buffer.concat(this.parts); }
  /** size[4] type[1] tag[2] + body */
  frame(type: number, tag: number) {
    const body = this.body();
    const h = Buffer.alloc(7);
    h.writeUInt32LE(7 + body.length); h[4] = type; h.writeUInt16LE(tag, 5);
    return Buffer.concat([h, body]);
  }
}

// ---- value generation from the spec table (test/helpers/gen.ts) ----

const genMsg = (name: MsgName, d: Dialect) => genMsgFrom(rng, name, d);

/** Make Buffers comparable by value. */
function plain(m: unknown): unknown {
  if (Buffer.isBuffer(m)) return `<${m.toString("hex")}>`;
  if (Array.isArray(m)) return m.map(plain);
  if (m && typeof m === "object") return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, plain(v)]));
  return m;
}

t.test("every message of every dialect round-trips", async (t) => {
  let n = 0;
  for (const d of DIALECTS) {
    for (const name of ALL_MESSAGES) {
      if (!messageInDialect(name, d)) continue;
      for (let i = 0; i < 25; i++) {
        const m = genMsg(name, d);
        const f = encode(m, d);
        t.equal(f.readUInt32LE(0), f.length, `${d} ${name}: size field is the frame length`);
        t.equal(f[4], MT[name], `${d} ${name}: type byte`);
        t.equal(f.readUInt16LE(5), m.tag, `${d} ${name}: tag`);
        const back = decode(f, d);
        t.same(plain(back), plain(m), `${d} ${name} round-trips`);
        // Re-encoding what was decoded gives the same bytes.
        t.ok(encode(back, d).equals(f), `${d} ${name}: re-encoding is byte-identical`);
        n++;
      }
    }
  }
  t.ok(n > 1000, `round-tripped ${n} messages`);
});

t.test("every dialect has the messages its clients send", async (t) => {
  const has = (d: Dialect) => ALL_MESSAGES.filter((m) => messageInDialect(m, d));
  const base = ["Tversion", "Tauth", "Tattach", "Tflush", "Twalk", "Tread", "Twrite", "Tclunk", "Tremove"];
  for (const d of DIALECTS) for (const m of base) t.ok(has(d).includes(m as MsgName), `${d} has ${m}`);
  for (const m of ["Topen", "Tcreate", "Tstat", "Twstat", "Rerror"]) {
    t.ok(has("9P2000").includes(m as MsgName) && has("9P2000.u").includes(m as MsgName), `9P2000 and .u have ${m}`);
    t.notOk(has("9P2000.L").includes(m as MsgName), `.L has no ${m}`);
  }
  for (const m of ["Tlopen", "Tgetattr", "Tsetattr", "Treaddir", "Tstatfs", "Txattrwalk", "Rlerror", "Tlock"]) {
    t.ok(has("9P2000.L").includes(m as MsgName), `.L has ${m}`);
    t.notOk(has("9P2000.u").includes(m as MsgName), `.u has no ${m}`);
  }
  t.notOk(has("9P2000.L").includes("Terror"), "Terror is never sent");
});

t.test("64-bit edges: 2^53-1 is exact, ~0 saturates instead of wrapping to 0", async (t) => {
  const big = Number.MAX_SAFE_INTEGER;
  let f = encode({ type: "Tread", tag: 1, fid: 2, offset: big, count: 3 }, "9P2000");
  t.equal(f.readBigUInt64LE(11), BigInt(big));
  t.equal(decode(f, "9P2000").offset, big);
  // A client sending ~0 (wstat "don't touch") and decoding it back.
  const allOnes = new B().u32(0).u64(0xffffffffffffffffn).u32(0).frame(MT.Tread, 1);
  const m = decode(allOnes, "9P2000");
  t.ok(m.offset >= 2 ** 64 - 1, "~0 decodes to (about) 2^64");
  t.ok(encode(m, "9P2000").equals(allOnes), "and encodes back to ~0, not 0");
  f = encode({ type: "Tread", tag: 1, fid: 2, offset: -5, count: 3 }, "9P2000");
  t.equal(f.readBigUInt64LE(11), 0n, "negative is clamped to 0");
});

t.test("hand-checked layouts", async (t) => {
  // version(5): size[4] Tversion tag[2] msize[4] version[s]
  t.equal(encode({ type: "Tversion", tag: NOTAG, msize: 8192, version: "9P2000" }, "9P2000").toString("hex"),
    "13000000" + "64" + "ffff" + "00200000" + "0600" + Buffer.from("9P2000").toString("hex"));

  // walk(5): size[4] Twalk tag[2] fid[4] newfid[4] nwname[2] nwname*(wname[s])
  t.equal(encode({ type: "Twalk", tag: 1, fid: 1, newfid: 2, wnames: ["mnt", "xenith"] }, "9P2000.L").toString("hex"),
    "1e000000" + "6e" + "0100" + "01000000" + "02000000" + "0200" + "0300" + "6d6e74" + "0600" + "78656e697468");
  t.same(decode(Buffer.from("1e0000006e0100010000000200000002000300" + "6d6e74" + "0600" + "78656e697468", "hex"), "9P2000"),
    { type: "Twalk", tag: 1, fid: 1, newfid: 2, wnames: ["mnt", "xenith"] });

  // read(5): size[4] Rread tag[2] count[4] data[count]
  const rread = encode({ type: "Rread", tag: 5, data: Buffer.from("hi\n") }, "9P2000");
  t.equal(rread.toString("hex"), "0e000000" + "75" + "0500" + "03000000" + "68690a");
  t.ok(Buffer.concat([rreadHeader(5, 3), Buffer.from("hi\n")]).equals(rread), "rreadHeader matches a whole Rread");
  t.ok(Buffer.concat([rreadHeader(5, 3, MT.Rreaddir), Buffer.from("abc")])
    .equals(encode({ type: "Rreaddir", tag: 5, data: Buffer.from("abc") }, "9P2000.L")), "rreadHeader for Rreaddir");

  // Twrite: size[4] Twrite tag[2] fid[4] offset[8] count[4] data[count]
  t.ok(encode({ type: "Twrite", tag: 9, fid: 3, offset: 0x100000001, data: Buffer.from("x\n") }, "9P2000.L")
    .equals(new B().u32(3).u64(0x100000001).u32(2).raw(Buffer.from("x\n")).frame(118, 9)));

  // Tattach: 9P2000 has no n_uname; .u and .L add n_uname[4].
  const att = { type: "Tattach", tag: 0, fid: 0, afid: NOFID, uname: "glenda", aname: "/mnt/xenith", n_uname: 1000 } as Msg;
  t.ok(encode(att, "9P2000").equals(new B().u32(0).u32(NOFID).s("glenda").s("/mnt/xenith").frame(104, 0)), "9P2000 Tattach");
  t.ok(encode(att, "9P2000.u").equals(new B().u32(0).u32(NOFID).s("glenda").s("/mnt/xenith").u32(1000).frame(104, 0)), ".u Tattach");
  t.ok(encode(att, "9P2000.L").equals(new B().u32(0).u32(NOFID).s("glenda").s("/mnt/xenith").u32(1000).frame(104, 0)), ".L Tattach");

  // Errors: Rerror ename[s] (9P2000), ename[s] errno[4] (.u), Rlerror ecode[4] (.L).
  t.equal(encode({ type: "Rerror", tag: 3, ename: "no", errno: 2 }, "9P2000").toString("hex"), "0b000000" + "6b" + "0300" + "0200" + "6e6f");
  t.equal(encode({ type: "Rerror", tag: 3, ename: "no", errno: 2 }, "9P2000.u").toString("hex"), "0f000000" + "6b" + "0300" + "0200" + "6e6f" + "02000000");
  t.equal(encode({ type: "Rlerror", tag: 3, ecode: 61 }, "9P2000.L").toString("hex"), "0b000000" + "07" + "0300" + "3d000000");

  // Rgetattr (9P2000.L): valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8] blksize[8]
  // blocks[8] atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8] ctime_sec[8] ctime_nsec[8]
  // btime_sec[8] btime_nsec[8] gen[8] data_version[8]
  const ga: Msg = {
    type: "Rgetattr", tag: 7, valid: 0x7ff, qid: { type: 0, version: 0, path: 42 }, mode: 0o100644, uid: 1000, gid: 100,
    nlink: 1, rdev: 0, size: 12, blksize: 4096, blocks: 1, atime_sec: 1700000000, atime_nsec: 5,
    mtime_sec: 1700000001, mtime_nsec: 6, ctime_sec: 1700000002, ctime_nsec: 7, btime_sec: 0, btime_nsec: 0, gen: 0, data_version: 0,
  };
  const gaBytes = new B().u64(0x7ff).qid(0, 0, 42).u32(0o100644).u32(1000).u32(100).u64(1).u64(0).u64(12).u64(4096).u64(1)
    .u64(1700000000).u64(5).u64(1700000001).u64(6).u64(1700000002).u64(7).u64(0).u64(0).u64(0).u64(0).frame(25, 7);
  t.equal(gaBytes.length, 7 + 8 + 13 + 12 + 15 * 8, "Rgetattr is 160 bytes");
  t.ok(encode(ga, "9P2000.L").equals(gaBytes), "Rgetattr layout");
  t.same(decode(gaBytes, "9P2000.L"), ga);

  // Tsetattr as Linux sends it for `echo x > ctl`: valid=0x68 (SIZE|MTIME|CTIME), size 0.
  const sa = new B().u32(4).u32(0x68).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0).frame(26, 2);
  t.same(decode(sa, "9P2000.L"), { type: "Tsetattr", tag: 2, fid: 4, valid: 0x68, mode: 0, uid: 0, gid: 0, size: 0,
    atime_sec: 0, atime_nsec: 0, mtime_sec: 0, mtime_nsec: 0 });

  // Rstatfs: type[4] bsize[4] blocks[8] bfree[8] bavail[8] files[8] ffree[8] fsid[8] namelen[4]
  const sf = encode({ type: "Rstatfs", tag: 1, fstype: 0x70693921, bsize: 4096, blocks: 1, bfree: 2, bavail: 3, files: 4, ffree: 5, fsid: 6, namelen: 255 }, "9P2000.L");
  t.ok(sf.equals(new B().u32(0x70693921).u32(4096).u64(1).u64(2).u64(3).u64(4).u64(5).u64(6).u32(255).frame(9, 1)), "Rstatfs layout");

  // Tfsync: datasync[4] is optional on the wire (older kernels omit it).
  t.same(decode(new B().u32(7).frame(50, 1), "9P2000.L"), { type: "Tfsync", tag: 1, fid: 7, datasync: 0 });
  t.same(decode(new B().u32(7).u32(1).frame(50, 1), "9P2000.L"), { type: "Tfsync", tag: 1, fid: 7, datasync: 1 });
});

t.test("stat layouts (stat(5) and 9P2000.u)", async (t) => {
  const st: Stat = {
    type: 0, dev: 0, qid: { type: 0, version: 0, path: 9 }, mode: 0o444, atime: 1700000000, mtime: 1700000001,
    length: 12, name: "index", uid: "u", gid: "g", muid: "u",
  };
  // stat: size[2] type[2] dev[4] qid[13] mode[4] atime[4] mtime[4] length[8] name[s] uid[s] gid[s] muid[s]
  const body = new B().u16(0).u32(0).qid(0, 0, 9).u32(0o444).u32(1700000000).u32(1700000001).u64(12)
    .s("index").s("u").s("g").s("u").body();
  t.equal(body.length, 55);
  const statBytes = Buffer.concat([new B().u16(body.length).body(), body]);
  t.ok(encodeStat(st, "9P2000").equals(statBytes), "9P2000 stat layout");
  t.equal(statLen(st, "9P2000"), 57);
  // Rstat carries the stat as a counted byte string: nstat[2] stat[nstat].
  const rstat = encode({ type: "Rstat", tag: 4, stat: st }, "9P2000");
  t.ok(rstat.equals(new B().u16(57).raw(statBytes).frame(125, 4)), "9P2000 Rstat = nstat[2] + stat");
  t.equal(rstat.length, 66);
  t.same(decode(rstat, "9P2000").stat, st);

  // .u appends extension[s] n_uid[4] n_gid[4] n_muid[4].
  const stu: Stat = { ...st, extension: "", n_uid: 1000, n_gid: 100, n_muid: 1000 };
  const bodyU = Buffer.concat([body, new B().s("").u32(1000).u32(100).u32(1000).body()]);
  const statU = Buffer.concat([new B().u16(bodyU.length).body(), bodyU]);
  t.equal(bodyU.length, 69);
  t.ok(encodeStat(stu, "9P2000.u").equals(statU), ".u stat layout");
  const rstatU = encode({ type: "Rstat", tag: 4, stat: stu }, "9P2000.u");
  t.ok(rstatU.equals(new B().u16(71).raw(statU).frame(125, 4)), ".u Rstat");
  t.same(decode(rstatU, "9P2000.u").stat, stu);

  // Twstat "don't touch" values, as Linux sends for `echo x > ctl` (length 0, mtime now).
  const dont: Stat = { type: 0xffff, dev: 0xffffffff, qid: { type: 0xff, version: 0xffffffff, path: 2 ** 64 }, mode: 0xffffffff,
    atime: 0xffffffff, mtime: 1700000000, length: 0, name: "", uid: "", gid: "", muid: "" };
  const tw = encode({ type: "Twstat", tag: 1, fid: 3, stat: dont }, "9P2000");
  const dontBody = new B().u16(0xffff).u32(0xffffffff).qid(0xff, 0xffffffff, 0xffffffffffffffffn).u32(0xffffffff)
    .u32(0xffffffff).u32(1700000000).u64(0).s("").s("").s("").s("").body();
  t.ok(tw.equals(new B().u32(3).u16(dontBody.length + 2).u16(dontBody.length).raw(dontBody).frame(126, 1)), "Twstat with ~0 qid path");

  // A directory read is a sequence of stats.
  const two = Buffer.concat([encodeStat(st, "9P2000"), encodeStat({ ...st, name: "log" }, "9P2000")]);
  t.same(decodeStats(two, "9P2000").map((s) => s.name), ["index", "log"]);
  const twoU = Buffer.concat([encodeStat(stu, "9P2000.u"), encodeStat({ ...stu, name: "log" }, "9P2000.u")]);
  t.same(decodeStats(twoU, "9P2000.u"), [stu, { ...stu, name: "log" }]);
  decodeErr(t, () => decodeStats(two.subarray(0, two.length - 1), "9P2000"), "a cut stat");
});

t.test("Rreaddir dirents: qid[13] offset[8] type[1] name[s]", async (t) => {
  const es = [
    { qid: { type: 0x80, version: 0, path: 1 }, offset: 1, type: 4, name: "." },
    { qid: { type: 0x80, version: 0, path: 0 }, offset: 2, type: 4, name: ".." },
    { qid: { type: 0, version: 0, path: 77 }, offset: 3, type: 8, name: "index" },
  ];
  const buf = Buffer.alloc(es.reduce((n, e) => n + direntLen(e.name), 0));
  let off = 0;
  for (const e of es) off = writeDirent(buf, off, e);
  t.equal(off, buf.length);
  const want = new B().qid(0x80, 0, 1).u64(1).u8(4).s(".").qid(0x80, 0, 0).u64(2).u8(4).s("..").qid(0, 0, 77).u64(3).u8(8).s("index").body();
  t.ok(buf.equals(want), "dirent layout");
  t.equal(direntLen("index"), 13 + 8 + 1 + 2 + 5);
  t.same(decodeDirents(buf), es);
  const r = encode({ type: "Rreaddir", tag: 2, data: buf }, "9P2000.L");
  t.ok(r.equals(new B().u32(buf.length).raw(buf).frame(41, 2)), "Rreaddir = count[4] + dirents");
  decodeErr(t, () => decodeDirents(buf.subarray(0, buf.length - 2)), "a cut dirent");
});

t.test("decode rejects malformed frames with DecodeError", async (t) => {
  const good = encode({ type: "Twalk", tag: 1, fid: 1, newfid: 2, wnames: ["mnt"] }, "9P2000");
  decodeErr(t, () => decode(good.subarray(0, 5), "9P2000"), "shorter than the header");
  decodeErr(t, () => decode(good.subarray(0, good.length - 1), "9P2000"), "size does not match");
  const cut = Buffer.from(good.subarray(0, good.length - 1)); cut.writeUInt32LE(cut.length);
  const e = decodeErr(t, () => decode(cut, "9P2000"), "body runs past the frame");
  t.equal(e?.tag, 1, "a body error keeps the tag, so the server can answer it");
  t.equal(e?.msgType, MT.Twalk);
  const u = decodeErr(t, () => decode(new B().u32(0).frame(200, 9), "9P2000"), "unknown type");
  t.ok(u?.tag === 9 && u?.msgType === 200, "unknown type names its tag and type");
  // Strings with invalid UTF-8 decode (with U+FFFD), they do not throw.
  const bad = new B().u32(1).u32(2).u16(1).u16(2).raw(Buffer.from([0xff, 0xfe])).frame(MT.Twalk, 3);
  t.same(decode(bad, "9P2000").wnames, ["\ufffd\ufffd"]);
});

t.test("encode refuses what the wire cannot carry", async (t) => {
  t.throws(() => encode({ type: "Rerror", tag: 1, ename: "x".repeat(70000) }, "9P2000"), RangeError);
  t.throws(() => encode({ type: "Twalk", tag: 1, fid: 1, newfid: 1, wnames: new Array(70000).fill("") }, "9P2000"), RangeError);
  t.throws(() => encodeStat({ type: 0, dev: 0, qid: { type: 0, version: 0, path: 0 }, mode: 0, atime: 0, mtime: 0, length: 0,
    name: "n".repeat(30000), uid: "u".repeat(30000), gid: "g".repeat(10000), muid: "" }, "9P2000"), RangeError);
});
