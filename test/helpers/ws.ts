// WebSocket and event-stream helpers for tests of pi9's hypivisor face:
// a queue of JSON frames, HTTP status probes, and a line reader over a 9P
// stream file. Every wait is bounded and fails naming what it waited for.

import http from "node:http";
import WebSocket from "ws";
import type { Client, Fid } from "../../src/ninep/client.js";

/** How long any single wait may take before the test fails (a bound, not a measurement). */
export const WAIT_MS = 20000;

/** Frames received on a WebSocket, taken in order or by predicate. */
export class WsQueue {
  readonly frames: any[] = [];
  private waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  closed = false;
  private closeWaiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on("message", (d, bin) => {
      let m: any;
      try { m = bin ? { binary: true } : JSON.parse(d.toString()); } catch { m = { text: d.toString() }; }
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) { const [w] = this.waiters.splice(i, 1); w.resolve(m); } else this.frames.push(m);
    });
    ws.on("close", () => { this.closed = true; for (const f of this.closeWaiters.splice(0)) f(); });
    ws.on("error", () => {});
  }

  static open(url: string): Promise<WsQueue> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      // Frames may arrive before the caller takes the queue: attach it now.
      const q = new WsQueue(ws);
      ws.once("open", () => resolve(q));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`${url.replace(/token=[^&]*/, "token=…")}: HTTP ${res.statusCode}`)));
      ws.once("error", (e) => reject(e));
    });
  }

  /** The first frame (queued or to come) matching pred; frames before it stay queued. */
  take(pred: (m: any) => boolean = () => true, what = "a frame"): Promise<any> {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: any) => { clearTimeout(t); resolve(m); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${what}; queued: ${JSON.stringify(this.frames).slice(0, 2000)}`));
      }, WAIT_MS);
      this.waiters.push(w);
    });
  }

  /** The next frame, whatever it is. */
  next(what = "next frame") { return this.take(() => true, what); }

  send(v: unknown) { this.ws.send(typeof v === "string" ? v : JSON.stringify(v)); }

  /** Send a request and take the response with its id. */
  request(id: string, method: string, params?: unknown): Promise<any> {
    this.send(params === undefined ? { id, method } : { id, method, params });
    return this.take((m) => m.id === id && ("result" in m || "error" in m), `response ${id} (${method})`);
  }

  waitClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("socket did not close")), WAIT_MS);
      this.closeWaiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  close() { this.ws.close(); return this.waitClosed(); }
}

/** The HTTP status a WebSocket upgrade to url gets (101 when it opens). */
export function upgradeStatus(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("open", () => { ws.close(); resolve({ status: 101, body: "" }); });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once("error", (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

/** A plain HTTP GET: status and body. */
export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

/** Lines of a 9P stream file (an event file), read as they come. */
export class Lines {
  readonly seen: string[] = [];
  private pending: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  private ac = new AbortController();
  private buf = "";
  done: Promise<void>;

  /** Open the stream now: lines from this moment on are seen. */
  static async open(c: Client, file: string): Promise<Lines> {
    return new Lines(c, await c.open(file, "r"));
  }

  private constructor(c: Client, private fid: Fid) {
    this.done = (async () => {
      try {
        for await (const b of c.readStream(fid, { signal: this.ac.signal })) {
          this.buf += b.toString("utf8");
          let i;
          while ((i = this.buf.indexOf("\n")) >= 0) {
            const l = this.buf.slice(0, i);
            this.buf = this.buf.slice(i + 1);
            this.seen.push(l);
            const k = this.waiters.findIndex((w) => w.pred(l));
            if (k >= 0) { const [w] = this.waiters.splice(k, 1); w.resolve(l); } else this.pending.push(l);
          }
        }
      } catch { /* aborted or the file went away */ }
    })();
  }

  /** The first line (pending or to come) matching re; lines before it are dropped. */
  take(re: RegExp | string): Promise<string> {
    const pred = typeof re === "string" ? (l: string) => l === re : (l: string) => re.test(l);
    const i = this.pending.findIndex(pred);
    if (i >= 0) { const l = this.pending[i]; this.pending.splice(0, i + 1); return Promise.resolve(l); }
    this.pending = [];
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: string) => { clearTimeout(t); resolve(l); } };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no line ${re}; seen: ${JSON.stringify(this.seen.slice(-40))}`));
      }, WAIT_MS);
      this.waiters.push(w);
    });
  }

  async stop() {
    this.ac.abort();
    await this.done;
    await this.fid.clunk().catch(() => {});
  }
}
