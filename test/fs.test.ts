// Unit tests of the synthetic file tree: stores, streams, ctl files, and the
// Xenith skeleton, through the node API (no 9P involved).

import t from "tap";
import { Text } from "../src/fs/text.js";
import { CtlFile, MemFile } from "../src/fs/files.js";
import { FsError } from "../src/fs/errors.js";
import { Ctx, Handle, Node, OpenFlags } from "../src/fs/node.js";
import { Broadcast, escapeEvent, StreamReader, unescapeEvent } from "../src/fs/stream.js";
import { buildNamespace } from "../src/namespace.js";

const ctx: Ctx = { uname: "test" };
const RW: OpenFlags = { read: true, write: true, truncate: false, append: false };
const RO: OpenFlags = { read: true, write: false, truncate: false, append: false };
const WO: OpenFlags = { read: false, write: true, truncate: false, append: false };
const sig = () => new AbortController().signal;

async function open(n: Node | undefined, f: OpenFlags = RW): Promise<Handle> {
  if (!n) throw new Error("no such node");
  return n.open(f, ctx);
}
async function readAll(h: Handle, count = 8192) {
  const out: Buffer[] = [];
  for (let off = 0; ; ) {
    const b = await h.read({ offset: off, count, signal: sig() });
    if (!b.length) break;
    out.push(Buffer.from(b)); off += b.length;
    if (out.length > 10000) throw new Error("unbounded read");
  }
  return Buffer.concat(out).toString();
}
const write = async (h: Handle, s: string, offset = 0) => h.write({ offset, data: Buffer.from(s), signal: sig() });

t.test("Text appends without losing or reordering bytes", async (t) => {
  const c = new Text();
  const ref: Buffer[] = [];
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 500; i++) {
    const len = rnd() < 0.05 ? 40000 + Math.floor(rnd() * 50000) : Math.floor(rnd() * 300);
    const b = Buffer.alloc(len, i % 251);
    c.append(b); ref.push(b);
  }
  const all = Buffer.concat(ref);
  t.equal(c.size, all.length);
  for (let i = 0; i < 200; i++) {
    const off = Math.floor(rnd() * all.length), n = Math.floor(rnd() * 100000);
    if (!c.read(off, n).equals(all.subarray(off, off + n))) { t.fail(`read(${off}, ${n}) differs`); return; }
  }
  t.equal(c.read(all.length, 10).length, 0, "read at end is empty");
  t.ok(c.read(0, all.length).equals(all), "whole read matches");
});

t.test("Text keeps its own copy of large appends", async (t) => {
  const c = new Text();
  const b = Buffer.alloc(100000, 1);
  c.append(b);
  b.fill(2);
  t.equal(c.read(0, 1)[0], 1);
});

t.test("event escaping round-trips and never spans lines", async (t) => {
  const s = "a\\b\nc\\n";
  t.equal(escapeEvent(s), "a\\\\b\\nc\\\\n");
  t.notOk(escapeEvent(s).includes("\n"));
  t.equal(unescapeEvent(escapeEvent(s)), s);
});

t.test("stream reads return whole lines, wait for one, and split only long lines", async (t) => {
  const b = new Broadcast();
  const c = b.subscribe();
  b.publish("one"); b.publish("two"); b.publish("three");
  t.equal((await c.read(8, sig())).toString(), "one\ntwo\n", "as many whole lines as fit");
  t.equal((await c.read(3, sig())).toString(), "thr", "a line longer than the count is split");
  t.equal((await c.read(100, sig())).toString(), "ee\n");
  const pending = c.read(100, sig());
  t.ok(pending instanceof Promise, "an empty queue blocks");
  b.publish("four");
  t.equal((await pending).toString(), "four\n");
  c.close();
  t.equal(b.readers, 0, "closing unsubscribes");
});

t.test("each open is its own cursor from the moment of opening", async (t) => {
  const b = new Broadcast();
  const early = b.subscribe();
  b.publish("before");
  const late = b.subscribe();
  b.publish("after");
  t.equal((await early.read(100, sig())).toString(), "before\nafter\n");
  t.equal((await late.read(100, sig())).toString(), "after\n");
});

t.test("a slow reader loses events with a lost line and continues", async (t) => {
  const b = new Broadcast(64);
  const c = b.subscribe();
  for (let i = 0; i < 20; i++) b.publish(`event number ${i}`);
  // The oldest lines went; the reader is told how many, then reads the newest.
  const got = (await c.read(4096, sig())).toString();
  const m = /^lost (\d+)\n((?:event number \d+\n)+)$/.exec(got);
  t.ok(m, `the loss is reported first: ${JSON.stringify(got)}`);
  const kept = m![2].split("\n").filter(Boolean);
  t.equal(Number(m![1]) + kept.length, 20, "lost + kept = published");
  t.equal(kept[kept.length - 1], "event number 19", "the newest lines are kept");
  const keptBytes = Buffer.byteLength(m![2]);
  t.ok(keptBytes >= 64 - 16 && keptBytes <= 2 * 64, `about the limit is kept (${keptBytes} bytes), never more than twice`);
  b.publish("later");
  t.equal((await c.read(4096, sig())).toString(), "later\n", "and the stream continues");
});

t.test("an aborted read rejects and the cursor stays usable", async (t) => {
  const b = new Broadcast();
  const c = b.subscribe();
  const ac = new AbortController();
  const p = c.read(100, ac.signal) as Promise<Buffer>;
  ac.abort();
  await t.rejects(p, { code: "ECANCELED" });
  b.publish("x");
  t.equal((await c.read(100, sig())).toString(), "x\n");
});

t.test("closing a broadcast fails pending and later reads", async (t) => {
  const b = new Broadcast();
  const c = b.subscribe();
  const p = c.read(100, sig()) as Promise<Buffer>;
  b.close(new FsError("ENOENT", "window deleted"));
  await t.rejects(p, { message: "window deleted" });
  t.throws(() => c.read(100, sig()), { message: "window deleted" });
  t.throws(() => b.subscribe().read(1, sig()), { message: "window deleted" }, "a later open fails too");
});

t.test("a stream reader never answers 0 itself: every read waits for a line (the 0 rule is the wire's)", async (t) => {
  const b = new Broadcast();
  const r = new StreamReader(b.subscribe());
  b.publish("hello");
  t.equal((await r.read({ offset: 0, count: 65536, signal: sig() })).toString(), "hello\n");
  const next = r.read({ offset: 6, count: 65530, signal: sig() });
  t.ok(next instanceof Promise, "even a read that continues the last one blocks here");
  b.publish("again");
  t.equal((await next).toString(), "again\n");
});

t.test("ctl files check every line before running any", async (t) => {
  const done: string[] = [];
  const f = new CtlFile("ctl", () => "status\n", { a: (x) => { done.push(`a:${x}`); }, b: () => { done.push("b"); } });
  const h = await open(f);
  await t.rejects(write(h, "a 1\nnope\nb\n"), { code: "EINVAL", message: "unknown ctl message: nope" });
  t.same(done, [], "nothing ran");
  await write(h, "a 1\n\nb\n");
  t.same(done, ["a:1", "b"]);
  t.equal(await readAll(h), "status\n");
});

t.test("MemFile positions writes, truncates and grows", async (t) => {
  const f = new MemFile("m");
  const h = await open(f);
  await write(h, "hello world");
  await write(h, "W", 6);
  t.equal(await readAll(h), "hello World");
  f.truncate(5);
  t.equal(await readAll(h), "hello");
  await write(h, "!", 7);
  t.equal(await readAll(h), "hello\0\0!");
});

t.test("xenith: new, index, ctl, body, tag, focus, log and del", async (t) => {
  const ns = buildNamespace({ cwd: "/home/u" });
  const x = ns.xenith;
  const root = x.dir;
  const lifecycle = x.events.subscribe();

  const n1 = await open(root.lookup("new"), RO);
  t.equal(await readAll(n1), "1\n", "reading new without a write makes a window");
  const n2 = await open(root.lookup("new"));
  await write(n2, "window notes\n");
  t.equal((await n2.read({ offset: 13, count: 100, signal: sig() })).toString(), "2\n",
    "the result is read from the same open file whatever the offset");
  await t.rejects(write(await open(root.lookup("new")), "frobnicate\n"), { message: /new: unknown request: frobnicate/ });
  await t.rejects(write(await open(root.lookup("new")), "window has space\n"), { message: /no white space/ });

  t.equal(await readAll(await open(root.lookup("index"), RO)), "1 window idle - /home/u\n2 window idle notes /home/u\n");

  const w1 = x.get(1);
  const wev = w1.events.subscribe();
  const body = await open(w1.dir.lookup("body"));
  await write(body, "hello\n", 0);
  await write(body, "world\n", 0); // appends whatever the offset
  t.equal(await readAll(body), "hello\nworld\n");
  t.equal(w1.body.size(), 12, "body size grows");
  t.equal((await wev.read(4096, sig())).toString(), "insert 0 6 hello\\n\ninsert 6 12 world\\n\n");
  w1.body.truncate(0, ctx); // what `echo x > body` asks for: accepted, ignored
  t.equal(w1.body.size(), 12);

  const ctl = await open(w1.dir.lookup("ctl"));
  t.equal(await readAll(ctl), "1 window idle - /home/u 12 1\n");
  await write(ctl, "name scratch\nclean\n");
  t.equal(await readAll(ctl), "1 window idle scratch /home/u 12 0\n");
  await t.rejects(write(ctl, "name other\nbogus\n"), { message: "unknown ctl message: bogus" });
  t.equal(w1.name, "scratch", "a failed write changes nothing");

  const tag = await open(w1.dir.lookup("tag"));
  await write(tag, "Get Put\n");
  t.equal(await readAll(tag), "scratch Del Snarf | Get Put");

  await write(await open(root.lookup("focus")), "1\n");
  t.equal(await readAll(await open(root.lookup("focus"), RO)), "1\n");
  await t.rejects(write(await open(root.lookup("focus")), "99\n"), { code: "ENOENT" });
  await t.rejects(write(await open(root.lookup("focus")), "one\n"), { message: /not a window id/ });
  t.equal((await wev.read(4096, sig())).toString(), "focus\n");

  const pending = wev.read(4096, sig()) as Promise<Buffer>;
  await write(ctl, "del\n");
  t.equal((await pending).toString(), "del\n", "readers see del");
  await t.rejects(async () => wev.read(4096, sig()), { message: "window deleted" });
  t.equal(root.lookup("1"), undefined, "the directory is gone");

  const expect = "new 1 window -\nnew 2 window notes\nname 1 scratch\nfocus 1\ndel 1\n";
  t.equal((await lifecycle.read(4096, sig())).toString(), expect, "lifecycle events");
  t.equal(await readAll(await open(root.lookup("log"), RO)), expect, "log replays them");
  t.rejects(Promise.resolve().then(() => open(root.lookup("log"), WO)), { code: "EACCES" }, "log is read-only");

  // wmii's habit: lines written to event are broadcast as written
  const ev = await open(root.lookup("event"));
  const reader = await open(root.lookup("event"), RO);
  await write(ev, "hello from a script\n");
  t.equal((await reader.read({ offset: 0, count: 4096, signal: sig() })).toString(), "hello from a script\n");
  reader.close();
});

t.test("a read that seeks back into the last reply re-reads from there (bash's read builtin)", async (t) => {
  const b = new Broadcast();
  const r = new StreamReader(b.subscribe());
  b.publish("prompt hello"); b.publish("prompt second");
  // bash reads 128 bytes, uses the first line, then lseeks back to its end.
  const first = await r.read({ offset: 0, count: 128, signal: sig() });
  t.equal(first.toString(), "prompt hello\nprompt second\n");
  // (The kernel's follow-up Tread at offset 27 is answered 0 by the wire: src/ninep/stream-rule.ts.)
  const again = await r.read({ offset: 13, count: 128, signal: sig() });
  t.equal(again.toString(), "prompt second\n", "the second line is read again, not lost");
  const next = r.read({ offset: 27, count: 128, signal: sig() });
  t.ok(next instanceof Promise, "reading at the end blocks for new events");
  b.publish("third");
  t.equal((await next).toString(), "third\n");
  // A client that reads every time at offset 0 never rewinds.
  const z = new StreamReader(b.subscribe());
  b.publish("a"); b.publish("b");
  t.equal((await z.read({ offset: 0, count: 2, signal: sig() })).toString(), "a\n");
  t.equal((await z.read({ offset: 0, count: 2, signal: sig() })).toString(), "b\n");
});

t.test("a stream that ends lets each reader read what it had not read yet, then fails", async (t) => {
  const b = new Broadcast();
  const between = b.subscribe(); // a reader between two reads when the stream ends
  b.publish("one"); b.publish("del");
  b.close(new FsError("ENOENT", "window deleted"));
  t.equal((await between.read(4, sig())).toString(), "one\n", "whole lines that fit");
  t.equal((await between.read(100, sig())).toString(), "del\n", "the last line is not lost");
  t.throws(() => between.read(100, sig()), { message: "window deleted" }, "then the error");
  const waiting = new Broadcast();
  const w = waiting.subscribe();
  const p = w.read(100, sig()) as Promise<Buffer>;
  waiting.publish("del");
  waiting.close(new FsError("ENOENT", "window deleted"));
  t.equal((await p).toString(), "del\n", "a pending read gets the line published just before the end");
  t.throws(() => w.read(100, sig()), { message: "window deleted" });
});
