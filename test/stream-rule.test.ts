// The rule of when a Tread on a stream fid is answered 0 at once
// (src/ninep/stream-rule.ts, DESIGN.md 2.2), as a unit. protocol.test.ts and
// the v9fs suites check it end to end.

import t from "tap";
import { StreamReadRule } from "../src/ninep/stream-rule.js";

t.test("a continuation of a short read gets 0; other reads go to the file", async (t) => {
  const msize = 131072;
  const r = new StreamReadRule();
  t.notOk(r.continues(0, 65536, msize), "the first read goes to the file");
  r.answered(0, 65536, 6);
  t.ok(r.continues(6, 65530, msize), "the kernel's follow-up Tread inside one read(2) gets 0");
  r.answered(6, 65530, 0);
  t.notOk(r.continues(6, 65536, msize), "after the 0, the next read(2) goes to the file (blocks)");
  r.answered(6, 65536, 6);
  t.notOk(r.continues(13, 65530, msize), "an offset that does not follow is no continuation");
  t.notOk(r.continues(12, 65536, msize), "nor is a count that did not shrink");
});

t.test("a reader with a buffer of at least msize repeats count = msize-24 and still gets 0", async (t) => {
  const msize = 131072, full = msize - 24;
  const r = new StreamReadRule();
  r.answered(12, full, 2);
  t.ok(r.continues(14, full, msize));
});

t.test("one-Tread-per-read clients (msize 8192) are never answered 0", async (t) => {
  const r = new StreamReadRule();
  r.answered(0, 8168, 2);
  t.notOk(r.continues(2, 8168, 8192), "plan9port's 9p and 9pfuse block instead of seeing EOF");
});

t.test("never a 0 after a reply that filled the count, and none after a failure", async (t) => {
  const r = new StreamReadRule();
  r.answered(0, 100, 100);
  t.notOk(r.continues(100, 50, 131072), "Linux sends no follow-up after a full reply");
  r.answered(0, 100, 6);
  r.forget();
  t.notOk(r.continues(6, 94, 131072), "a flushed or failed read leaves no history");
});
