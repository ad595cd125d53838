// Tflush that loses nothing (plan9port lib9p semantics): a request that can
// be cancelled gets only Rflush; one whose effect already happened is
// answered first (Rwrite or the error), then Rflush. Never a reply after
// Rflush. These tests assert the order of frames, not timing.

import t from "tap";
import { encode, Msg } from "../src/ninep/codec.js";
import { Dialect, E } from "../src/ninep/constants.js";
import { Handle, Node, WriteReq } from "../src/fs/node.js";
import { errs } from "../src/fs/errors.js";
import { startInProcess, InProcess, RawConn } from "./helpers/raw9p.js";

async function session(s: InProcess, dialect: Dialect, aname: string) {
  const c = await s.dial();
  const v = await c.version(dialect, 65536);
  if (v.version !== dialect) throw new Error(`version ${dialect}: ${JSON.stringify(v)}`);
  const a = await c.attach(0, aname);
  if (a.type !== "Rattach") throw new Error(`attach: ${JSON.stringify(a)}`);
  return c;
}

/** Several requests in one socket write, as a client pipelines them. */
function sendTogether(c: RawConn, ms: Msg[]) {
  c.sendRaw(Buffer.concat(ms.map((m) => encode(m, c.dialect))));
}

/** Frames received since index `from`, as "Type:tag". */
function since(c: RawConn, from: number) {
  return c.received.slice(from).map((m) => `${m.type}:${m.tag}`);
}

t.test("a blocked event read, flushed: only Rflush, never the Rread", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const w = s.ns.xenith.createWindow("window", "start");
  for (const d of ["9P2000.L", "9P2000.u", "9P2000"] as Dialect[]) {
    const c = await session(s, d, "/mnt/xenith");
    await c.openPath(1, 0, [String(w.id), "event"]);
    const from = c.received.length;
    c.send({ type: "Tread", tag: 10, fid: 1, offset: 0, count: 8192 });
    c.send({ type: "Tflush", tag: 11, oldtag: 10 });
    t.equal((await c.reply(11)).type, "Rflush", `${d}: Rflush`);
    // An event after the flush must not reach the flushed read.
    w.events.publish("late");
    const r = await c.rpc({ type: "Tclunk", tag: 12, fid: 1 });
    t.equal(r.type, "Rclunk");
    await c.sync();
    t.same(since(c, from), ["Rflush:11", "Rclunk:12", "Rflush:65534"], `${d}: the next frame after Rflush is the later request's reply`);
    t.notOk(c.answered(10), `${d}: the flushed read is never answered`);
    await c.close();
  }
  t.same(s.warnings, []);
});

t.test("ctl write and its Tflush in one socket write: Rwrite, then Rflush", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const w = s.ns.xenith.createWindow("window", "start");
  const id = String(w.id);
  for (const d of ["9P2000.L", "9P2000"] as Dialect[]) {
    const c = await session(s, d, "/mnt/xenith");
    await c.openPath(1, 0, [id, "ctl"], "w");
    const from = c.received.length;
    const name = `flushed-${d}`;
    sendTogether(c, [
      { type: "Twrite", tag: 20, fid: 1, offset: 0, data: Buffer.from(`name ${name}\n`) },
      { type: "Tflush", tag: 21, oldtag: 20 },
      { type: "Tflush", tag: 22, oldtag: 20 },
    ]);
    await c.reply(22);
    await c.sync();
    t.same(since(c, from), ["Rwrite:20", "Rflush:21", "Rflush:22", "Rflush:65534"], `${d}: the write is reported, then every Rflush in order`);
    t.equal(w.name, name, `${d}: the name changed`);
    // And the index agrees.
    await c.openPath(2, 0, ["index"]);
    const idx = await c.rpc({ type: "Tread", tag: 23, fid: 2, offset: 0, count: 8000 });
    t.match(idx.data.toString(), name, `${d}: index shows the new name`);
    await c.rpc({ type: "Tclunk", tag: 24, fid: 2 });
    await c.rpc({ type: "Tclunk", tag: 24, fid: 1 });
    await c.close();
  }
  t.same(s.warnings, []);
});

t.test("a failing ctl write and its Tflush: the error, then Rflush", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const w = s.ns.xenith.createWindow("window", "start");
  const id = String(w.id);
  for (const d of ["9P2000.L", "9P2000.u"] as Dialect[]) {
    const c = await session(s, d, "/mnt/xenith");
    await c.openPath(1, 0, [id, "ctl"], "w");
    const from = c.received.length;
    sendTogether(c, [
      { type: "Twrite", tag: 30, fid: 1, offset: 0, data: Buffer.from("bogus line\n") },
      { type: "Tflush", tag: 31, oldtag: 30 },
    ]);
    await c.reply(31);
    const err = d === "9P2000.L" ? "Rlerror" : "Rerror";
    t.same(since(c, from), [`${err}:30`, "Rflush:31"], `${d}: ${err} then Rflush`);
    const e = c.received[from];
    t.equal(d === "9P2000.L" ? e.ecode : e.errno, E.EINVAL, `${d}: EINVAL`);
    await c.rpc({ type: "Tclunk", tag: 32, fid: 1 });
    await c.close();
  }
  t.same(s.warnings, []);
});

t.test("an uncancellable write still running when flushed: its reply first, then each Rflush", async (t) => {
  const s = await startInProcess();
  t.teardown(() => s.close());
  const pending: { req: WriteReq; done: (n: number) => void; fail: (e: Error) => void }[] = [];
  let applied = "";
  class Slow extends Node {
    readonly isDir = false;
    open(): Handle {
      return {
        read: () => Buffer.alloc(0),
        // Work that has started and cannot be undone: it ignores the signal.
        write: (req) => new Promise<number>((done, fail) => { pending.push({ req, done, fail }); }),
        close() {},
      };
    }
  }
  s.ns.tools.add(new Slow("slow", 0o666));
  const c = await session(s, "9P2000.L", "/mnt/tools");
  await c.openPath(1, 0, ["slow"], "w");
  const from = c.received.length;
  sendTogether(c, [
    { type: "Twrite", tag: 40, fid: 1, offset: 0, data: Buffer.from("abc") },
    { type: "Tflush", tag: 41, oldtag: 40 },
  ]);
  await c.sync(); // the server has seen both
  c.send({ type: "Tflush", tag: 42, oldtag: 40 });
  c.send({ type: "Tflush", tag: 43, oldtag: 41 }); // a flush of the waiting flush queues behind it
  await c.sync(0xfff0);
  t.same(since(c, from), ["Rflush:65534", "Rflush:65520"], "nothing for the flushed tags while the write runs");
  t.equal(pending.length, 1);
  t.ok(pending[0].req.signal.aborted, "the write was told of the flush");
  applied = pending[0].req.data.toString();
  pending[0].done(3);
  await c.reply(43);
  t.same(since(c, from).slice(2), ["Rwrite:40", "Rflush:41", "Rflush:42", "Rflush:43"], "Rwrite, then the Rflushes in order");
  t.equal(applied, "abc");

  // The same write, cancelled (it honours the signal): only Rflush.
  const from2 = c.received.length;
  sendTogether(c, [
    { type: "Twrite", tag: 50, fid: 1, offset: 0, data: Buffer.from("xyz") },
    { type: "Tflush", tag: 51, oldtag: 50 },
  ]);
  await c.sync();
  const p = pending[1];
  t.ok(p.req.signal.aborted);
  p.fail(errs.flushed());
  await c.reply(51);
  const r = await c.rpc({ type: "Tclunk", tag: 52, fid: 1 });
  t.equal(r.type, "Rclunk");
  t.same(since(c, from2), ["Rflush:65534", "Rflush:51", "Rclunk:52"], "cancelled: only Rflush");
  t.notOk(c.received.slice(from2).some((m) => m.tag === 50), "the cancelled tag is never answered");

  // Tversion with a flush waiting: everything is aborted, nothing answered.
  await c.openPath(1, 0, ["slow"], "w");
  const from3 = c.received.length;
  sendTogether(c, [
    { type: "Twrite", tag: 60, fid: 1, offset: 0, data: Buffer.from("q") },
    { type: "Tflush", tag: 61, oldtag: 60 },
  ]);
  await c.sync();
  await c.version("9P2000.L", 65536);
  pending[2].done(1);
  await c.sync();
  t.same(since(c, from3), ["Rflush:65534", "Rversion:65535", "Rflush:65534"], "after Tversion neither the write nor its flush is answered");
  await c.close();
  t.same(s.warnings, []);
});
