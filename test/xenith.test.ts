// Xenith window files and the editable body, through the node API.

import t from "tap";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PNG } from "pngjs";
import { Ctx, Handle, Node, OpenFlags } from "../src/fs/node.js";
import { buildNamespace } from "../src/namespace.js";
import { Change, OffsetMap, Text } from "../src/xenith/text.js";
import { mapThrough, Window } from "../src/xenith/xenith.js";

const ctx: Ctx = { uname: "test" };
const RW: OpenFlags = { read: true, write: true, truncate: false, append: false };
const sig = () => new AbortController().signal;
async function open(n: Node | undefined): Promise<Handle> { if (!n) throw new Error("no node"); return n.open(RW, ctx); }
async function read(w: Window, file: string) {
  const h = await open(w.dir.lookup(file));
  const b = await h.read({ offset: 0, count: 1 << 20, msize: 8216, signal: sig() });
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
    const b = await h.read({ offset: off, count: 26, msize: 65560, signal: sig() });
    const want = Buffer.alloc(Math.min(26, (100 << 20) - off));
    for (let i = 0; i < want.length; i++) want[i] = 97 + (((off + i) % (1 << 20)) % 26);
    t.same(b, want, `read at ${off}`);
  }
  for (let i = 0; i < 1000; i++) w.append("small append\n");
  const grown = process.memoryUsage().rss - base;
  t.ok(grown < 200 * (1 << 20), `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB for 100 MiB of text (bound: 2x)`);
});
