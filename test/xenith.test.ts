// Xenith window files and the editable body, through the node API.

import t from "tap";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PNG } from "pngjs";
import { Ctx, Handle, Node, OpenFlags } from "../src/fs/node.js";
import { buildNamespace } from "../src/namespace.js";
import { Change, OffsetMap, Text } from "../src/fs/text.js";
import { mapThrough, Window } from "../src/xenith/xenith.js";

const ctx: Ctx = { uname: "test" };
const RW: OpenFlags = { read: true, write: true, truncate: false, append: false };
const sig = () => new AbortController().signal;
async function open(n: Node | undefined): Promise<Handle> { if (!n) throw new Error("no node"); return n.open(RW, ctx); }
async function read(w: Window, file: string) {
  const h = await open(w.dir.lookup(file));
  const b = await h.read({ offset: 0, count: 1 << 20, signal: sig() });
  return b.toString();
}
async function write(w: Window, file: string, s: string) {
  const h = await open(w.dir.lookup(file));
  return h.write({ offset: 0, data: Buffer.from(s), signal: sig() });
}
function newWindow(text = "") {
  const ns = buildNamespace({ cwd: "/tmp" });
  const w = ns.xenith.createWindow();
  if (text) w.append(text);
  return w;
}

t.test("Text.applyBatch matches a string reference under random edits", async (t) => {
  let seed = 42;
  const rnd = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * n);
  const txt = new Text();
  let ref = "";
  for (let round = 0; round < 300; round++) {
    if (rnd(3) === 0) {
      const s = "x".repeat(rnd(200)) + (rnd(2) ? "\n" : "");
      txt.append(Buffer.from(s)); ref += s;
      continue;
    }
    const changes: Change[] = [];
    let pos = 0;
    while (pos <= ref.length && changes.length < 1 + rnd(8)) {
      const q0 = pos + rnd(Math.max(1, Math.floor((ref.length - pos) / 4) + 1));
      if (q0 > ref.length) break;
      const q1 = Math.min(ref.length, q0 + rnd(20));
      changes.push({ q0, q1, text: Buffer.from(rnd(2) ? "ab".repeat(rnd(5)) : "") });
      pos = q1 + 1;
    }
    let next = "", p = 0;
    for (const c of changes) { next += ref.slice(p, c.q0) + c.text.toString(); p = c.q1; }
    next += ref.slice(p);
    txt.applyBatch(changes);
    ref = next;
    if (txt.toString() !== ref) { t.fail(`round ${round}: text differs`); return; }
  }
  t.equal(txt.size, Buffer.byteLength(ref));
  t.equal(txt.read(5, 17).toString(), ref.slice(5, 22));
});

t.test("Text.applyBatch keeps the piece count bounded under a million-change edit", async (t) => {
  const txt = new Text();
  txt.append(Buffer.from("ab".repeat(500000)));
  const changes: Change[] = [];
  for (let i = 0; i < 1000000; i += 2) changes.push({ q0: i, q1: i + 1, text: Buffer.from("c") });
  txt.applyBatch(changes);
  t.equal(txt.read(0, 6).toString(), "cbcbcb");
  t.equal(txt.size, 1000000);
  txt.applyBatch([{ q0: 999999, q1: 1000000, text: Buffer.from("END") }]);
  t.equal(txt.read(999996, 10).toString(), "cbcEND");
});

t.test("OffsetMap converts between UTF-8 bytes and UTF-16 units", async (t) => {
  const s = "aé€😀b\n".repeat(600);
  const m = OffsetMap.of(s, false);
  const bytes = Buffer.from(s);
  for (const u of [0, 1, 2, 3, 5, 6, 7, 1000, 2050, s.length]) {
    const b = m.toByte(u);
    t.equal(bytes.subarray(0, b).toString(), s.slice(0, u), `unit ${u} -> byte ${b}`);
    t.equal(m.toUnit(b), u, `byte ${b} -> unit ${u}`);
  }
  t.equal(OffsetMap.of("abc", true).toByte(2), 2);
});

t.test("mapThrough moves positions across a batch of changes", async (t) => {
  const ch: Change[] = [{ q0: 2, q1: 4, text: Buffer.from("XYZ") }, { q0: 10, q1: 10, text: Buffer.from("!!") }];
  t.equal(mapThrough(1, ch), 1);
  t.equal(mapThrough(3, ch), 2, "inside a replaced range: its start");
  t.equal(mapThrough(4, ch), 5);
  t.equal(mapThrough(10, ch), 11, "an insertion at the position does not push it");
  t.equal(mapThrough(12, ch), 15);
});

t.test("sel: byte offsets, validation, event", async (t) => {
  const w = newWindow("hello world\n");
  const ev = w.events.subscribe();
  t.equal(await read(w, "sel"), "", "empty when nothing is selected");
  await write(w, "sel", "6 11\n");
  t.equal(await read(w, "sel"), "6 11\n");
  t.equal((await ev.read(4096, sig())).toString(), "sel 6 11\n");
  await t.rejects(write(w, "sel", "5 99"), { message: "sel: 5 99 out of range: body has 12 bytes" });
  await t.rejects(write(w, "sel", "9 3"), { message: /out of range/ });
  await t.rejects(write(w, "sel", "six"), { message: /sel: want "start end"/ });
  t.equal(await read(w, "sel"), "6 11\n", "unchanged after failures");
});

t.test("dot: line and character, validation, event", async (t) => {
  const w = newWindow("one\ntwö three\n");
  const ev = w.events.subscribe();
  t.equal(await read(w, "dot"), "1 0\n");
  await write(w, "dot", "2 4");
  t.equal(await read(w, "dot"), "2 4\n");
  t.equal(w.sel.q0, 9, "characters, not bytes: ö is two bytes");
  t.equal((await ev.read(4096, sig())).toString(), "dot 2 4\n");
  await t.rejects(write(w, "dot", "2 40"), { message: "dot: char 40 out of range: line 2 has 9 characters" });
  await t.rejects(write(w, "dot", "9 0"), { message: /dot: line 9 out of range/ });
  await t.rejects(write(w, "dot", "0 0"), { message: /lines start at 1/ });
  await t.rejects(write(w, "dot", "x"), { message: /dot: want "line char"/ });
  t.equal(await read(w, "dot"), "2 4\n");
});

t.test("dirty: writes set it, clean and the dirty file reset it", async (t) => {
  const w = newWindow();
  t.equal(await read(w, "dirty"), "0\n");
  w.append("x");
  t.equal(await read(w, "dirty"), "1\n");
  await write(w, "dirty", "0");
  t.equal(await read(w, "dirty"), "0\n");
  await write(w, "ctl", "dirty\n");
  t.equal(await read(w, "dirty"), "1\n");
  await write(w, "ctl", "clean\n");
  t.equal(await read(w, "dirty"), "0\n");
  await t.rejects(write(w, "dirty", "maybe"), { message: /dirty: want 0 or 1/ });
});

t.test("image: a real PNG's dimensions; non-PNGs refused", async (t) => {
  const dir = t.testdirName;
  mkdirSync(dir, { recursive: true });
  const png = new PNG({ width: 37, height: 21 });
  png.data.fill(255);
  writeFileSync(path.join(dir, "pic.png"), PNG.sync.write(png));
  writeFileSync(path.join(dir, "fake.png"), "this is not a png at all, just text");
  const w = newWindow();
  w.cwd = dir;
  t.equal(await read(w, "image"), "");
  await write(w, "image", "pic.png\n");
  t.equal(await read(w, "image"), `${path.join(dir, "pic.png")} 37 21\n`);
  await t.rejects(write(w, "image", "fake.png"), { message: /not a PNG/ });
  await t.rejects(write(w, "image", "missing.png"), { message: /no such file/ });
  t.equal(await read(w, "image"), `${path.join(dir, "pic.png")} 37 21\n`, "unchanged after failures");
  await write(w, "image", "\n");
  t.equal(await read(w, "image"), "", "an empty write clears it");
});

t.test("a 100 MiB body stays usable and memory stays near its size", async (t) => {
  const w = newWindow();
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = 97 + (i % 26);
  global.gc?.();
  const before = process.memoryUsage();
  const base = before.rss;
  for (let i = 0; i < 100; i++) w.append(chunk);
  t.equal(w.text.size, 100 << 20);
  const h = await open(w.dir.lookup("body"));
  for (const off of [0, 12345, 50 << 20, (100 << 20) - 10]) {
    const b = await h.read({ offset: off, count: 26, signal: sig() });
    const want = Buffer.alloc(Math.min(26, (100 << 20) - off));
    for (let i = 0; i < want.length; i++) want[i] = 97 + (((off + i) % (1 << 20)) % 26);
    t.same(b, want, `read at ${off}`);
  }
  for (let i = 0; i < 1000; i++) w.append("small append\n");
  const grown = process.memoryUsage().rss - base;
  t.ok(grown < 200 * (1 << 20), `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB for 100 MiB of text (bound: 2x)`);
});

t.test("ctl runs sam commands on the body; dot is the whole body when nothing is selected", async (t) => {
  const w = newWindow("func a() { foo(); }\nfoo\nfunc b() { foo(); bar(); }\n");
  const ev = w.events.subscribe();
  await write(w, "ctl", "x/func.*{[^}]*}/ x/foo/ c/bar/\n");
  t.equal(w.text.toString(), "func a() { bar(); }\nfoo\nfunc b() { bar(); bar(); }\n", "the design's example");
  const evs = (await ev.read(1 << 16, sig())).toString();
  t.equal(evs, "delete 35 38\ninsert 35 38 bar\ndelete 11 14\ninsert 11 14 bar\n", "one delete/insert pair per change, from the end");
  await write(w, "ctl", ",s/bar/baz/g\n");
  t.equal(w.text.toString(), "func a() { baz(); }\nfoo\nfunc b() { baz(); baz(); }\n");
  t.equal(await read(w, "dirty"), "1\n");
});

t.test("a bad ctl line fails the whole write, names the problem, and changes nothing", async (t) => {
  const w = newWindow("abc\n");
  await t.rejects(write(w, "ctl", ",s/a/A/g\nname x y z\n"), { message: /no white space/ });
  t.equal(w.text.toString(), "Abc\n", "lines run in order: the edit before the failing line stays");
  await t.rejects(write(w, "ctl", "x/b/ c/B/\nbogus words\n"), { message: /^unknown ctl message: bogus words/ });
  t.equal(w.text.toString(), "Abc\n", "a line that is no command is caught before anything runs");
  await t.rejects(write(w, "ctl", "x/(/ d\n"), { message: /unknown ctl message: x\/\(\/ d \(.*\)/ });
  await t.rejects(write(w, "ctl", "/zzz/ d\n"), { message: /edit: / });
  await t.rejects(write(w, "ctl", "#99 d\n"), { message: /edit: / });
  t.equal(w.text.toString(), "Abc\n");
});

t.test("edit: one transaction per write, output of p and = read back from the same open", async (t) => {
  const w = newWindow("one\ntwo\nthree\n");
  const h = await open(w.dir.lookup("edit"));
  await h.write({ offset: 0, data: Buffer.from("/two/ c/TWO/\n/three/ a/!/\n"), signal: sig() });
  t.equal(w.text.toString(), "one\nTWO\nthree!\n", "commands of one write run in sequence");
  const h1 = await open(w.dir.lookup("edit"));
  await t.rejects(async () => h1.write({ offset: 0, data: Buffer.from("/TWO/ c/2/\n1 c/1/\n"), signal: sig() }), { message: "edit: changes not in sequence" });
  t.equal(w.text.toString(), "one\nTWO\nthree!\n", "one transaction: nothing of a failed edit is applied");
  const h2 = await open(w.dir.lookup("edit"));
  await h2.write({ offset: 0, data: Buffer.from("2p\n/thre/=\n"), signal: sig() });
  const out = (await h2.read({ offset: 0, count: 4096, signal: sig() })).toString();
  t.match(out, /^TWO\n/);
  t.match(out, /3/);
  await t.rejects(async () => h2.write({ offset: 0, data: Buffer.from("x/a/ q\n"), signal: sig() }), { message: /^edit: / });
  t.equal(w.text.toString(), "one\nTWO\nthree!\n", "unchanged after a failed edit");
});

t.test("a selection limits dot; edits carry it along with its text", async (t) => {
  const w = newWindow("aaa bbb aaa\n");
  await write(w, "sel", "4 11");
  await write(w, "ctl", "x/a/ c/X/\n");
  t.equal(w.text.toString(), "aaa bbb XXX\n", "only inside the selection");
  await write(w, "ctl", ",s/bbb/BBBBBB/\n");
  t.equal(await read(w, "sel"), "4 14\n", "the selection grew with its text");
});

t.test("addr and data: acme's addressing pair", async (t) => {
  const w = newWindow("alpha\nbeta\ngamma\n");
  const ev = w.events.subscribe();
  await write(w, "addr", "2");
  t.equal(await read(w, "addr"), "6 11\n", "line 2, in bytes");
  const d = await open(w.dir.lookup("data"));
  t.equal((await d.read({ offset: 0, count: 3, signal: sig() })).toString(), "bet", "data reads from addr");
  t.equal((await d.read({ offset: 3, count: 100, signal: sig() })).toString(), "a\ngamma\n", "and advances it");
  await write(w, "addr", "/gamma/");
  await d.write({ offset: 0, data: Buffer.from("GAMMA"), signal: sig() });
  t.equal(w.text.toString(), "alpha\nbeta\nGAMMA\n");
  t.equal(await read(w, "addr"), "16 16\n", "addr sits after what was written");
  t.equal((await ev.read(4096, sig())).toString(), "delete 11 16\ninsert 11 16 GAMMA\n");
  await write(w, "addr", "1");
  await write(w, "ctl", "dot=addr\n");
  t.equal(await read(w, "sel"), "0 6\n");
  await write(w, "sel", "6 10");
  await write(w, "ctl", "addr=dot\n");
  t.equal(await read(w, "addr"), "6 10\n");
  await write(w, "addr", "+1");
  t.equal(await read(w, "addr"), "11 17\n", "relative to addr itself");
  await t.rejects(write(w, "addr", "/nomatch/"), { message: /^addr: / });
  await t.rejects(write(w, "addr", "99"), { message: /^addr: / });
  t.equal(await read(w, "addr"), "11 17\n", "unchanged after failures");
});

t.test("UTF-8 bodies: edits land on the right bytes", async (t) => {
  const w = newWindow("héllo wörld\n");
  await write(w, "ctl", ",s/ö/o/\n");
  t.equal(w.text.toString(), "héllo world\n");
  await write(w, "addr", "/wo/");
  t.equal(await read(w, "addr"), "7 9\n", "byte offsets after the two-byte é");
});

t.test("a pathological regex on a large body fails with a message or finishes; the body is unchanged on failure", async (t) => {
  const w = newWindow("a".repeat(1 << 20) + "\n");
  const before = w.text.size;
  try {
    await write(w, "ctl", ",x/(a*)*b/ d\n");
    t.equal(w.text.size, before, "no match, nothing changed");
  } catch (e) {
    t.match((e as Error).message, /^edit: /, "a clear error");
    t.equal(w.text.size, before, "nothing changed");
  }
  await write(w, "ctl", ",x/(a+a+)+b/ d\n").catch((e) => t.match(e.message, /^edit: /));
  t.equal(w.text.size, before);
});
