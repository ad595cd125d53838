// Addresses: Plan 9 dial strings (tcp!host!port, unix!/path), host:port,
// and the user's runtime directory. Neutral ground: the 9P transports, the
// HTTP front, the agents and the CLI all name addresses the same way.

import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export type Addr = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export const DEFAULT_PORT = 5640;

export class AddrError extends Error {}

/** Parse `tcp!host!port`, `unix!/path`, `host:port`, `:port`, `[::1]:port` or a path. */
export function parseAddr(s: string, defaultPort = DEFAULT_PORT): Addr {
  const bang = s.split("!");
  if (bang.length > 1) {
    const [net_, host, port] = bang;
    if (net_ === "unix") {
      if (!host) throw new AddrError(`address ${s}: unix needs a path (unix!/path)`);
      return { kind: "unix", path: bang.slice(1).join("!") };
    }
    if (net_ === "tcp" || net_ === "net") {
      const p = port === undefined || port === "" ? defaultPort : Number(port === "9fs" || port === "564" ? 564 : port);
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new AddrError(`address ${s}: bad port ${port}`);
      const h = host === "*" || host === "" ? "0.0.0.0" : host;
      return { kind: "tcp", host: h, port: p };
    }
    throw new AddrError(`address ${s}: unknown network ${net_} (use tcp or unix)`);
  }
  if (s.startsWith("/") || s.startsWith("./")) return { kind: "unix", path: s };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (m) {
    const port = Number(m[3]);
    if (port > 65535) throw new AddrError(`address ${s}: bad port ${m[3]}`);
    return { kind: "tcp", host: m[1] ?? (m[2] || "127.0.0.1"), port };
  }
  if (/^[\w.-]+$/.test(s)) return { kind: "tcp", host: s, port: defaultPort };
  throw new AddrError(`address ${s}: expected tcp!host!port, unix!/path or host:port`);
}

export function formatAddr(a: Addr) { return a.kind === "unix" ? `unix!${a.path}` : `tcp!${a.host}!${a.port}`; }

export function isLoopback(a: Addr): boolean {
  if (a.kind === "unix") return true;
  const h = a.host.toLowerCase();
  return h === "localhost" || h === "::1" || /^127\./.test(h) || h === "::ffff:127.0.0.1";
}

/** The user's runtime directory for pi9 (mode 0700). */
export function runtimeDir(): string {
  const base = process.env.XDG_RUNTIME_DIR && existsSync(process.env.XDG_RUNTIME_DIR)
    ? path.join(process.env.XDG_RUNTIME_DIR, "pi9")
    : path.join(os.tmpdir(), `pi9-${process.getuid?.() ?? os.userInfo().username}`);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  return base;
}

export function defaultSocketPath() { return path.join(runtimeDir(), "pi9.sock"); }

