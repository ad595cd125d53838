// A small pipelined 9P2000.L driver for the benchmarks. It is not a general
// client (that is src/ninep/client.ts): it encodes requests with the codec,
// splits replies into frames without copying large payloads, and lets the
// hot loops send pre-encoded frames and look only at a reply's type and tag.

import net from "node:net";
import { decode, encode, Msg } from "../src/ninep/codec.js";
import { MT, NOFID } from "../src/ninep/constants.js";

export const DIALECT = "9P2000.L" as const;

/** One reply as the hot loops see it: type, tag, total frame size, and the body for small non-Rread replies. */
export type OnReply = (type: number, tag: number, size: number, frame: Buffer | null) => void;

export class BenchError extends Error {}

/** Encode a T-message with the codec. */
export function frame(m: Msg): Buffer { return encode(m, DIALECT); }

export class Wire {
  readonly sock: net.Socket;
  msize = 0;
  /** Called for every reply; setup code uses request(), which installs a one-shot handler per tag. */
  onReply: OnReply | null = null;
  /** Keep the bytes of Rread replies (setup and verification only). */
  keepReadData = false;
  private pending = new Map<number, (m: Msg) => void>();
  // frame splitter state
  private hdr = Buffer.allocUnsafe(7);
  private hlen = 0;
  private rem = 0;
  private curType = 0;
  private curTag = 0;
  private curSize = 0;
  private parts: Buffer[] | null = null;
  private failed: Error | null = null;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on("data", (b: Buffer) => this.onData(b));
    sock.on("error", (e) => this.fail(e));
    sock.on("close", () => this.fail(new BenchError("connection closed by the server")));
  }

  static connect(path: string): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once("connect", () => { s.setNoDelay(true); resolve(new Wire(s)); });
      s.once("error", reject);
    });
  }

  private fail(e: Error) {
    if (this.failed) return;
    this.failed = e;
    for (const cb of this.pending.values()) cb({ type: "Rlerror", tag: 0, ecode: -1, error: e.message });
    this.pending.clear();
    this.onFail?.(e);
  }
  onFail: ((e: Error) => void) | null = null;

  private onData(b: Buffer) {
    let off = 0;
    const n = b.length;
    while (off < n) {
      if (this.rem === 0) {
        // Fast path: a whole header in this chunk.
        if (this.hlen === 0 && n - off >= 7) {
          this.curSize = b.readUInt32LE(off); this.curType = b[off + 4]; this.curTag = b.readUInt16LE(off + 5);
          off += 7;
        } else {
          const take = Math.min(7 - this.hlen, n - off);
          b.copy(this.hdr, this.hlen, off, off + take);
          this.hlen += take; off += take;
          if (this.hlen < 7) return;
          this.hlen = 0;
          this.curSize = this.hdr.readUInt32LE(0); this.curType = this.hdr[4]; this.curTag = this.hdr.readUInt16LE(5);
        }
        if (this.curSize < 7) { this.sock.destroy(); this.fail(new BenchError(`bad frame size ${this.curSize}`)); return; }
        this.rem = this.curSize - 7;
        const keep = this.curType !== MT.Rread || this.keepReadData;
        if (this.rem === 0) { this.deliver(keep ? [] : null); continue; }
        if (keep && n - off >= this.rem) {
          // The whole body is in this chunk: a view, no copy.
          const body = b.subarray(off, off + this.rem);
          off += this.rem; this.rem = 0;
          this.deliver([body]);
          continue;
        }
        this.parts = keep ? [] : null;
      }
      const take = Math.min(this.rem, n - off);
      if (this.parts) this.parts.push(b.subarray(off, off + take));
      off += take; this.rem -= take;
      if (this.rem === 0) { const p = this.parts; this.parts = null; this.deliver(p); }
    }
  }

  private deliver(body: Buffer[] | null) {
    const type = this.curType, tag = this.curTag, size = this.curSize;
    let whole: Buffer | null = null;
    if (body) {
      whole = Buffer.allocUnsafe(size);
      whole.writeUInt32LE(size, 0); whole[4] = type; whole.writeUInt16LE(tag, 5);
      let o = 7;
      for (const p of body) { p.copy(whole, o); o += p.length; }
    }
    const cb = this.pending.get(tag);
    if (cb) {
      this.pending.delete(tag);
      if (!whole) throw new BenchError("setup request got an Rread without data");
      cb(decode(whole, DIALECT));
      return;
    }
    if (this.onReply) this.onReply(type, tag, size, whole);
    else this.fail(new BenchError(`unexpected reply type ${type} tag ${tag}`));
  }

  send(b: Buffer) { this.sock.write(b); }

  /** One request, one decoded reply (setup only; hot loops use send/onReply). */
  request(m: Msg): Promise<Msg> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.pending.set(m.tag, (r) => {
        if (r.type === "Rlerror") reject(new BenchError(`${m.type}: ${r.error ?? `errno ${r.ecode}`}`));
        else resolve(r);
      });
      this.sock.write(frame(m));
    });
  }

  /** Tversion + Tattach; returns the negotiated msize. */
  async handshake(msize: number, aname: string, rootFid = 0): Promise<number> {
    const v = await this.request({ type: "Tversion", tag: 0xffff, msize, version: DIALECT });
    if (v.version !== DIALECT) throw new BenchError(`server answered version ${v.version}`);
    this.msize = v.msize;
    await this.request({ type: "Tattach", tag: 1, fid: rootFid, afid: NOFID, uname: process.env.USER || "root", aname, n_uname: process.getuid?.() ?? 0 });
    return this.msize;
  }

  close() { this.onFail = null; this.failed = this.failed ?? new BenchError("closed"); this.sock.destroy(); }
}
