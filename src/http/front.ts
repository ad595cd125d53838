// The one HTTP/WebSocket front on `--http`, shared by every subsystem.
//
// Subsystems add routes (an exact path or a prefix, for plain HTTP, for a
// WebSocket upgrade, or both); the front owns what every route needs alike:
// the token check (the same tokenMatches that 9P's attach uses, given as
// `?token=` or `Authorization: Bearer`), the limits (request body size,
// header and idle timeouts so a slow or half-open client cannot hold the
// server, a WebSocket payload cap per route, a cap on connections) and one
// error shape, `{"error": "..."}` with a proper status code, for HTTP and
// for refused upgrades alike. Nothing here knows about agents or PNGs.

import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import type { Addr } from "../lib/addr.js";
import { formatAddr } from "../lib/addr.js";
import type { Logger } from "../lib/log.js";
import { tokenMatches } from "../lib/token.js";

/** The limits of the front; every one is listed in pi9(1) LIMITS. */
export const HTTP_LIMITS = {
  /** Largest request body a route reads (readBody), bytes. */
  maxBody: 1 << 20,
  /** Time to receive a request's headers, ms. */
  headersTimeoutMs: 10_000,
  /** Time to receive a whole request, ms. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection is closed after this, ms. */
  keepAliveTimeoutMs: 5_000,
  /** Connections open at once (HTTP and WebSocket together). */
  maxConnections: 1024,
  /** Default largest WebSocket message, bytes (a route may set its own). */
  wsMaxPayload: 1 << 20,
};
export type HttpLimits = typeof HTTP_LIMITS;

/** An error a route throws to answer with its status and `{error}`. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export interface Route {
  /** `/ws` (exact) or `/ws/agent/` with prefix: true. */
  path: string;
  prefix?: boolean;
  /** Answer a plain HTTP request; `rest` is the path after a prefix. */
  http?: (req: http.IncomingMessage, res: http.ServerResponse, rest: string) => void | Promise<void>;
  /** Take an upgraded WebSocket; throw HttpError before the upgrade to refuse it (see check). */
  ws?: (ws: WebSocket, req: http.IncomingMessage, rest: string) => void;
  /** Refuse an upgrade before it happens (a missing id, say): throw HttpError. */
  check?: (req: http.IncomingMessage, rest: string) => void;
  /** Largest message on this route's WebSockets (default HTTP_LIMITS.wsMaxPayload). */
  wsMaxPayload?: number;
}

export interface FrontOptions {
  token?: string;
  log: Logger;
  limits?: Partial<HttpLimits>;
}

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/**
 * Percent-decoding as hypivisor's (Rust percent_encoding): each valid %XX
 * becomes its byte, anything else stays as it is ('+' is not a space, a
 * lone '%' is a '%'); the bytes must be UTF-8.
 */
export function percentDecode(s: string): string | undefined {
  const raw = Buffer.from(s, "utf8");
  const out = Buffer.alloc(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      out[n++] = parseInt(raw.subarray(i + 1, i + 3).toString("latin1"), 16);
      i += 2;
    } else out[n++] = raw[i];
  }
  try { return new TextDecoder("utf-8", { fatal: true }).decode(out.subarray(0, n)); } catch { return undefined; }
}

/** The first `token=` value of a URL's query, percent-decoded as hypivisor does. */
export function queryToken(url: string): string | undefined {
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  for (const pair of url.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq) !== "token") continue;
    return percentDecode(pair.slice(eq + 1));
  }
  return undefined;
}

/** The token a request presents: `?token=` first, else `Authorization: Bearer <t>`. */
export function requestToken(req: http.IncomingMessage): string | undefined {
  const q = queryToken(req.url ?? "/");
  if (q !== undefined) return q;
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m ? m[1] : undefined;
}

function errorBody(message: string) { return JSON.stringify({ error: message }); }

/** Answer `{error}` with a status on a plain response. */
export function sendError(res: http.ServerResponse, status: number, message: string) {
  if (res.headersSent) { res.destroy(); return; }
  const body = errorBody(message);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), Connection: "close" });
  res.end(body);
}

/** Answer JSON with a status. */
export function sendJson(res: http.ServerResponse, status: number, v: unknown) {
  const body = JSON.stringify(v);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

const REASON: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large", 503: "Service Unavailable" };

function refuseUpgrade(sock: Duplex, status: number, message: string) {
  const body = errorBody(message);
  sock.end(`HTTP/1.1 ${status} ${REASON[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export class HttpFront {
  private routes: Route[] = [];
  private wss = new Map<number, WebSocketServer>();
  private server: http.Server | null = null;
  private sockets = new Set<net.Socket>();
  readonly limits: HttpLimits;
  private log: Logger;
  /** The port listened on (the real one when 0 was asked). */
  port = 0;

  constructor(private opts: FrontOptions) {
    this.limits = { ...HTTP_LIMITS, ...opts.limits };
    this.log = opts.log;
  }

  /** Add a route; the longest matching path wins, exact before prefix. */
  add(r: Route) {
    if (this.routes.some((o) => o.path === r.path && !!o.prefix === !!r.prefix)) throw new Error(`http: route ${r.path} added twice`);
    this.routes.push(r);
    this.routes.sort((a, b) => b.path.length - a.path.length || Number(!!a.prefix) - Number(!!b.prefix));
  }

  private match(url: string): { route: Route; rest: string } | null {
    const p = url.split("?")[0];
    for (const r of this.routes) {
      if (r.prefix ? p.startsWith(r.path) : p === r.path) return { route: r, rest: r.prefix ? p.slice(r.path.length) : "" };
    }
    return null;
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.opts.token) return true;
    return tokenMatches(requestToken(req), this.opts.token);
  }

  /**
   * The body of a request, at most limits.maxBody bytes (or `max`); a larger
   * one is refused with HttpError 413 before it is all read.
   */
  readBody(req: http.IncomingMessage, max = this.limits.maxBody): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const len = Number(req.headers["content-length"]);
      if (Number.isFinite(len) && len > max) { req.resume(); reject(new HttpError(413, `request body of ${len} bytes is over the limit of ${max}`)); return; }
      const parts: Buffer[] = [];
      let n = 0;
      req.on("data", (b: Buffer) => {
        n += b.length;
        if (n > max) {
          // Stop keeping it; the answer closes the connection, which ends the rest.
          req.removeAllListeners("data");
          req.pause();
          reject(new HttpError(413, `request body is over the limit of ${max} bytes`));
          return;
        }
        parts.push(b);
      });
      req.once("end", () => resolve(Buffer.concat(parts, n)));
      req.once("error", (e) => reject(new HttpError(400, e.message)));
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse) {
    const m = this.match(req.url ?? "/");
    if (!this.authorized(req)) return sendError(res, 401, "Unauthorized");
    if (!m) return sendError(res, 404, "Not Found");
    const { route, rest } = m;
    if (!route.http) {
      // A plain request to a WebSocket path is a failed upgrade, as hypivisor answers it.
      try { route.check?.(req, rest); } catch (e) { if (e instanceof HttpError) return sendError(res, e.status, e.message); throw e; }
      return sendError(res, 400, "Bad Request");
    }
    const fail = (e: unknown) => {
      if (e instanceof HttpError) sendError(res, e.status, e.message);
      else { this.log.warn(`http: ${req.method} ${req.url?.split("?")[0]}: ${(e as Error)?.message ?? e}`); sendError(res, 500, "internal error"); }
    };
    try {
      const p = route.http(req, res, rest);
      if (p instanceof Promise) p.catch(fail);
    } catch (e) { fail(e); }
  }

  private onUpgrade(req: http.IncomingMessage, sock: Duplex, head: Buffer) {
    sock.on("error", () => {});
    const m = this.match(req.url ?? "/");
    if (!this.authorized(req)) { this.log.debug(`http: 401 for ${(req.url ?? "/").split("?")[0]}`); return refuseUpgrade(sock, 401, "Unauthorized"); }
    if (!m || !m.route.ws) return refuseUpgrade(sock, 404, "Not Found");
    const { route, rest } = m;
    try { route.check?.(req, rest); } catch (e) {
      if (e instanceof HttpError) return refuseUpgrade(sock, e.status, e.message);
      throw e;
    }
    const max = route.wsMaxPayload ?? this.limits.wsMaxPayload;
    let wss = this.wss.get(max);
    if (!wss) { wss = new WebSocketServer({ noServer: true, maxPayload: max }); this.wss.set(max, wss); }
    wss.handleUpgrade(req, sock, head, (ws) => {
      // A protocol error (a message over maxPayload, a bad frame) closes this socket only.
      ws.on("error", (e) => this.log.debug(`http: ${(req.url ?? "/").split("?")[0]}: websocket closed: ${e.message}`));
      route.ws!(ws, req, rest);
    });
  }

  /** Listen; resolves with the address as listened on (the real port when 0 was asked). */
  async listen(a: Addr): Promise<string> {
    const L = this.limits;
    const srv = http.createServer({
      headersTimeout: L.headersTimeoutMs, requestTimeout: Math.max(L.requestTimeoutMs, L.headersTimeoutMs), keepAliveTimeout: L.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this period (30 s by default): often enough that they mean what they say.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, L.headersTimeoutMs >> 1)),
    },
      (req, res) => this.onRequest(req, res));
    srv.maxConnections = L.maxConnections;
    srv.on("upgrade", (req, sock: Duplex, head) => this.onUpgrade(req, sock, head));
    srv.on("connection", (s: net.Socket) => { this.sockets.add(s); s.once("close", () => this.sockets.delete(s)); });
    srv.on("clientError", (e: NodeJS.ErrnoException, s: Duplex) => {
      const status = e.code === "HPE_HEADER_OVERFLOW" ? 431 : e.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      if (s.writable) {
        const body = errorBody(status === 408 ? "request timed out" : status === 431 ? "request headers too large" : "bad request");
        s.end(`HTTP/1.1 ${status} ${status === 408 ? "Request Timeout" : status === 431 ? "Request Header Fields Too Large" : "Bad Request"}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      } else s.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      srv.once("error", (e: NodeJS.ErrnoException) => reject(new Error(`--http ${formatAddr(a)}: ${e.code === "EADDRINUSE" ? "address already in use" : e.message}`)));
      if (a.kind === "unix") srv.listen(a.path, () => resolve());
      else srv.listen(a.port, a.host, () => resolve());
    });
    this.server = srv;
    if (a.kind === "unix") {
      const { chmodSync } = await import("node:fs");
      chmodSync(a.path, 0o600);
      return `http+unix!${a.path}`;
    }
    this.port = (srv.address() as net.AddressInfo).port;
    return `http://${a.host.includes(":") ? `[${a.host}]` : a.host}:${this.port}`;
  }

  async close() {
    for (const w of this.wss.values()) for (const c of w.clients) c.terminate();
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((r) => { srv.close(() => r()); for (const s of this.sockets) s.destroy(); });
  }
}
