// Tflush of a `spawn` written to /mnt/xenith/new, with raw frames against a
// real `pi9 serve` running real pi (offline, scripted): a spawn cannot be
// taken back once started, so either the Rwrite comes before the Rflush and
// the window exists, or neither happened — never an Rflush alone for a
// window that exists, never a reply after the Rflush.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { Client } from "../src/ninep/client.js";
import { piServeArgs, poll } from "./helpers/pi.js";
import { RawConn } from "./helpers/raw9p.js";
import { startServe } from "./helpers/serve.js";

t.test("a flushed spawn: Rwrite then Rflush and the window exists, or neither", async (t) => {
  const base = mkdtempSync(path.join(os.tmpdir(), "pi9-flush-spawn-"));
  const proj = path.join(base, "proj");
  const s = await startServe({ args: piServeArgs(base) });
  t.teardown(async () => { await s.stop(); rmSync(base, { recursive: true, force: true }); });
  const c = await RawConn.connect(s.sock);
  t.teardown(() => c.close());
  await c.version("9P2000.L", 65536);
  t.equal((await c.attach(0, "/mnt/xenith")).type, "Rattach");
  await c.openPath(1, 0, ["new"], "rw");
  const from = c.received.length;
  // The spawn and its flush in one socket write, as a client that was interrupted at once.
  c.send({ type: "Twrite", tag: 20, fid: 1, offset: 0, data: Buffer.from(`spawn ${proj} mkdir name=flushed\n`) });
  c.send({ type: "Tflush", tag: 21, oldtag: 20 });
  await c.reply(21);
  // Anything for tag 20 must already be here: nothing may follow the Rflush.
  await c.sync();
  const seen = c.received.slice(from).filter((m) => m.tag === 20 || m.tag === 21).map((m) => `${m.type}:${m.tag}`);
  const cl = await Client.connect(`unix!${s.sock}`);
  t.teardown(() => cl.close());
  const index = (await cl.readAll("/mnt/xenith/index")).toString();
  const exists = /\bflushed\b/.test(index);
  if (seen[0] === "Rwrite:20") {
    t.same(seen, ["Rwrite:20", "Rflush:21"], "the write is answered first, then the flush");
    t.ok(exists, "and the window exists");
    // It is a real agent: its status line says so.
    const id = Number(/^(\d+) pi \S+ flushed/m.exec(index)![1]);
    await poll(async () => /^\d+ pi (idle|working) /.test((await cl.readAll(`/mnt/xenith/${id}/ctl`)).toString()), "the spawned agent comes up");
  } else {
    t.same(seen, ["Rflush:21"], "only the Rflush");
    t.notOk(exists, "and no window was made");
  }
  // The connection is still in order: a later request is answered.
  t.equal((await c.rpc({ type: "Tclunk", tag: 30, fid: 1 })).type, "Rclunk");
});
