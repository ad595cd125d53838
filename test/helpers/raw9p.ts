// A raw 9P connection for wire-level tests: frames built with the codec,
// sent as they are (pipelined, malformed, whatever the test wants), and
// replies collected in arrival order. Deliberately not the project client:
// these tests check the server byte by byte.

import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { decode, encode, Msg } from "../../src/ninep/codec.js";
import { Dialect, NOFID, NONUNAME, NOTAG } from "../../src/ninep/constants.js";
import { NinepServer, ServerOptions } from "../../src/ninep/server.js";
import { buildNamespace, Namespace } from "../../src/namespace.js";
import type { Logger } from "../../src/lib/log.js";

/** A safety net so a broken server fails a test instead of hanging it. Not a timing assertion. */
export const SAFETY_MS = 15000;

export class RawConn {
  dialect: Dialect = "9P2000";
  /** Every reply, in arrival order (decoded with the dialect in force when it arrived). */
  readonly received: Msg[] = [];
  /** Frames that did not decode (should never happen with pi9). */
  readonly undecodable: Buffer[] = [];
  private inbox: Msg[] = [];
  private waiters: { tag: number; resolve: (m: Msg) => void; reject: (e: Error) => void }[] = [];
  private buf: Buffer = Buffer.alloc(0);
  closed = false;
  readonly done: Promise<void>;

  constructor(readonly sock: Duplex) {
    sock.on("data", (b: Buffer) => this.onData(b));
    sock.on("error", () => {});
    this.done = new Promise((resolve) => sock.once("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed while waiting for tag ${w.tag}`));
      resolve();
    }));
  }

  static connect(sockPath: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(sockPath);
      s.once("connect", () => resolve(new RawConn(s)));
      s.once("error", reject);
    });
  }

  private onData(b: Buffer) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    while (this.buf.length >= 4) {
      const size = this.buf.readUInt32LE(0);
      if (this.buf.length < size) return;
      const frame = this.buf.subarray(0, size);
      this.buf = this.buf.subarray(size);
      let m: Msg;
      try { m = decode(frame, this.dialect); } catch { this.undecodable.push(Buffer.from(frame)); continue; }
      if (m.type === "Rversion" && m.version !== "unknown") this.dialect = m.version as Dialect;
      this.received.push(m);
      const i = this.waiters.findIndex((w) => w.tag === m.tag);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.inbox.push(m);
    }
  }

  send(m: Msg) { this.sock.write(encode(m, this.dialect)); }
  sendRaw(b: Buffer) { this.sock.write(b); }

  /** The next reply carrying `tag`. */
  reply(tag: number): Promise<Msg> {
    const i = this.inbox.findIndex((m) => m.tag === tag);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    if (this.closed) return Promise.reject(new Error(`connection closed; no reply for tag ${tag}`));
    return new Promise((resolve, reject) => {
      const w = { tag, resolve: (m: Msg) => { clearTimeout(timer); resolve(m); }, reject: (e: Error) => { clearTimeout(timer); reject(e); } };
      const timer = setTimeout(() => {
        const j = this.waiters.indexOf(w);
        if (j >= 0) this.waiters.splice(j, 1);
        reject(new Error(`no reply for tag ${tag} (safety net)`));
      }, SAFETY_MS);
      this.waiters.push(w);
    });
  }

  /** True when a reply with this tag has arrived (and was not yet taken). */
  has(tag: number) { return this.inbox.some((m) => m.tag === tag); }
  answered(tag: number) { return this.received.some((m) => m.tag === tag); }

  rpc(m: Msg): Promise<Msg> { this.send(m); return this.reply(m.tag); }

  async version(version = "9P2000.L", msize = 65536): Promise<Msg> {
    return this.rpc({ type: "Tversion", tag: NOTAG, msize, version });
  }

  async attach(fid = 0, aname = "", extra: Partial<Msg> = {}): Promise<Msg> {
    return this.rpc({ type: "Tattach", tag: 1, fid, afid: NOFID, uname: "test", aname, n_uname: NONUNAME, ...extra });
  }

  /** Version, attach, walk, open: the usual start. Returns nothing; fid `fid` is open. */
  async openPath(fid: number, root: number, names: string[], mode: "r" | "w" | "rw" = "r", tag = 2) {
    let r = await this.rpc({ type: "Twalk", tag, fid: root, newfid: fid, wnames: names });
    if (r.type !== "Rwalk" || r.wqids.length !== names.length) throw new Error(`walk ${names.join("/")}: ${JSON.stringify(r)}`);
    const acc = mode === "r" ? 0 : mode === "w" ? 1 : 2;
    r = this.dialect === "9P2000.L"
      ? await this.rpc({ type: "Tlopen", tag, fid, flags: acc })
      : await this.rpc({ type: "Topen", tag, fid, mode: acc });
    if (r.type !== "Rlopen" && r.type !== "Ropen") throw new Error(`open ${names.join("/")}: ${JSON.stringify(r)}`);
  }

  /** Wait for the server to have processed everything sent so far (one round trip). */
  async sync(tag = 0xfffe): Promise<void> {
    await this.rpc({ type: "Tflush", tag, oldtag: 0xfffd });
  }

  close() { this.sock.destroy(); return this.done; }
}

export interface InProcess {
  ns: Namespace;
  server: NinepServer;
  sock: string;
  /** warn/error lines the server logged (internal errors show up here). */
  warnings: string[];
  /** Why the server closed connections (its info lines "closing connection: …"). */
  closes: string[];
  dial(): Promise<RawConn>;
  close(): Promise<void>;
}

/** An in-process NinepServer over the real namespace on a unix socket in a tmp dir. */
export async function startInProcess(opts: Partial<ServerOptions> = {}): Promise<InProcess> {
  const ns = buildNamespace({ cwd: "/tmp" });
  const warnings: string[] = [], closes: string[] = [];
  const log: Logger = {
    debug() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m),
    info: (m) => { const i = m.indexOf("closing connection: "); if (i >= 0) closes.push(m.slice(i + 20)); },
  };
  const server = new NinepServer({ root: ns.root, log, ...opts });
  const dir = mkdtempSync(path.join(os.tmpdir(), "pi9-wire-"));
  const sock = path.join(dir, "9p.sock");
  const srv = net.createServer((s) => server.serve(s, "test"));
  await new Promise<void>((resolve) => srv.listen(sock, resolve));
  return {
    ns, server, sock, warnings, closes,
    dial: () => RawConn.connect(sock),
    close: async () => {
      server.closeAll();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Run the event loop until cond() holds (bounded by turns and the safety net). */
export async function until(cond: () => boolean, what: string, turns = 100000): Promise<void> {
  const start = Date.now();
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((r) => (i % 100 === 99 ? setTimeout(r, 1) : setImmediate(r)));
    if (Date.now() - start > SAFETY_MS) break;
  }
  throw new Error(`gave up waiting for ${what} (safety net)`);
}

/**
 * What a well-behaved client does: version, attach, walk to
 * /mnt/xenith/index, open, read. Returns the index text; throws on any
 * unexpected reply.
 */
export async function wellBehaved(sockPath: string, dialect: Dialect = "9P2000.L"): Promise<string> {
  const c = await RawConn.connect(sockPath);
  try {
    const v = await c.version(dialect, 8192);
    if (v.version !== dialect) throw new Error(`version: ${JSON.stringify(v)}`);
    const a = await c.attach(0, "");
    if (a.type !== "Rattach") throw new Error(`attach: ${JSON.stringify(a)}`);
    await c.openPath(1, 0, ["mnt", "xenith", "index"]);
    const r = await c.rpc({ type: "Tread", tag: 3, fid: 1, offset: 0, count: 8000 });
    if (r.type !== "Rread") throw new Error(`read: ${JSON.stringify(r)}`);
    const cl = await c.rpc({ type: "Tclunk", tag: 4, fid: 1 });
    if (cl.type !== "Rclunk") throw new Error(`clunk: ${JSON.stringify(cl)}`);
    return r.data.toString("utf8");
  } finally {
    await c.close();
  }
}
