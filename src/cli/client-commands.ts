// `pi9 ls|cat|write|stat`: a 9P client in the manner of plan9port's 9p(1),
// built on src/ninep/client.ts.

import { existsSync } from "node:fs";
import { once } from "node:events";
import type { Argv } from "yargs";
import { Client, FileInfo, NinepError } from "../ninep/client.js";
import { Dialect, DMAPPEND, DMAUTH, DMDIR, DMEXCL, QTAPPEND, QTAUTH, QTDIR, QTEXCL } from "../ninep/constants.js";
import { defaultSocketPath, DEFAULT_PORT } from "../lib/addr.js";
import { resolveToken, UsageError } from "./serve.js";

/** The CLI's default: 9P2000 carries the server's error text, which .L reduces to an errno. */
export const CLI_DEFAULT_DIALECT: Dialect = "9P2000";

interface CommonArgs {
  server?: string;
  dialect?: string;
  aname?: string;
  msize?: number;
  "token-file"?: string;
  auth?: boolean;
}

/** --server, else $PI9_SERVER, else the default unix socket when it exists, else tcp!127.0.0.1!5640. */
export function defaultServer(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PI9_SERVER) return env.PI9_SERVER;
  try {
    const sock = defaultSocketPath();
    if (existsSync(sock)) return `unix!${sock}`;
  } catch { /* no runtime directory: fall back to TCP */ }
  return `tcp!127.0.0.1!${DEFAULT_PORT}`;
}

function parseDialect(s: string): Dialect {
  const d = ({ "9p2000": "9P2000", "9p2000.u": "9P2000.u", "9p2000.l": "9P2000.L" } as Record<string, Dialect>)[s.toLowerCase()];
  if (!d) throw new UsageError(`--dialect ${s}: expected 9P2000.L, 9P2000.u or 9P2000`);
  return d;
}

function common<T>(y: Argv<T>) {
  return y
    .option("server", { alias: "a", type: "string", describe: "server address (tcp!host!port, unix!/path, host:port); default $PI9_SERVER, the default unix socket, tcp!127.0.0.1!5640" })
    .option("dialect", { type: "string", describe: `9P2000.L, 9P2000.u or 9P2000 (default $PI9_DIALECT or ${CLI_DEFAULT_DIALECT})` })
    .option("aname", { alias: "A", type: "string", describe: "attach name: the subtree to attach" })
    .option("msize", { type: "number", describe: "message size to ask for (default 1048576)" })
    .option("token-file", { type: "string", describe: "file holding the server's token (default $PI9_TOKEN)" })
    .option("auth", { type: "boolean", default: false, describe: "present the token with Tauth instead of in the attach name" });
}

async function connect(a: CommonArgs): Promise<{ client: Client; addr: string }> {
  const addr = a.server || defaultServer();
  const dialect = parseDialect(a.dialect || process.env.PI9_DIALECT || CLI_DEFAULT_DIALECT);
  if (a.msize !== undefined && !(Number.isInteger(a.msize) && a.msize >= 256)) throw new UsageError(`--msize ${a.msize}: expected a whole number of at least 256`);
  const token = resolveToken({ tokenFile: a["token-file"] });
  const client = await Client.connect(addr, { dialect, msize: a.msize, aname: a.aname, token, auth: a.auth });
  return { client, addr };
}

/** Run one client command: errors are printed naming the path (and the address) and exit 1. */
async function run(cmd: string, path: string, a: CommonArgs, body: (c: Client) => Promise<void>) {
  let client: Client | null = null;
  try {
    ({ client } = await connect(a));
    await body(client);
    await client.close();
  } catch (e) {
    const err = e as Error;
    let msg = err?.message ?? String(e);
    // Messages about a file start with its path; the others (address, usage) get the path in front.
    if (!msg.startsWith("/")) msg = `${path}: ${msg}`;
    process.stderr.write(`pi9: ${cmd} ${msg}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

function onStdoutError() {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    process.stderr.write(`pi9: standard output: ${e.message}\n`);
    process.exit(1);
  });
}

async function out(s: string | Buffer) {
  if (!process.stdout.write(s)) await once(process.stdout, "drain");
}

// ---- formats (plan9port's) --------------------------------------------------

const MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Plan 9's %M: `d-rwxr-xr-x`, `a-r--r--r--`, `--rw-r--r--`. */
export function modeString(m: number): string {
  const rwx = (v: number) => `${v & 4 ? "r" : "-"}${v & 2 ? "w" : "-"}${v & 1 ? "x" : "-"}`;
  const kind = m & DMDIR ? "d" : m & DMAPPEND ? "a" : m & DMAUTH ? "A" : "-";
  return kind + (m & DMEXCL ? "l" : "-") + rwx((m >>> 6) & 7) + rwx((m >>> 3) & 7) + rwx(m & 7);
}

/** plan9port 9p's %T: `Jan  2 15:04` within six months, else `Jan  2  2006`. */
export function timeString(d: Date, now = Date.now()): string {
  const pad = (n: number, w: number, c = " ") => String(n).padStart(w, c);
  const head = `${MON[d.getMonth()]} ${pad(d.getDate(), 2)}`;
  if (now - d.getTime() < 6 * 30 * 86400 * 1000) return `${head} ${pad(d.getHours(), 2, "0")}:${pad(d.getMinutes(), 2, "0")}`;
  return `${head} ${pad(d.getFullYear(), 5)}`;
}

/** Plan 9's %q: quote a name only when it needs it. */
export function quoteName(s: string): string {
  if (s !== "" && !/[\s'`"^#$&*(){}|;<>?[\]=\\]/.test(s)) return s;
  return `'${s.replace(/'/g, "''")}'`;
}

function qidType(t: number) {
  return `${t & QTDIR ? "d" : ""}${t & QTAPPEND ? "a" : ""}${t & QTEXCL ? "l" : ""}${t & QTAUTH ? "A" : ""}`;
}

/** plan9port `9p stat`'s line (libc's %D). */
export function statLine(f: FileInfo): string {
  const q = `q (${f.qid.path.toString(16).padStart(16, "0")} ${f.qid.version} ${qidType(f.qid.type)})`;
  const mode = f.mode === 0 ? "0" : "0" + (f.mode >>> 0).toString(8);
  const sec = (d: Date) => Math.floor(d.getTime() / 1000);
  return `'${f.name}' '${f.uid}' '${f.gid}' '${f.muid}' ${q} m ${mode} at ${sec(f.atime)} mt ${sec(f.mtime)} l ${f.size} t ${f.type} d ${f.dev}`;
}

/** `ls -l` lines, columns aligned as plan9port's 9p ls does. */
export function longLines(entries: FileInfo[]): string[] {
  const w = [0, 0, 0, 0];
  const cols = entries.map((e) => [String(e.dev), e.uid, e.gid, String(e.size)]);
  for (const c of cols) c.forEach((s, i) => { if (s.length > w[i]) w[i] = s.length; });
  return entries.map((e, i) => {
    const [dev, uid, gid, size] = cols[i];
    return `${modeString(e.mode)} M ${dev.padStart(w[0])} ${uid.padEnd(w[1])} ${gid.padEnd(w[2])} ${size.padStart(w[3])} ${timeString(e.mtime)} ${quoteName(e.name)}`;
  });
}

// ---- commands --------------------------------------------------------------

export function clientCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command("ls <paths..>", "list directories (9P client)", (c) => common(c)
      .positional("paths", { type: "string", array: true, demandOption: true })
      .option("l", { alias: "long", type: "boolean", default: false, describe: "long listing: mode, owner, size, time, name" })
      .option("d", { alias: "directory", type: "boolean", default: false, describe: "list a directory itself, not its entries" }),
    async (a) => {
      onStdoutError();
      const paths = (a.paths as string[]) ?? [];
      let failed = false;
      await run("ls", paths.join(" "), a, async (c) => {
        for (const p of paths) {
          let entries: FileInfo[];
          try {
            const st = await c.stat(p);
            entries = st.isDir && !a.d ? (await c.readdir(p)).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)) : [st];
          } catch (e) {
            if (!(e instanceof NinepError) || paths.length === 1) throw e;
            // Like ls: report this path, go on with the others, fail at the end.
            process.stderr.write(`pi9: ls ${e.message}\n`);
            failed = true;
            continue;
          }
          const lines = a.l ? longLines(entries) : entries.map((e) => quoteName(e.name));
          if (lines.length) await out(lines.join("\n") + "\n");
        }
      });
      if (failed) process.exit(1);
    })
    .command("cat <path>", "copy a file to standard output; streams event files (9P client)", (c) => common(c)
      .positional("path", { type: "string", demandOption: true }),
    async (a) => {
      onStdoutError();
      // Ctrl-C: leave at once; the server releases the pending read when the connection drops.
      process.once("SIGINT", () => process.exit(130));
      const path = a.path as string;
      await run("cat", path, a, async (c) => {
        const f = await c.open(path, "r");
        if (f.isDir) throw new NinepError(`${f.path}: is a directory`, f.path, "is a directory");
        // One Tread per chunk, each written out as it arrives, until a read returns 0.
        for await (const b of c.readStream(f)) await out(b);
        await f.clunk();
      });
    })
    .command("write <path>", "copy standard input to a file, one Twrite per chunk (9P client)", (c) => common(c)
      .positional("path", { type: "string", demandOption: true })
      .option("append", { type: "boolean", default: false, describe: "append instead of truncating" }),
    async (a) => {
      const path = a.path as string;
      await run("write", path, a, async (c) => {
        const f = await c.open(path, "w", { truncate: !a.append, append: a.append });
        // 9P2000 has no append mode: write at the end, as Linux does for >>.
        let off = a.append && c.dialect !== "9P2000.L" ? (await c.fstat(f)).size : 0;
        let wrote = false;
        for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
          wrote = true;
          off += await c.write(f, off, chunk);
        }
        // Like 9p write: empty input still makes one (empty) write.
        if (!wrote) await c.write(f, off, Buffer.alloc(0));
        await f.clunk();
      });
    })
    .command("stat <path>", "print a file's attributes on one line (9P client)", (c) => common(c)
      .positional("path", { type: "string", demandOption: true }),
    async (a) => {
      onStdoutError();
      const path = a.path as string;
      await run("stat", path, a, async (c) => {
        await out(statLine(await c.stat(path)) + "\n");
      });
    }) as unknown as Argv<T>;
}
