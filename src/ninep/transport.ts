// Transports: TCP, unix sockets and stdio, addressed as src/lib/addr.ts
// parses them (Plan 9 dial strings or host:port).

import { existsSync, unlinkSync } from "node:fs";
import { Addr, AddrError, formatAddr } from "../lib/addr.js";
import net from "node:net";
import { Duplex } from "node:stream";

/** Remove a unix socket left by a dead server; refuse if one is alive. */
async function clearStaleSocket(p: string) {
  if (!existsSync(p)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    c.once("connect", () => { c.destroy(); resolve(true); });
    c.once("error", () => resolve(false));
  });
  if (alive) throw new AddrError(`unix!${p}: another server is listening there`);
  unlinkSync(p);
}

export async function listen(a: Addr, onConn: (s: net.Socket, label: string) => void): Promise<net.Server> {
  if (a.kind === "unix") await clearStaleSocket(a.path);
  const srv = net.createServer({ noDelay: true } as net.ServerOpts, (s) => {
    const label = a.kind === "unix" ? `unix!${a.path}` : `tcp!${s.remoteAddress}!${s.remotePort}`;
    onConn(s, label);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once("error", (e: NodeJS.ErrnoException) => reject(new AddrError(`${formatAddr(a)}: ${e.code === "EADDRINUSE" ? "address already in use" : e.message}`)));
    if (a.kind === "unix") srv.listen(a.path, () => resolve());
    else srv.listen(a.port, a.host, () => resolve());
  });
  if (a.kind === "unix") {
    const { chmodSync } = await import("node:fs");
    chmodSync(a.path, 0o600);
  }
  return srv;
}

/** Dial an address; resolves with the connected socket. */
export function dial(a: Addr, timeoutMs = 10000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = a.kind === "unix" ? net.connect(a.path) : net.connect(a.port, a.host);
    const t = setTimeout(() => { s.destroy(); reject(new AddrError(`${formatAddr(a)}: connection timed out`)); }, timeoutMs);
    s.once("connect", () => { clearTimeout(t); s.setNoDelay(true); resolve(s); });
    s.once("error", (e: NodeJS.ErrnoException) => { clearTimeout(t); reject(new AddrError(`${formatAddr(a)}: ${e.code === "ECONNREFUSED" ? "connection refused" : e.code === "ENOENT" ? "no such socket" : e.message}`)); });
  });
}

/** stdin/stdout as one duplex stream, for `ssh host pi9 serve --stdio`. */
export function stdioStream(): Duplex {
  return Duplex.from({ readable: process.stdin, writable: process.stdout });
}
