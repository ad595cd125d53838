// The load client: a child process (never the server's process) that opens
// its connections, warms up, waits for "go", runs for a fixed time and
// reports what it did. run.ts forks the same code for pi9 and for diod.
//
// Jobs:
//   cycles  — per slot, one small-op cycle in flight at a time:
//             Twalk(root → newfid, names) → Tlopen(O_RDONLY) → Tread(count) → Tclunk.
//             Each connection runs `depth` slots (own fid and tag each).
//   seqread — one connection, one fid opened once, Treads of msize-24 at
//             increasing offsets (`depth` outstanding), wrapping to 0 at the end.

import { MT } from "../src/ninep/constants.js";
import { BenchError, frame, Wire } from "./wire.js";

export interface CyclesJob {
  kind: "cycles";
  sock: string; aname: string; names: string[];
  msize: number; readCount: number; expect: number;
  conns: number; depth: number; warmMs: number;
}
export interface SeqReadJob {
  kind: "seqread";
  sock: string; aname: string; names: string[];
  msize: number; size: number; depth: number; warmMs: number;
}
export type Job = CyclesJob | SeqReadJob;

export interface Result { ops: number; bytes: number; ms: number; msize: number }

export type ToWorker = { cmd: "job"; job: Job } | { cmd: "go"; ms: number } | { cmd: "exit" };
export type FromWorker = { ready: true; msize: number } | { result: Result } | { error: string };

const ROOT_FID = 0;
const TAG0 = 16;
const FID0 = 1000;

/** A runner measures for `ms` and then resolves with what it counted. */
interface Runner { msize: number; run(ms: number): Promise<Result> }

function timed(ms: number, start: () => void, snapshot: () => { ops: number; bytes: number }, stopAll: () => Promise<void>): Promise<{ ops: number; bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    try { start(); } catch (e) { reject(e); return; }
    setTimeout(() => {
      const elapsed = performance.now() - t0;
      const s = snapshot();
      stopAll().then(() => resolve({ ...s, ms: elapsed }), reject);
    }, ms);
  });
}

async function cyclesRunner(job: CyclesJob): Promise<Runner> {
  const wires: Wire[] = [];
  let msize = 0;
  for (let i = 0; i < job.conns; i++) {
    const w = await Wire.connect(job.sock);
    msize = await w.handshake(job.msize, job.aname, ROOT_FID);
    wires.push(w);
  }
  let cycles = 0, stopping = false, failure: Error | null = null;
  let idle = 0;
  let onIdle: (() => void) | null = null;
  const total = job.conns * job.depth;
  const walkSize = 7 + 2 + 13 * job.names.length;
  const expectRead = 7 + 4 + job.expect;
  for (const w of wires) {
    const walk: Buffer[] = [], lopen: Buffer[] = [], read: Buffer[] = [], clunk: Buffer[] = [];
    for (let s = 0; s < job.depth; s++) {
      const tag = TAG0 + s, fid = FID0 + s;
      walk.push(frame({ type: "Twalk", tag, fid: ROOT_FID, newfid: fid, wnames: job.names }));
      lopen.push(frame({ type: "Tlopen", tag, fid, flags: 0 }));
      read.push(frame({ type: "Tread", tag, fid, offset: 0, count: job.readCount }));
      clunk.push(frame({ type: "Tclunk", tag, fid }));
    }
    const fail = (e: Error) => { failure ??= e; stopping = true; idle = total; onIdle?.(); };
    w.onFail = fail;
    w.onReply = (type, tag, size, body) => {
      const s = tag - TAG0;
      switch (type) {
        case MT.Rwalk:
          if (size !== walkSize) return fail(new BenchError(`Rwalk of ${size} bytes: walk to ${job.names.join("/")} failed part way`));
          w.send(lopen[s]); return;
        case MT.Rlopen: w.send(read[s]); return;
        case MT.Rread:
          if (size !== expectRead) return fail(new BenchError(`Rread of ${size - 11} bytes, expected ${job.expect}`));
          w.send(clunk[s]); return;
        case MT.Rclunk:
          cycles++;
          if (!stopping) { w.send(walk[s]); return; }
          if (++idle === total) onIdle?.();
          return;
        case MT.Rlerror: return fail(new BenchError(`Rlerror errno ${body?.readUInt32LE(7)} in a cycle`));
        default: return fail(new BenchError(`unexpected reply type ${type}`));
      }
    };
    (w as Wire & { start?: () => void }).start = () => { for (const b of walk) w.send(b); };
  }
  const round = (ms: number) => {
    cycles = 0; idle = 0; stopping = false;
    const drained = new Promise<void>((r) => { onIdle = r; });
    return timed(ms, () => { for (const w of wires) (w as Wire & { start: () => void }).start(); },
      () => ({ ops: cycles, bytes: 0 }),
      () => { stopping = true; return drained; });
  };
  await round(job.warmMs);
  if (failure) throw failure;
  return {
    msize,
    async run(ms) {
      const r = await round(ms);
      if (failure) throw failure;
      for (const w of wires) w.close();
      return { ...r, msize };
    },
  };
}

async function seqReadRunner(job: SeqReadJob): Promise<Runner> {
  const w = await Wire.connect(job.sock);
  const msize = await w.handshake(job.msize, job.aname, ROOT_FID);
  const fid = FID0;
  await w.request({ type: "Twalk", tag: 2, fid: ROOT_FID, newfid: fid, wnames: job.names });
  await w.request({ type: "Tlopen", tag: 2, fid, flags: 0 });
  const count = msize - 24;
  const tmpl = frame({ type: "Tread", tag: 0, fid, offset: 0, count });
  let next = 0, bytes = 0, reads = 0, stopping = false, outstanding = 0, failure: Error | null = null;
  let onIdle: (() => void) | null = null;
  const offsets = new Map<number, number>();
  const sendRead = (tag: number) => {
    if (next >= job.size) next = 0;
    const b = Buffer.from(tmpl);
    b.writeUInt16LE(tag, 5);
    b.writeUInt32LE(next % 0x100000000, 11); b.writeUInt32LE(Math.floor(next / 0x100000000), 15);
    offsets.set(tag, next);
    next += count;
    outstanding++;
    w.send(b);
  };
  const fail = (e: Error) => { failure ??= e; stopping = true; outstanding = 0; onIdle?.(); };
  w.onFail = fail;
  w.onReply = (type, tag, size, body) => {
    outstanding--;
    if (type === MT.Rlerror) return fail(new BenchError(`Rlerror errno ${body?.readUInt32LE(7)} in a read`));
    if (type !== MT.Rread) return fail(new BenchError(`unexpected reply type ${type}`));
    const n = size - 11, off = offsets.get(tag)!;
    const want = Math.min(count, job.size - off);
    if (n !== want) return fail(new BenchError(`Rread at ${off} gave ${n} bytes, expected ${want}`));
    bytes += n; reads++;
    if (!stopping) sendRead(tag);
    else if (outstanding === 0) onIdle?.();
  };
  const round = (ms: number) => {
    bytes = 0; reads = 0; stopping = false;
    const drained = new Promise<void>((r) => { onIdle = r; });
    return timed(ms, () => { for (let i = 0; i < job.depth; i++) sendRead(TAG0 + i); },
      () => ({ ops: reads, bytes }),
      () => { stopping = true; return outstanding === 0 ? Promise.resolve() : drained; });
  };
  await round(job.warmMs);
  if (failure) throw failure;
  return {
    msize,
    async run(ms) {
      const r = await round(ms);
      if (failure) throw failure;
      w.close();
      return { ...r, msize };
    },
  };
}

function send(m: FromWorker) { process.send!(m); }

if (process.send) {
  let runner: Promise<Runner> | null = null;
  const die = (e: unknown) => { send({ error: (e as Error)?.message ?? String(e) }); setTimeout(() => process.exit(1), 50); };
  process.on("message", (m: ToWorker) => {
    if (m.cmd === "job") {
      runner = m.job.kind === "cycles" ? cyclesRunner(m.job) : seqReadRunner(m.job);
      runner.then((r) => send({ ready: true, msize: r.msize }), die);
    } else if (m.cmd === "go") {
      runner!.then((r) => r.run(m.ms)).then((result) => send({ result }), die);
    } else process.exit(0);
  });
  process.on("disconnect", () => process.exit(0));
}
