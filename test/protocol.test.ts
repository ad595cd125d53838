// Conformance of the server over a raw connection: every request built with
// the codec and sent as a client would (Linux v9fs, plan9port, diod's tools),
// every reply checked field by field. DESIGN.md sections 2.2 and 4 are the
// contract.

import t, { Test } from "tap";
import { decodeDirents, decodeStats, encode, Msg, Stat } from "../src/ninep/codec.js";
import { Dialect, E, MAX_MSIZE, NOFID, NONUNAME, NOTAG, QTAUTH, QTDIR } from "../src/ninep/constants.js";
import { PI9_FSTYPE } from "../src/ninep/server.js";
import { Handle, Node } from "../src/fs/node.js";
import { startInProcess, RawConn, until, wellBehaved, InProcess } from "./helpers/raw9p.js";

const L_O_WRONLY = 0o1, L_O_RDWR = 0o2, L_O_CREAT = 0o100, L_O_LARGEFILE = 0o100000, L_O_APPEND = 0o2000;

/** The errno a reply carries (.L Rlerror, .u Rerror), or the 9P2000 string. */
function errOf(m: Msg): number | string | null {
  if (m.type === "Rlerror") return m.ecode;
  if (m.type === "Rerror") return m.errno ?? m.ename;
  return null;
}

async function session(s: InProcess, dialect: Dialect, aname = "", msize = 65536) {
  const c = await s.dial();
  const v = await c.version(dialect, msize);
  if (v.version !== dialect) throw new Error(`version ${dialect}: ${JSON.stringify(v)}`);
  const a = await c.attach(0, aname);
  if (a.type !== "Rattach") throw new Error(`attach ${aname}: ${JSON.stringify(a)}`);
  return c;
}

t.test("version negotiation", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const c = await s.dial();
  let v = await c.version("9P2000.L", 4 << 20);
  t.same(v, { type: "Rversion", tag: NOTAG, msize: MAX_MSIZE, version: "9P2000.L" }, "msize clamped to 1 MiB");
  v = await c.version("9P2000.L", 131096);
  t.equal(v.msize, 131096, "a smaller client msize is kept (Linux 6.12 default)");
  v = await c.version("9P2000.u", 8192);
  t.same([v.version, v.msize], ["9P2000.u", 8192]);
  v = await c.version("9P2000", 8192);
  t.same([v.version, v.msize], ["9P2000", 8192], "plan9port's msize");
  v = await c.version("9P2000.foo", 8192);
  t.equal(v.version, "9P2000", "an unknown 9P2000.x extension falls back to 9P2000 (version(5))");
  v = await c.version("9P2000.L.x", 8192);
  t.equal(v.version, "9P2000", "9P2000.L.x is not 9P2000.L");
  v = await c.version("9P2000xyz", 8192);
  t.equal(v.version, "unknown", "no period: not a 9P2000 version");
  v = await c.version("NFSv4", 8192);
  t.equal(v.version, "unknown", "a non-9P version gets Rversion unknown, not Rerror");
  t.equal(v.type, "Rversion");
  c.dialect = "9P2000";
  const a = await c.attach(0, "");
  t.equal(a.type, "Rerror", "no attach without a negotiated version");
  // A version renegotiation clunks every fid.
  await c.version("9P2000.L", 8192);
  t.equal((await c.attach(0, "")).type, "Rattach");
  await c.version("9P2000.L", 8192);
  t.equal((await c.rpc({ type: "Tclunk", tag: 2, fid: 0 })).type, "Rlerror", "fid 0 is gone after Tversion");
  t.equal((await c.attach(0, "")).type, "Rattach", "and can be attached again");
  // A frame larger than the negotiated msize ends the connection.
  c.send({ type: "Twrite", tag: 3, fid: 0, offset: 0, data: Buffer.alloc(8192) });
  await c.done;
  t.ok(c.closed, "oversized frame closes the connection");
  t.equal(await wellBehaved(s.sock), "", "the server still serves others");
});

t.test("Tauth without a server token is ENOENT in every dialect", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  for (const d of ["9P2000.L", "9P2000.u", "9P2000"] as Dialect[]) {
    const c = await s.dial();
    await c.version(d, 8192);
    const r = await c.rpc({ type: "Tauth", tag: 5, afid: 9, uname: "glenda", aname: "", n_uname: NONUNAME });
    if (d === "9P2000.L") t.same(r, { type: "Rlerror", tag: 5, ecode: E.ENOENT }, ".L: Rlerror 2 (diod's tools go on)");
    else if (d === "9P2000.u") t.same([r.type, r.errno], ["Rerror", E.ENOENT], ".u: errno 2");
    else t.match(r, { type: "Rerror", ename: /authentication not required/ }, "9P2000: a string");
    t.equal((await c.attach(0, "")).type, "Rattach", `${d}: attach goes on`);
    await c.close();
  }
});

t.test("attach: aname subtrees", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const c = await s.dial();
  await c.version("9P2000.L");
  const root = await c.attach(0, "");
  const x = await c.attach(1, "/mnt/xenith");
  t.equal(x.type, "Rattach");
  t.equal(x.qid.type, QTDIR);
  t.not(x.qid.path, root.qid.path, "a different root");
  let w = await c.rpc({ type: "Twalk", tag: 2, fid: 1, newfid: 2, wnames: ["index"] });
  t.equal(w.wqids.length, 1, "index is at the top of /mnt/xenith");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 1, newfid: 3, wnames: ["..", "..", "mnt"] });
  t.same([w.type, w.wqids?.length], ["Rwalk", 2], "`..` stops at the attach root: there is no mnt inside /mnt/xenith");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 1, newfid: 3, wnames: ["..", ".."] });
  t.same(w.wqids.map((q: { path: number }) => q.path), [x.qid.path, x.qid.path], "`..` at the root is the root");
  t.equal((await c.attach(4, "mnt/xenith")).type, "Rattach", "relative aname");
  t.equal((await c.attach(5, "/")).qid.path, root.qid.path, "/ is the whole tree");
  const bad = await c.attach(6, "/mnt/nope");
  t.same([bad.type, bad.ecode], ["Rlerror", E.ENOENT], "unknown subtree");
  const file = await c.attach(6, "/mnt/xenith/index");
  t.equal(file.type, "Rlerror", "a file is no tree");
  t.equal((await c.attach(0, "")).type, "Rlerror", "attaching an fid in use is an error");
  await c.close();
});

t.test("token: aname token=<t> and Tauth", async (t) => {
  const s = await startInProcess({ token: "sekrit" });
  t.teardown(() => s.close());
  const c = await s.dial();
  await c.version("9P2000.L");
  let a = await c.attach(0, "");
  t.same([a.type, a.ecode], ["Rlerror", E.EACCES], "no token: refused");
  a = await c.attach(0, "token=wrong");
  t.same([a.type, a.ecode], ["Rlerror", E.EACCES], "wrong token: refused");
  a = await c.attach(0, "token=sekrit");
  t.equal(a.type, "Rattach", "token in aname");
  a = await c.attach(1, "token=sekrit/mnt/xenith");
  t.equal(a.type, "Rattach", "token and subtree");
  t.equal((await c.rpc({ type: "Twalk", tag: 2, fid: 1, newfid: 9, wnames: ["index"] })).wqids.length, 1, "subtree root");

  // Tauth: write the token to the auth fid, then attach with it.
  const r = await c.rpc({ type: "Tauth", tag: 3, afid: 10, uname: "test", aname: "", n_uname: NONUNAME });
  t.equal(r.type, "Rauth");
  t.equal(r.aqid.type, QTAUTH);
  // The auth fid is no way into the tree.
  const sneak = await c.rpc({ type: "Twalk", tag: 3, fid: 10, newfid: 11, wnames: ["mnt"] });
  t.equal(sneak.type, "Rlerror", "an auth fid cannot be walked into the tree");
  const clone = await c.rpc({ type: "Twalk", tag: 3, fid: 10, newfid: 11, wnames: [] });
  if (clone.type === "Rwalk") {
    const rd = await c.rpc({ type: "Treaddir", tag: 3, fid: 11, offset: 0, count: 4096 });
    t.equal(rd.type, "Rlerror", "a clone of an auth fid lists nothing");
    const op = await c.rpc({ type: "Tlopen", tag: 3, fid: 11, flags: 0 });
    t.equal(op.type, "Rlerror", "nor opens");
    const wk = await c.rpc({ type: "Twalk", tag: 3, fid: 11, newfid: 12, wnames: ["mnt"] });
    t.equal(wk.type, "Rlerror", "nor walks");
  } else t.equal(clone.type, "Rlerror");
  const op = await c.rpc({ type: "Tlopen", tag: 3, fid: 10, flags: 0 });
  t.equal(op.type, "Rlerror", "an auth fid cannot be opened");
  t.equal((await c.rpc({ type: "Twrite", tag: 3, fid: 10, offset: 0, data: Buffer.from("sekrit\n") })).count, 7);
  a = await c.rpc({ type: "Tattach", tag: 4, fid: 20, afid: 10, uname: "test", aname: "", n_uname: NONUNAME });
  t.equal(a.type, "Rattach", "attach through the auth fid");
  const r2 = await c.rpc({ type: "Tauth", tag: 3, afid: 30, uname: "test", aname: "", n_uname: NONUNAME });
  t.equal(r2.type, "Rauth");
  await c.rpc({ type: "Twrite", tag: 3, fid: 30, offset: 0, data: Buffer.from("nope") });
  a = await c.rpc({ type: "Tattach", tag: 4, fid: 31, afid: 30, uname: "test", aname: "", n_uname: NONUNAME });
  t.same([a.type, a.ecode], ["Rlerror", E.EACCES], "wrong token through Tauth");
  // An auth fid does not grow without bound.
  let last: Msg | null = null;
  for (let i = 0; i < 20; i++) last = await c.rpc({ type: "Twrite", tag: 3, fid: 30, offset: 0, data: Buffer.alloc(8000, 0x61) });
  t.equal(last!.type, "Rlerror", "an auth fid refuses megabytes of token");
  await c.close();
  t.same(s.warnings, [], "no internal errors");
});

t.test("walk semantics", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const c = await session(s, "9P2000.L");
  let w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: ["mnt", "nope", "x"] });
  t.equal(w.type, "Rwalk", "a partial walk is no error");
  t.equal(w.wqids.length, 1, "it returns the qids up to the failure");
  let cl = await c.rpc({ type: "Tclunk", tag: 2, fid: 1 });
  t.same([cl.type, cl.ecode], ["Rlerror", E.EBADF], "and creates no newfid");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: ["nope"] });
  t.same([w.type, w.ecode], ["Rlerror", E.ENOENT], "failing on the first name is an error");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [] });
  t.same([w.type, w.wqids.length], ["Rwalk", 0], "zero names clones");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 1, newfid: 1, wnames: ["mnt", "xenith"] });
  t.same([w.type, w.wqids.length], ["Rwalk", 2], "newfid = fid with several names");
  const ga = await c.rpc({ type: "Tgetattr", tag: 2, fid: 1, mask: 0x7ff });
  t.equal(ga.qid.path, w.wqids[1].path, "fid moved to /mnt/xenith");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 1, newfid: 1, wnames: ["index", "x"] });
  t.equal(w.wqids.length, 1, "a partial walk with newfid = fid …");
  t.equal((await c.rpc({ type: "Tgetattr", tag: 2, fid: 1, mask: 0x7ff })).qid.path, ga.qid.path, "… leaves fid where it was");
  const sixteen = Array.from({ length: 16 }, (_, i) => (i % 2 ? ".." : "mnt"));
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 2, wnames: sixteen });
  t.same([w.type, w.wqids.length], ["Rwalk", 16], "16 names are allowed");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 3, wnames: [...sixteen, "mnt"] });
  t.same([w.type, w.ecode], ["Rlerror", E.EINVAL], "17 names are an error");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 2, wnames: [] });
  t.same([w.type, w.ecode], ["Rlerror", E.EBADF], "newfid in use");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 5, wnames: ["mnt", "xenith", "index", "x"] });
  t.same([w.type, w.wqids.length], ["Rwalk", 3], "walking through a file stops there");
  await c.openPath(6, 0, ["mnt", "xenith", "index"]);
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 6, newfid: 6, wnames: [] });
  t.equal(w.type, "Rlerror", "an open fid cannot be walked in place");
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 6, newfid: 7, wnames: [] });
  t.same([w.type, w.wqids.length], ["Rwalk", 0], "but may be cloned to a new fid, as diod allows (diodls -l does it)");
  const rd = await c.rpc({ type: "Tread", tag: 2, fid: 7, offset: 0, count: 10 });
  t.equal(rd.type, "Rlerror", "the clone starts unopened");
  await c.rpc({ type: "Tclunk", tag: 2, fid: 7 });
  w = await c.rpc({ type: "Twalk", tag: 2, fid: 99, newfid: 7, wnames: [] });
  t.same([w.type, w.ecode], ["Rlerror", E.EBADF], "unknown fid");
  cl = await c.rpc({ type: "Tclunk", tag: 2, fid: 12345 });
  t.same([cl.type, cl.ecode], ["Rlerror", E.EBADF], "clunk of a fid that never existed: an error, not a crash");
  t.equal((await c.rpc({ type: "Tclunk", tag: 2, fid: 2 })).type, "Rclunk");
  t.equal((await c.rpc({ type: "Tclunk", tag: 2, fid: 2 })).type, "Rlerror", "double clunk");
  await c.close();
  t.same(s.warnings, []);
});

t.test("errors per dialect: Rlerror only on .L, strings on 9P2000, errno on .u", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  for (const d of ["9P2000.L", "9P2000.u", "9P2000"] as Dialect[]) {
    const c = await session(s, d, "", 8192);
    const rs = [
      await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: ["nope"] }),
      await c.rpc({ type: "Tclunk", tag: 3, fid: 77 }),
      await c.rpc({ type: "Tread", tag: 4, fid: 0, offset: 0, count: 10 }),
    ];
    for (const r of rs) {
      if (d === "9P2000.L") t.equal(r.type, "Rlerror", `.L ${r.tag}: Rlerror`);
      else {
        t.equal(r.type, "Rerror", `${d}: Rerror`);
        t.ok(typeof r.ename === "string" && r.ename.length > 0, `${d}: a message: ${r.ename}`);
        if (d === "9P2000.u") t.ok(r.errno > 0, ".u: errno"); else t.equal(r.errno, undefined, "9P2000: no errno");
      }
    }
    t.same(rs.map(errOf), d === "9P2000" ? rs.map((r) => r.ename) : [E.ENOENT, E.EBADF, E.EBADF]);
    // A 9P2000 Rerror is exactly size[4] type[1] tag[2] ename[s].
    if (d === "9P2000") t.equal(encode(rs[0], "9P2000").length, 7 + 2 + Buffer.byteLength(rs[0].ename));
    // An R-message sent as a request, and a .L message on 9P2000, are answered with an error.
    const rr = await c.rpc({ type: "Rclunk", tag: 5 });
    t.equal(rr.type, d === "9P2000.L" ? "Rlerror" : "Rerror", "an R-message as a request");
    await c.close();
  }
  const c = await session(s, "9P2000", "", 8192);
  c.dialect = "9P2000.L";
  c.send({ type: "Tgetattr", tag: 6, fid: 0, mask: 0x7ff });
  c.dialect = "9P2000";
  t.equal((await c.reply(6)).type, "Rerror", "Tgetattr is no 9P2000 request");
  // A very long name comes back as a bounded error string, not a crash.
  const r = await c.rpc({ type: "Twalk", tag: 7, fid: 0, newfid: 1, wnames: ["n".repeat(8000)] });
  t.equal(r.type, "Rerror");
  t.ok(Buffer.byteLength(r.ename) <= 1024, "error strings are bounded");
  await c.close();
  const big = await session(s, "9P2000.u", "", MAX_MSIZE);
  const r2 = await big.rpc({ type: "Twalk", tag: 7, fid: 0, newfid: 1, wnames: ["n".repeat(65535)] });
  t.same([r2.type, r2.errno], ["Rerror", E.ENOENT], "a 64 KiB name: the error string is cut, not the server");
  t.equal(await wellBehaved(s.sock), "");
  await big.close();
  t.same(s.warnings, []);
});

t.test("Tflush", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const c = await session(s, "9P2000.L", "/mnt/xenith", 131072);
  t.same(await c.rpc({ type: "Tflush", tag: 3, oldtag: 999 }), { type: "Rflush", tag: 3 }, "unknown tag: Rflush");
  t.same(await c.rpc({ type: "Tflush", tag: 3, oldtag: 3 }), { type: "Rflush", tag: 3 }, "flush of itself: Rflush");
  await c.openPath(1, 0, ["event"]);
  c.send({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 8192 });
  await c.sync();
  t.notOk(c.answered(10), "the read blocks");
  t.equal(s.ns.xenith.events.readers, 1);
  t.same(await c.rpc({ type: "Tflush", tag: 11, oldtag: 10 }), { type: "Rflush", tag: 11 }, "Rflush at once");
  s.ns.xenith.events.publish("after flush");
  const r = await c.rpc({ type: "Tread", tag: 12, fid: 1, offset: 0, count: 8192 });
  t.equal(r.data.toString(), "after flush\n", "a later read works and sees the event");
  await c.sync();
  t.notOk(c.answered(10), "the flushed tag is never answered");
  // Tflush then Tclunk, as Linux does on a fatal signal.
  c.send({ type: "Tread", tag: 13, fid: 1, offset: 0, count: 8192 });
  c.send({ type: "Tflush", tag: 14, oldtag: 13 });
  c.send({ type: "Tclunk", tag: 15, fid: 1 });
  t.equal((await c.reply(14)).type, "Rflush");
  t.equal((await c.reply(15)).type, "Rclunk");
  await c.sync();
  t.notOk(c.answered(13), "never answered");
  t.equal(s.ns.xenith.events.readers, 0, "the clunk released the cursor");
  // Flushing a tag whose reply was already sent still gets Rflush, and the tag may be reused.
  await c.rpc({ type: "Tstat", tag: 16, fid: 0 });
  t.equal((await c.rpc({ type: "Tflush", tag: 17, oldtag: 16 })).type, "Rflush");
  t.equal((await c.rpc({ type: "Tgetattr", tag: 16, fid: 0, mask: 1 })).type, "Rgetattr", "tag reused after its reply");
  await c.close();
  // Tflush before version.
  const c2 = await s.dial();
  t.same(await c2.rpc({ type: "Tflush", tag: 1, oldtag: 2 }), { type: "Rflush", tag: 1 }, "before Tversion");
  await c2.close();
  t.same(s.warnings, []);
});

t.test("stream follow-up rule (src/fs/stream.ts, DESIGN.md 2.2)", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const ev = s.ns.xenith.events;

  // Linux v9fs: msize 131072, a 4 KiB reader.
  const c = await session(s, "9P2000.L", "/mnt/xenith", 131072);
  await c.openPath(1, 0, ["event"]);
  ev.publish("one");
  let r = await c.rpc({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 4096 });
  t.equal(r.data.toString(), "one\n", "a read returns the waiting line");
  r = await c.rpc({ type: "Tread", tag: 11, fid: 1, offset: 4, count: 4092 });
  t.equal(r.data.length, 0, "the continuing Tread (offset+n, smaller count) gets 0 at once");
  c.send({ type: "Tread", tag: 12, fid: 1, offset: 4, count: 4092 });
  await c.sync();
  t.notOk(c.answered(12), "after the 0, the next read blocks");
  ev.publish("two");
  t.equal((await c.reply(12)).data.toString(), "two\n", "until an event arrives");

  // Not a continuation: a different offset or a count that is not smaller blocks.
  c.send({ type: "Tread", tag: 13, fid: 1, offset: 999, count: 4000 });
  await c.sync();
  t.notOk(c.answered(13), "a Tread at another offset blocks");
  ev.publish("three");
  t.equal((await c.reply(13)).data.toString(), "three\n");
  c.send({ type: "Tread", tag: 14, fid: 1, offset: 999 + 6, count: 4000 });
  await c.sync();
  t.notOk(c.answered(14), "same count is no continuation (not a kernel-sized read)");
  ev.publish("four");
  t.equal((await c.reply(14)).data.toString(), "four\n");

  // A kernel reader whose buffer is at least msize: count = msize-24 both times.
  const full = 131072 - 24;
  ev.publish("five");
  r = await c.rpc({ type: "Tread", tag: 15, fid: 1, offset: 0, count: full });
  t.equal(r.data.toString(), "five\n");
  r = await c.rpc({ type: "Tread", tag: 16, fid: 1, offset: 0, count: full });
  t.equal(r.data.length, 0, "count = msize-24 with msize > 8216: 0 at once");

  // A reply that filled the count is never followed by a 0.
  ev.publish("0123456789");
  r = await c.rpc({ type: "Tread", tag: 17, fid: 1, offset: 0, count: 4 });
  t.equal(r.data.toString(), "0123", "a line longer than count is split");
  r = await c.rpc({ type: "Tread", tag: 18, fid: 1, offset: 4, count: 3 });
  t.equal(r.data.toString(), "456", "after a full reply the next read gets data, not 0");
  r = await c.rpc({ type: "Tread", tag: 19, fid: 1, offset: 7, count: 100 });
  t.equal(r.data.toString(), "789\n");

  // Count 0 is answered at once.
  r = await c.rpc({ type: "Tread", tag: 20, fid: 1, offset: 0, count: 0 });
  t.same([r.type, r.data.length], ["Rread", 0], "a zero-count read does not block");
  await c.close();

  // plan9port: 9P2000, msize 8192, count 8168 every time: never 0, always blocks.
  const p = await session(s, "9P2000", "/mnt/xenith", 8192);
  await p.openPath(1, 0, ["event"]);
  ev.publish("a");
  r = await p.rpc({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 8168 });
  t.equal(r.data.toString(), "a\n");
  p.send({ type: "Tread", tag: 11, fid: 1, offset: 2, count: 8168 });
  await p.sync();
  t.notOk(p.answered(11), "msize 8192: the repeated msize-24 read blocks (a 0 would be EOF to plan9port)");
  ev.publish("b");
  t.equal((await p.reply(11)).data.toString(), "b\n");
  // Two reads on one open stream at once: the second is refused, the first still works.
  p.send({ type: "Tread", tag: 12, fid: 1, offset: 0, count: 8168 });
  const busy = await p.rpc({ type: "Tread", tag: 13, fid: 1, offset: 0, count: 8168 });
  t.equal(busy.type, "Rerror", "a second pending read on the same open is an error");
  ev.publish("c");
  t.equal((await p.reply(12)).data.toString(), "c\n");
  await p.close();
  await until(() => ev.readers === 0, "cursors released");
  t.same(s.warnings, []);
});

t.test("echo x > ctl, as traced (DESIGN.md 4)", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const x = s.ns.xenith;
  const w = x.createWindow("window", "start");
  const id = String(w.id);

  // 9P2000.L: Tlopen WRONLY|CREAT|LARGEFILE, Txattrwalk security.capability, Tsetattr 0x68 size 0, Twrite, Tclunk.
  const c = await session(s, "9P2000.L", "/mnt/xenith");
  t.equal((await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [id, "ctl"] })).wqids.length, 2);
  let r = await c.rpc({ type: "Tlopen", tag: 2, fid: 1, flags: L_O_WRONLY | L_O_CREAT | L_O_LARGEFILE });
  t.equal(r.type, "Rlopen", "Tlopen WRONLY|CREAT|LARGEFILE");
  t.equal(r.qid.version, 0, "synthetic files report qid.version 0");
  r = await c.rpc({ type: "Txattrwalk", tag: 2, fid: 1, newfid: 2, name: "security.capability" });
  t.same(r, { type: "Rlerror", tag: 2, ecode: E.ENODATA }, "Txattrwalk security.capability: ENODATA");
  r = await c.rpc({ type: "Tsetattr", tag: 2, fid: 1, valid: 0x68, mode: 0, uid: 0, gid: 0, size: 0,
    atime_sec: 0, atime_nsec: 0, mtime_sec: 0, mtime_nsec: 0 });
  t.equal(r.type, "Rsetattr", "Tsetattr valid=0x68 size=0 is a no-op");
  r = await c.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 0, data: Buffer.from("name linux\n") });
  t.same(r, { type: "Rwrite", tag: 2, count: 11 });
  t.equal((await c.rpc({ type: "Tclunk", tag: 2, fid: 1 })).type, "Rclunk");
  t.equal(w.name, "linux", "the command ran");
  // A bad line fails the write (EINVAL), never an Rwrite of 0.
  await c.openPath(1, 0, [id, "ctl"], "w");
  r = await c.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 0, data: Buffer.from("name ok\nbogus line\n") });
  t.same([r.type, r.ecode], ["Rlerror", E.EINVAL], "a bad ctl line fails the write");
  t.equal(w.name, "linux", "and changes nothing");
  await c.rpc({ type: "Tclunk", tag: 2, fid: 1 });
  // `>>` to body: APPEND, at the client's cached size (here a stale 3); appends anyway.
  await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [id, "body"] });
  r = await c.rpc({ type: "Tlopen", tag: 2, fid: 1, flags: L_O_WRONLY | L_O_APPEND | L_O_LARGEFILE });
  t.equal(r.type, "Rlopen");
  t.equal(r.qid.type & 0x40, 0x40, "body is append-only (QTAPPEND)");
  await c.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 0, data: Buffer.from("hello\n") });
  await c.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 3, data: Buffer.from("world\n") });
  await c.openPath(3, 0, [id, "body"]);
  t.equal((await c.rpc({ type: "Tread", tag: 2, fid: 3, offset: 0, count: 100 })).data.toString(), "hello\nworld\n",
    "writes append whatever the offset");
  // A zero-length write: Rwrite 0, nothing changes.
  const before = w.body.size();
  r = await c.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 0, data: Buffer.alloc(0) });
  t.same(r, { type: "Rwrite", tag: 2, count: 0 }, "zero-length write: Rwrite 0");
  t.equal(w.body.size(), before, "body unchanged");
  await c.rpc({ type: "Tclunk", tag: 2, fid: 1 });
  const ga = await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [id, "body"] }).then(() =>
    c.rpc({ type: "Tgetattr", tag: 2, fid: 1, mask: 0x7ff }));
  t.equal(ga.size, before, "body reports its exact, growing size");
  t.equal(ga.mode & 0o170000, 0o100000, "regular file mode");
  await c.close();

  // 9P2000 and .u: Topen OWRITE|OTRUNC (0x11), Twstat length 0 + mtime (everything else ~0), Twrite.
  for (const d of ["9P2000", "9P2000.u"] as Dialect[]) {
    const p = await session(s, d, "/mnt/xenith", 8192);
    await p.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [id, "ctl"] });
    r = await p.rpc({ type: "Topen", tag: 2, fid: 1, mode: 0x11 });
    t.equal(r.type, "Ropen", `${d}: Topen 0x11`);
    const dont: Stat = { type: 0xffff, dev: 0xffffffff, qid: { type: 0xff, version: 0xffffffff, path: 2 ** 64 },
      mode: 0xffffffff, atime: 0xffffffff, mtime: 1700000000, length: 0, name: "", uid: "", gid: "", muid: "" };
    if (d === "9P2000.u") Object.assign(dont, { extension: "", n_uid: 0xffffffff, n_gid: 0xffffffff, n_muid: 0xffffffff });
    r = await p.rpc({ type: "Twstat", tag: 2, fid: 1, stat: dont });
    t.equal(r.type, "Rwstat", `${d}: Twstat length 0 + mtime is accepted`);
    const st = await p.rpc({ type: "Tstat", tag: 2, fid: 1 });
    t.equal(st.stat.mtime, 1700000000, "the mtime was taken");
    r = await p.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 0, data: Buffer.from(`name ${d}\n`) });
    t.equal(r.type, "Rwrite");
    t.equal(w.name, d);
    // wstat that would really change something is refused.
    r = await p.rpc({ type: "Twstat", tag: 2, fid: 1, stat: { ...dont, length: 5 } });
    t.equal(r.type, "Rerror", `${d}: length 5 is refused`);
    r = await p.rpc({ type: "Twstat", tag: 2, fid: 1, stat: { ...dont, name: "other" } });
    t.equal(r.type, "Rerror", `${d}: rename is refused`);
    await p.rpc({ type: "Tclunk", tag: 2, fid: 1 });
    // `>>` on 9P2000 is Topen OWRITE (0x1) at the cached size; .u uses 0x81.
    await p.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [id, "body"] });
    r = await p.rpc({ type: "Topen", tag: 2, fid: 1, mode: d === "9P2000" ? 0x1 : 0x81 });
    t.equal(r.type, "Ropen");
    const n0 = w.body.size();
    await p.rpc({ type: "Twrite", tag: 2, fid: 1, offset: 1, data: Buffer.from("more\n") });
    t.equal(w.body.size(), n0 + 5, `${d}: appended`);
    await p.close();
  }
  t.same(s.warnings, []);
});

t.test("directory reads: 9P2000 stats and .L Treaddir", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  for (let i = 0; i < 12; i++) s.ns.xenith.createWindow("window", `w${i}`);
  const want = ["new", "index", "focus", "event", "log", ...Array.from({ length: 12 }, (_, i) => String(i + 1))].sort();

  for (const d of ["9P2000", "9P2000.u"] as Dialect[]) {
    const c = await session(s, d, "/mnt/xenith", 8192);
    await c.openPath(1, 0, []);
    let r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: 0, count: 8168 });
    const all = decodeStats(r.data, d);
    t.same(all.map((x) => x.name).sort(), want, `${d}: one read lists everything`);
    const win = all.find((x) => x.name === "1")!;
    t.ok(win.mode & 0x80000000, "a window is a directory (DMDIR)");
    t.equal(win.qid.type, QTDIR);
    if (d === "9P2000.u") t.equal(win.extension, "", ".u stat has its extension");
    const idx = all.find((x) => x.name === "index")!;
    t.equal(idx.mode & 0x80000000, 0, "index is a file");
    // Small counts: every read returns whole entries; offsets continue by bytes returned.
    const two = r.data.readUInt16LE(0) + 2 + r.data.readUInt16LE(r.data.readUInt16LE(0) + 2) + 2;
    const names: string[] = [];
    let off = 0;
    for (let i = 0; i < 50; i++) {
      r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: off, count: two + 3 });
      if (r.data.length === 0) break;
      t.ok(r.data.length <= two + 3);
      names.push(...decodeStats(r.data, d).map((x) => x.name));
      off += r.data.length;
    }
    t.same(names.sort(), want, `${d}: reading on with offsets gives every entry once`);
    // 9pfuse restarts at offset 0.
    r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: 0, count: 8168 });
    t.same(decodeStats(r.data, d).map((x) => x.name).sort(), want, `${d}: restart at 0`);
    r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: 3, count: 8168 });
    t.equal(r.type, "Rerror", `${d}: an offset inside an entry is an error`);
    r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: 0, count: 10 });
    t.equal(r.type, "Rerror", `${d}: a count too small for one entry is an error`);
    await c.close();
  }

  const c = await session(s, "9P2000.L", "/mnt/xenith", 8192);
  await c.openPath(1, 0, []);
  let r = await c.rpc({ type: "Treaddir", tag: 2, fid: 1, offset: 0, count: 8000 });
  const all = decodeDirents(r.data);
  t.same(all.slice(0, 2).map((e) => e.name), [".", ".."]);
  t.same(all.slice(2).map((e) => e.name).sort(), want, ".L: one Treaddir lists everything");
  t.same(all.map((e) => e.offset), all.map((_, i) => i + 1), "dirent offsets count up");
  t.equal(all.find((e) => e.name === "1")!.type, 4, "DT_DIR");
  t.equal(all.find((e) => e.name === "index")!.type, 8, "DT_REG");
  t.equal(all[1].qid.path, all[0].qid.path, "`..` of the attach root is itself");
  const names: string[] = [];
  let off = 0;
  for (let i = 0; i < 50; i++) {
    r = await c.rpc({ type: "Treaddir", tag: 2, fid: 1, offset: off, count: 64 });
    const es = decodeDirents(r.data);
    if (es.length === 0) break;
    names.push(...es.map((e) => e.name));
    off = es[es.length - 1].offset;
  }
  t.same(names.slice(2).sort(), want, ".L: continuing from the last dirent offset gives every entry once");
  r = await c.rpc({ type: "Treaddir", tag: 2, fid: 1, offset: 0, count: 8000 });
  t.equal(decodeDirents(r.data).length, all.length, ".L: restart at 0");
  r = await c.rpc({ type: "Treaddir", tag: 2, fid: 1, offset: 2 ** 40, count: 8000 });
  t.same([r.type, r.data.length], ["Rreaddir", 0], "an offset past the end is the end");
  r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: 0, count: 8000 });
  t.equal(r.type, "Rlerror", ".L reads directories with Treaddir only");
  await c.close();
  t.same(s.warnings, []);
});

t.test("huge counts are clamped to msize; reads of unopened fids fail", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const w = s.ns.xenith.createWindow("window", "big");
  w.append("z".repeat(100000));
  for (const d of ["9P2000.L", "9P2000"] as Dialect[]) {
    const c = await session(s, d, "/mnt/xenith", 8192);
    let r = await c.rpc({ type: "Tread", tag: 2, fid: 0, offset: 0, count: 0xffffffff });
    t.equal(r.type, d === "9P2000.L" ? "Rlerror" : "Rerror", `${d}: a fid that is not open cannot be read`);
    await c.rpc({ type: "Twalk", tag: 2, fid: 0, newfid: 1, wnames: [String(w.id), "body"] });
    r = await c.rpc({ type: "Tread", tag: 2, fid: 1, offset: 0, count: 100 });
    t.equal(r.type, d === "9P2000.L" ? "Rlerror" : "Rerror", `${d}: walked but not opened`);
    await c.openPath(2, 0, [String(w.id), "body"]);
    r = await c.rpc({ type: "Tread", tag: 2, fid: 2, offset: 0, count: 0xffffffff });
    t.equal(r.data.length, 8192 - 24, `${d}: count 2^32-1 gives msize-24 bytes`);
    r = await c.rpc({ type: "Tread", tag: 2, fid: 2, offset: 2 ** 53 - 1, count: 0xffffffff });
    t.same([r.type, r.data.length], ["Rread", 0], `${d}: an offset far past the end reads 0`);
    if (d === "9P2000.L") {
      await c.openPath(3, 0, []);
      r = await c.rpc({ type: "Treaddir", tag: 2, fid: 3, offset: 0, count: 0xffffffff });
      t.ok(r.type === "Rreaddir" && r.data.length <= 8192 - 24, "Treaddir count is clamped too");
    }
    await c.close();
  }
  t.same(s.warnings, []);
});

t.test("Tversion mid-session aborts what is pending and clunks every fid", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const c = await session(s, "9P2000.L", "/mnt/xenith");
  await c.openPath(1, 0, ["event"]);
  c.send({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 4000 });
  await c.sync();
  t.equal(s.ns.xenith.events.readers, 1);
  const v = await c.version("9P2000.u", 8192);
  t.equal(v.version, "9P2000.u");
  t.equal(s.ns.xenith.events.readers, 0, "the open stream was released");
  s.ns.xenith.events.publish("late");
  await c.sync();
  t.notOk(c.answered(10), "the aborted read is never answered");
  const r = await c.rpc({ type: "Tstat", tag: 2, fid: 1 });
  t.same([r.type, r.errno], ["Rerror", E.EBADF], "old fids are gone");
  await c.close();
});

t.test("Rstatfs reports a type coreutils does not know", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const c = await session(s, "9P2000.L");
  const r = await c.rpc({ type: "Tstatfs", tag: 2, fid: 0 });
  t.equal(r.type, "Rstatfs");
  t.equal(r.fstype, PI9_FSTYPE);
  // A few magics coreutils' stat/tail know (V9FS, ext2/3/4, tmpfs, fuse, nfs, btrfs, xfs, overlayfs).
  for (const known of [0x01021997, 0xef53, 0x01021994, 0x65735546, 0x6969, 0x9123683e, 0x58465342, 0x794c7630]) t.not(r.fstype, known);
  t.ok(r.bsize > 0 && r.namelen >= 255);
  t.equal((await c.rpc({ type: "Tstatfs", tag: 2, fid: 42 })).type, "Rlerror", "unknown fid");
  await c.close();
});

t.test("teardown: closing the socket releases pending reads, fids and connections", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const w = s.ns.xenith.createWindow("window", "td");
  const cs: RawConn[] = [];
  for (const d of ["9P2000.L", "9P2000.u", "9P2000"] as Dialect[]) {
    const c = await session(s, d, "/mnt/xenith", 8192);
    await c.openPath(1, 0, ["event"]);
    await c.openPath(2, 0, [String(w.id), "event"]);
    c.send({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 4000 });
    c.send({ type: "Tread", tag: 11, fid: 2, offset: 0, count: 4000 });
    await c.sync();
    cs.push(c);
  }
  t.equal(s.server.connections.size, 3);
  t.equal(s.ns.xenith.events.readers, 3);
  t.equal(w.events.readers, 3);
  for (const c of cs) c.sock.destroy();
  await until(() => s.server.connections.size === 0, "connections to go");
  t.equal(s.server.connections.size, 0, "no connection left");
  t.equal(s.ns.xenith.events.readers, 0, "the namespace event stream has no readers");
  t.equal(w.events.readers, 0, "the window's Broadcast has no readers");
  // Half-close (end) with a pending read does the same.
  const c = await session(s, "9P2000.L", "/mnt/xenith");
  await c.openPath(1, 0, ["event"]);
  c.send({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 4000 });
  await c.sync();
  t.equal(s.ns.xenith.events.readers, 1);
  c.sock.end();
  await c.done;
  await until(() => s.server.connections.size === 0, "connection to go");
  t.equal(s.ns.xenith.events.readers, 0, "end() releases too");
  // Deleting a window releases its pending reads with an error.
  const d = await session(s, "9P2000.L", "/mnt/xenith");
  await d.openPath(1, 0, [String(w.id), "event"]);
  d.send({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 4000 });
  await d.sync();
  s.ns.xenith.delete(w.id);
  const r1 = await d.reply(10);
  t.equal(r1.data?.toString(), "del\n", "the reader gets the del line");
  const r2 = await d.rpc({ type: "Tread", tag: 11, fid: 1, offset: 0, count: 4000 });
  t.same([r2.type, r2.ecode], ["Rlerror", E.ENOENT], "then an error: window deleted");
  await d.close();
  t.same(s.warnings, []);
});

t.test("backpressure: a client that never reads does not make the server buffer without bound", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  // A 256 KiB file that counts the reads reaching it.
  let reads = 0;
  const content = Buffer.alloc(256 * 1024, 0x61);
  class Big extends Node {
    readonly isDir = false;
    override size() { return content.length; }
    open(): Handle {
      return { read: (r) => { reads++; return content.subarray(Math.min(r.offset, content.length), Math.min(content.length, r.offset + r.count)); },
        write: () => { throw new Error("read-only"); }, close() {} };
    }
  }
  s.ns.tools.add(new Big("big", 0o444));
  const c = await session(s, "9P2000.L", "/mnt/tools", MAX_MSIZE);
  await c.openPath(1, 0, ["big"]);
  const conn = [...s.server.connections][0];
  // Stop reading our socket, then pipeline 1000 reads of 64 KiB each:
  // answering them all at once would queue 64 MiB in the server.
  c.sock.pause();
  const N = 1000, count = 64 * 1024;
  const frames = Buffer.concat(Array.from({ length: N }, (_, i) => encode({ type: "Tread", tag: 100 + i, fid: 1, offset: 0, count }, "9P2000.L")));
  c.sock.write(frames);
  await until(() => reads > 0 && conn.stream.writableLength > 0 && (conn.stream as unknown as { isPaused(): boolean }).isPaused(), "the server to pause");
  for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
  const stalled = reads;
  t.ok(stalled < 64, `the server stopped after ${stalled} of ${N} reads while the client did not read`);
  t.ok(conn.stream.writableLength < 64 * count, `it holds ${conn.stream.writableLength} bytes of replies, not ${N * count}`);
  // Reading again lets everything through, in order.
  c.sock.resume();
  const last = await c.reply(100 + N - 1);
  t.equal(last.data.length, count);
  t.equal(reads, N, "every request was served once the client read");
  t.equal(c.received.filter((m) => m.type === "Rread").length, N);
  await c.close();

  // Pending requests: with maxPending 4, blocked stream reads stop the reading at 4.
  const s2 = await startInProcess({ maxPending: 4 });
  t.teardown(() => s2.close());
  const p = await session(s2, "9P2000.L", "/mnt/xenith");
  for (let i = 0; i < 10; i++) await p.openPath(10 + i, 0, ["event"], "r", 2);
  const conn2 = [...s2.server.connections][0] as unknown as { inflight: Map<number, unknown> };
  const batch = Buffer.concat([
    ...Array.from({ length: 10 }, (_, i) => encode({ type: "Tread", tag: 100 + i, fid: 10 + i, offset: 0, count: 4000 }, "9P2000.L")),
    encode({ type: "Tgetattr", tag: 200, fid: 0, mask: 1 }, "9P2000.L"),
  ]);
  p.sock.write(batch);
  await until(() => conn2.inflight.size === 4, "4 pending reads");
  for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
  t.equal(conn2.inflight.size, 4, "no more than maxPending requests are taken on");
  t.notOk(p.answered(200), "the request behind them waits in the socket");
  s2.ns.xenith.events.publish("go");
  for (let i = 0; i < 10; i++) t.equal((await p.reply(100 + i)).data.toString(), "go\n", `read ${i} completes`);
  t.equal((await p.reply(200)).type, "Rgetattr", "and then the rest");
  await p.close();
  t.same([...s.warnings, ...s2.warnings], []);
});
