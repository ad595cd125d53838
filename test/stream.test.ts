// Broadcast streams under load: publishing costs the same whatever the
// number of idle readers, memory is bounded per stream (not per reader), and
// a reader that falls behind is told exactly how much it lost.

import t from "tap";
import { Broadcast, Cursor, STREAM_QUEUE_BYTES } from "../src/fs/stream.js";

const sig = () => new AbortController().signal;

/** Read everything available without blocking; the last (pending) read is aborted. */
function drain(c: Cursor, count = 65536): string {
  let out = "";
  for (let i = 0; i < 100000; i++) {
    const ac = new AbortController();
    const r = c.read(count, ac.signal);
    if (r instanceof Promise) { r.catch(() => {}); ac.abort(); return out; }
    out += r.toString();
  }
  throw new Error("drain did not end");
}

t.test("publishing does not touch idle readers", async (t) => {
  const b = new Broadcast();
  const idle = Array.from({ length: 2000 }, () => b.subscribe());
  const waiter = b.subscribe();
  const pending = waiter.read(100, sig());
  t.ok(pending instanceof Promise);
  // Count every call of a Cursor method while publishing.
  let calls = 0;
  const proto = Cursor.prototype as unknown as Record<string, unknown>;
  const saved: [string, unknown][] = [];
  for (const k of Object.getOwnPropertyNames(Cursor.prototype)) {
    const f = proto[k];
    if (k === "constructor" || typeof f !== "function") continue;
    saved.push([k, f]);
    proto[k] = function (this: unknown, ...a: unknown[]) { calls++; return (f as (...x: unknown[]) => unknown).apply(this, a); };
  }
  const N = 50000;
  try { for (let i = 0; i < N; i++) b.publish(`x ${i}`); } finally { for (const [k, f] of saved) proto[k] = f; }
  t.ok(calls <= N, `${calls} cursor calls for ${N} events and ${idle.length + 1} readers (one per event for the waiting reader at most)`);
  t.equal((await pending).toString().split("\n")[0], "x 0", "the waiting reader got the first event");
  // The idle readers lost nothing that fits their limit.
  const got = drain(idle[0]).split("\n").filter(Boolean);
  t.equal(got.length, N, "an idle reader reads every event (within the limit)");
  t.equal(got[N - 1], `x ${N - 1}`);
});

t.test("memory is bounded per stream, and the loss is counted exactly", async (t) => {
  const b = new Broadcast();
  const slow = b.subscribe();
  const line = "y".repeat(99); // 100 bytes with the newline
  const N = 60000; // 6 MB
  for (let i = 0; i < N; i++) b.publish(line);
  const kept = b.end - b.base;
  t.ok(kept * 100 <= 2 * STREAM_QUEUE_BYTES, `the log keeps ${kept * 100} bytes, at most twice the limit`);
  t.ok(kept * 100 >= STREAM_QUEUE_BYTES - 100, "and at least the limit for the slow reader");
  const text = drain(slow);
  const m = /^lost (\d+)\n/.exec(text);
  t.ok(m, "the reader is told first");
  const read = text.slice(m![0].length).split("\n").filter(Boolean);
  t.equal(Number(m![1]) + read.length, N, "lost + read = published");
  t.ok(read.every((l) => l === line), "whole lines only");
  // drain ended with a read that waited: every reader was at the end, so nothing is kept.
  t.equal(b.end - b.base, 0, "everything read is dropped once every reader waits");
  const p = slow.read(100, sig());
  t.ok(p instanceof Promise);
  b.publish("z");
  t.equal((await p).toString(), "z\n");
  slow.close();
  b.publish("nobody");
  t.equal(b.readers, 0);
  t.equal(b.end - b.base, 0, "no reader, no log");
});

t.test("tiny lines: the line limit bounds the log too", async (t) => {
  const b = new Broadcast();
  const c = b.subscribe();
  for (let i = 0; i < 300000; i++) b.publish("");
  t.ok(b.end - b.base <= 2 * 65536, `${b.end - b.base} lines kept`);
  const text = drain(c);
  const m = /^lost (\d+)\n/.exec(text)!;
  t.equal(Number(m[1]) + (text.length - m[0].length), 300000, "each empty event is one newline; lost + read = published");
});

t.test("tiny reads split long lines and the lost line, never lose bytes", async (t) => {
  const b = new Broadcast(64);
  const c = b.subscribe();
  for (let i = 0; i < 40; i++) b.publish(`line ${i}`);
  let text = "";
  for (let i = 0; i < 1000; i++) {
    const r = c.read(3, sig());
    if (r instanceof Promise) { r.catch(() => {}); c.close(); break; }
    t.ok(r.length <= 3);
    text += r.toString();
  }
  const m = /^lost (\d+)\n((?:line \d+\n)+)$/.exec(text);
  t.ok(m, `reassembled: ${JSON.stringify(text)}`);
  t.equal(Number(m![1]) + m![2].split("\n").filter(Boolean).length, 40);
});

t.test("a pending read released by close, flush and fail leaves no waiter behind", async (t) => {
  const b = new Broadcast();
  const a = b.subscribe(), c = b.subscribe(), d = b.subscribe();
  const ac = new AbortController();
  const pa = a.read(10, ac.signal) as Promise<Buffer>;
  const pc = c.read(10, sig()) as Promise<Buffer>;
  ac.abort();
  await t.rejects(pa, { code: "ECANCELED" });
  c.close();
  await t.rejects(pc, { code: "ECANCELED" });
  t.equal(b.readers, 2, "a and d remain");
  b.publish("after");
  t.equal((a.read(100, sig()) as Buffer).toString(), "after\n", "a flushed reader reads on");
  t.equal((d.read(100, sig()) as Buffer).toString(), "after\n");
});
