// The 9P client (src/ninep/client.ts) and the CLI commands built on it
// (pi9 ls|cat|write|stat), against a real `pi9 serve` and, for the corners
// of Tflush and connection loss, against a scripted fake server.
//
// Timeouts here are failure guards only: nothing asserts how long anything takes.

import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { AbortError, Client, ConnectionError, NinepError, streamCount } from "../src/ninep/client.js";
import { decode, encode, Msg } from "../src/ninep/codec.js";
import { Dialect, IOHDRSZ, NOTAG } from "../src/ninep/constants.js";
import { BIN, Served, startServe } from "./helpers/serve.js";

const DIALECTS: Dialect[] = ["9P2000.L", "9P2000"];
const children = new Set<ChildProcess>();
t.teardown(() => { for (const c of children) c.kill("SIGKILL"); });

// ---- helpers ----------------------------------------------------------------

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run `pi9 <args>` to completion (killed after a generous guard). */
function pi9(args: string[], o: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PI9_SERVER: "", PI9_TOKEN: "", HYPI_TOKEN: "", ...o.env } });
    children.add(p);
    let stdout = "", stderr = "";
    p.stdout!.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    p.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    const guard = setTimeout(() => p.kill("SIGKILL"), 30000);
    p.on("close", (code, signal) => { clearTimeout(guard); children.delete(p); resolve({ code, signal, stdout, stderr }); });
    p.stdin!.end(o.input ?? "");
  });
}

/** A long-running `pi9 <args>` whose output can be waited on. */
function pi9bg(args: string[], env: Record<string, string> = {}) {
  const p = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PI9_SERVER: "", PI9_TOKEN: "", ...env } });
  children.add(p);
  let stdout = "", stderr = "";
  const waiters = new Set<() => void>();
  const poke = () => { for (const w of waiters) w(); };
  p.stdout!.setEncoding("utf8").on("data", (d: string) => { stdout += d; poke(); });
  p.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; poke(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    p.on("close", (code, signal) => { children.delete(p); poke(); resolve({ code, signal }); });
  });
  return {
    proc: p, exited,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    /** Resolves true once pred(stdout) holds, false after ms (a guard, or a poll step). */
    waitFor(pred: (s: string) => boolean, ms: number): Promise<boolean> {
      return new Promise((resolve) => {
        const check = () => {
          if (pred(stdout)) { done(true); return; }
          if (p.exitCode !== null || p.signalCode !== null) done(pred(stdout));
        };
        const timer = setTimeout(() => done(false), ms);
        const done = (v: boolean) => { clearTimeout(timer); waiters.delete(check); resolve(v); };
        waiters.add(check);
        check();
      });
    },
  };
}

/** The rejection of a promise that must reject (never rejects itself: a fulfilment becomes an Error to assert on). */
async function caught(p: Promise<unknown>): Promise<Error> {
  try { await p; } catch (e) { return e as Error; }
  return new Error("expected a rejection, but the promise was fulfilled");
}

function tempDir(t: { teardown(fn: () => void): void }) {
  const d = mkdtempSync(path.join(os.tmpdir(), "pi9-client-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const sockArgs = (s: Served) => ["--server", `unix!${s.sock}`];

async function newWindow(c: Client, name: string): Promise<number> {
  const f = await c.open("/mnt/xenith/new", "rw");
  await c.write(f, 0, `window ${name}\n`);
  const id = Number((await c.read(f, 0, 64)).toString().trim());
  await c.clunk(f);
  return id;
}

// ---- pure functions -----------------------------------------------------------

t.test("streamCount never asks for msize-24 where pi9 would answer 0 at once", async (t) => {
  for (const msize of [256, 4096, 8192, 8216, 8217, 8240, 16384, 65536, 65560, 131072, 131096, 1 << 20]) {
    const c = streamCount(msize);
    t.ok(c > 0 && c <= msize - IOHDRSZ, `msize ${msize}: count ${c} fits`);
    if (msize > 8216) t.not(c, msize - IOHDRSZ, `msize ${msize}: count is not msize-24`);
  }
});

// ---- a real server ------------------------------------------------------------

t.test("against pi9 serve", async (t) => {
  const s = await startServe();
  t.teardown(() => s.stop());
  const addr = `unix!${s.sock}`;

  for (const dialect of DIALECTS) {
    t.test(`library, ${dialect}: ls, cat, write, stat, remove, errors`, async (t) => {
      const c = await Client.connect(addr, { dialect });
      t.teardown(() => c.close());
      t.equal(c.dialect, dialect);
      t.equal(c.msize, 1 << 20, "asks for 1 MiB by default");

      const id = await newWindow(c, `lib-${dialect}`);
      t.ok(id > 0, `new gave window ${id}`);

      const root = await c.readdir("/mnt/xenith");
      const names = root.map((e) => e.name);
      for (const n of ["new", "index", "focus", "event", "log", String(id)]) t.ok(names.includes(n), `ls /mnt/xenith has ${n}`);
      t.ok(root.find((e) => e.name === String(id))!.isDir, "the window is a directory");
      t.notOk(root.find((e) => e.name === "log")!.isDir, "log is a file");

      const index = (await c.readAll("/mnt/xenith/index")).toString();
      t.match(index, new RegExp(`^${id} window idle lib-${dialect} `, "m"), "cat index shows the window");

      t.equal(await c.writeFile(`/mnt/xenith/${id}/body`, "hello\n"), 6);
      t.equal(await c.writeFile(`/mnt/xenith/${id}/body`, "world\n", { append: true }), 6);
      t.equal((await c.readAll(`/mnt/xenith/${id}/body`)).toString(), "hello\nworld\n");

      const big = Buffer.alloc(300000, "x");
      await c.writeFile(`/mnt/xenith/${id}/body`, big);
      t.equal((await c.stat(`/mnt/xenith/${id}/body`)).size, 12 + big.length, "a write larger than one message lands whole");
      t.equal((await c.readAll(`/mnt/xenith/${id}/body`)).length, 12 + big.length, "readAll reads it all back");

      const st = await c.stat("/mnt/xenith/log");
      t.equal(st.name, "log");
      t.notOk(st.isDir);
      t.equal(st.perm, 0o444);
      t.ok(st.size > 0, "log has a size");
      t.ok(st.mtime instanceof Date && !Number.isNaN(st.mtime.getTime()), "mtime is a date");
      const dst = await c.stat(`/mnt/xenith/${id}`);
      t.ok(dst.isDir, "stat of a window says directory");
      t.equal(dst.name, String(id));

      await t.rejects(c.stat("/mnt/xenith/nope"), { message: /^\/mnt\/xenith\/nope: / }, "error names the path");
      const nope = await caught(c.readAll("/mnt/xenith/nope"));
      t.type(nope, NinepError);
      t.equal(nope.message, "/mnt/xenith/nope: file does not exist: nope", "a partial walk: the client names the missing element");
      t.equal((nope as NinepError).code, "ENOENT");
      const top = await caught(c.stat("/nope"));
      t.equal(top.message, dialect === "9P2000" ? "/nope: file does not exist" : "/nope: no such file or directory (ENOENT)",
        "a failed first element: the server's words (.L: its errno)");
      await t.rejects(c.writeFile(`/mnt/xenith/${id}/ctl`, "bogus\n"), dialect === "9P2000"
        ? { message: new RegExp(`^/mnt/xenith/${id}/ctl: unknown ctl message: bogus\\b`) }
        : { message: `/mnt/xenith/${id}/ctl: invalid argument (EINVAL)`, code: "EINVAL" });
      await t.rejects(c.create("/mnt/xenith/newfile"), { message: /^\/mnt\/xenith\/newfile: / }, "create where the tree refuses");
      await t.rejects(c.readdir("/mnt/xenith/log"), { message: /not a directory/ });

      await c.remove(`/mnt/xenith/${id}`);
      await t.rejects(c.stat(`/mnt/xenith/${id}`), { message: new RegExp(`/mnt/xenith/${id}`) }, "removed window is gone");
      t.ok((await c.stat("/")).isDir, "the connection still works after errors");
    });

    t.test(`library, ${dialect}: many requests in flight on one connection`, async (t) => {
      const c = await Client.connect(addr, { dialect });
      t.teardown(() => c.close());
      const all = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? c.stat("/mnt/xenith/index") : c.readdir("/mnt/xenith"))));
      t.equal(all.length, 200);
      t.ok(all.every((x) => (Array.isArray(x) ? x.length >= 5 : x.name === "index")), "every reply went to its own request");
    });

    t.test(`library, ${dialect}: an aborted read is flushed and the connection keeps working`, async (t) => {
      const c = await Client.connect(addr, { dialect });
      t.teardown(() => c.close());
      const id = await newWindow(c, `flush-${dialect}`);
      const ev = await c.open(`/mnt/xenith/${id}/event`, "r");
      const ac = new AbortController();
      const blocked = c.read(ev, 0, c.readCount, ac.signal);
      // A reply sent after the Tread proves the server holds the read.
      await c.stat("/mnt/xenith");
      ac.abort();
      t.type(await caught(blocked), AbortError, "the read rejects with AbortError after Rflush");
      await c.writeFile(`/mnt/xenith/${id}/event`, "after flush\n");
      t.equal((await c.read(ev, 0, c.readCount)).toString(), "after flush\n", "the flushed read consumed nothing; the fid still reads");
      t.ok((await c.stat(`/mnt/xenith/${id}`)).isDir, "other requests still work");
      const pre = new AbortController();
      pre.abort();
      t.type(await caught(c.read(ev, 0, 100, pre.signal)), AbortError, "an already aborted signal never sends");
      await c.clunk(ev);
      // The stream generator ends its fid when aborted too.
      const ac2 = new AbortController();
      const got: string[] = [];
      const reader = caught((async () => {
        for await (const b of c.readStream(`/mnt/xenith/${id}/event`, { signal: ac2.signal })) {
          got.push(b.toString());
          if (got.length === 2) ac2.abort();
        }
      })());
      const post = async (line: string) => c.writeFile(`/mnt/xenith/${id}/event`, line);
      for (let i = 0; i < 200 && got.length < 2; i++) { await post(`tick ${i}\n`); await new Promise((r) => setTimeout(r, 20)); }
      t.type(await reader, AbortError, "readStream ends with AbortError");
      t.ok(got.length >= 2, "readStream yielded events as they came");
    });

    t.test(`CLI, ${dialect}: ls, cat, write, stat`, async (t) => {
      const base = [...sockArgs(s), "--dialect", dialect];
      const w = await pi9(["write", ...base, "/mnt/xenith/new"], { input: `window cli-${dialect}\n` });
      t.equal(w.code, 0, `write new: ${w.stderr}`);
      const c = await Client.connect(addr, { dialect });
      t.teardown(() => c.close());
      const idx = (await c.readAll("/mnt/xenith/index")).toString();
      const id = new RegExp(`^(\\d+) window idle cli-${dialect} `, "m").exec(idx)?.[1];
      t.ok(id, "the window exists");

      const ls = await pi9(["ls", ...base, "/mnt/xenith"]);
      t.equal(ls.code, 0);
      t.same(ls.stdout.split("\n").filter(Boolean).filter((l) => !/^\d+$/.test(l)), ["event", "focus", "index", "log", "new"], "ls lists names, sorted");
      t.ok(ls.stdout.split("\n").includes(id!), "ls shows the window");

      const ll = await pi9(["ls", "-l", ...base, "/mnt/xenith"]);
      t.equal(ll.code, 0);
      t.match(ll.stdout, /^a-r--r--r-- M 0 \S+\s+\S+\s+\d+ \w{3} [ \d]\d [\d: ]{5} log$/m, "ls -l: append-only log");
      t.match(ll.stdout, new RegExp(`^d-rwxr-xr-x M 0 .* ${id}$`, "m"), "ls -l: the window directory");
      const lf = await pi9(["ls", "-l", ...base, "/mnt/xenith/new"]);
      t.match(lf.stdout, /^--rw-rw-rw- M 0 .* new\n$/, "ls -l of a file lists that file");

      const body = `/mnt/xenith/${id}/body`;
      t.equal((await pi9(["write", ...base, body], { input: "one\n" })).code, 0);
      t.equal((await pi9(["write", "--append", ...base, body], { input: "two\n" })).code, 0);
      const cat = await pi9(["cat", ...base, body]);
      t.equal(cat.code, 0);
      t.equal(cat.stdout, "one\ntwo\n", "cat prints the body");

      const st = await pi9(["stat", ...base, "/mnt/xenith/log"]);
      t.equal(st.code, 0);
      t.match(st.stdout, /^'log' '[^']*' '[^']*' '[^']*' q \([0-9a-f]{16} 0 a\) m 010000000444 at \d+ mt \d+ l \d+ t 0 d 0\n$/, "stat prints one 9p-style line");

      const bad = await pi9(["write", ...base, `/mnt/xenith/${id}/ctl`], { input: "bogus\n" });
      t.equal(bad.code, 1, "a refused write exits 1");
      if (dialect === "9P2000") t.match(bad.stderr, new RegExp(`^pi9: write /mnt/xenith/${id}/ctl: unknown ctl message: bogus\\b.*\\n$`), "with the server's message");
      else t.equal(bad.stderr, `pi9: write /mnt/xenith/${id}/ctl: invalid argument (EINVAL)\n`, "with the errno .L gives");
      const missing = await pi9(["cat", ...base, "/mnt/x/foo"]);
      t.equal(missing.code, 1);
      t.equal(missing.stderr, "pi9: cat /mnt/x/foo: file does not exist: x\n", "names the path and the missing element");
      const top = await pi9(["cat", ...base, "/foo"]);
      t.equal(top.code, 1);
      t.equal(top.stderr, dialect === "9P2000" ? "pi9: cat /foo: file does not exist\n" : "pi9: cat /foo: no such file or directory (ENOENT)\n");
      const dir = await pi9(["cat", ...base, "/mnt"]);
      t.equal(dir.code, 1);
      t.match(dir.stderr, /^pi9: cat \/mnt: is a directory/);
    });
  }

  t.test("CLI: server address from PI9_SERVER, errors name the address", async (t) => {
    const r = await pi9(["stat", "/mnt"], { env: { PI9_SERVER: `unix!${s.sock}` } });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^'mnt' /);
    const gone = path.join(s.dir, "no-such.sock");
    const e = await pi9(["cat", "--server", `unix!${gone}`, "/mnt/xenith/log"]);
    t.equal(e.code, 1);
    t.equal(e.stderr, `pi9: cat /mnt/xenith/log: unix!${gone}: no such socket\n`);
    const u = await pi9(["cat", ...sockArgs(s), "--dialect", "9P3000", "/x"]);
    t.equal(u.code, 2, "a bad option is a usage error");
    t.match(u.stderr, /--dialect 9P3000/);
  });

  t.test("CLI: aname attaches a subtree", async (t) => {
    const r = await pi9(["ls", ...sockArgs(s), "--aname", "/mnt/xenith", "/"]);
    t.equal(r.code, 0, r.stderr);
    t.ok(r.stdout.split("\n").includes("event"));
  });

  // The acceptance criterion: a one-Tread-per-read client keeps streaming.
  const variants: { name: string; args: string[]; file: (id: number) => string }[] = [
    { name: "9P2000, window event", args: ["--dialect", "9P2000"], file: (id) => `/mnt/xenith/${id}/event` },
    { name: "9P2000, msize 8192 (plan9port's)", args: ["--dialect", "9P2000", "--msize", "8192"], file: (id) => `/mnt/xenith/${id}/event` },
    { name: "9P2000, msize 65560 (count would be msize-24)", args: ["--dialect", "9P2000", "--msize", "65560"], file: (id) => `/mnt/xenith/${id}/event` },
    { name: "9P2000.L, window event", args: ["--dialect", "9P2000.L"], file: (id) => `/mnt/xenith/${id}/event` },
    { name: "9P2000, namespace event", args: ["--dialect", "9P2000"], file: () => "/mnt/xenith/event" },
  ];
  for (const v of variants) {
    t.test(`CLI: pi9 cat streams events as they come (${v.name})`, async (t) => {
      const c = await Client.connect(addr, { dialect: "9P2000" });
      t.teardown(() => c.close());
      const id = await newWindow(c, "stream");
      const file = v.file(id);
      const cat = pi9bg(["cat", ...sockArgs(s), ...v.args, file]);
      t.teardown(() => { cat.proc.kill("SIGKILL"); });
      // Until cat has opened the file, posted events are not its to see: post
      // a sync line until one shows up (bounded), then go event by event.
      let synced = false;
      for (let i = 0; i < 300 && !synced; i++) {
        await c.writeFile(file, `sync ${i}\n`);
        synced = await cat.waitFor((o) => /^sync \d+$/m.test(o), 100);
      }
      t.ok(synced, `cat printed the first event (stderr: ${cat.stderr})`);
      for (let i = 1; i <= 5; i++) {
        await c.writeFile(file, `tick ${i} from the test\n`);
        t.ok(await cat.waitFor((o) => o.includes(`tick ${i} from the test\n`), 20000), `event ${i} printed before the next is written`);
      }
      t.equal(cat.proc.exitCode, null, "cat is still running: a stream has no end of file");
      cat.proc.kill("SIGINT");
      const ex = await cat.exited;
      t.ok(ex.code === 130 || ex.signal === "SIGINT", `Ctrl-C ends cat (code ${ex.code}, signal ${ex.signal})`);
      t.equal(cat.stderr, "", "nothing on stderr");
      t.ok((await c.stat("/mnt/xenith")).isDir, "the server is fine after cat went away");
    });
  }

  t.test("CLI: cat ends when the window is deleted", async (t) => {
    const c = await Client.connect(addr, { dialect: "9P2000" });
    t.teardown(() => c.close());
    const id = await newWindow(c, "doomed");
    const file = `/mnt/xenith/${id}/event`;
    const cat = pi9bg(["cat", ...sockArgs(s), "--dialect", "9P2000", file]);
    t.teardown(() => { cat.proc.kill("SIGKILL"); });
    let synced = false;
    for (let i = 0; i < 300 && !synced; i++) {
      await c.writeFile(file, `sync ${i}\n`);
      synced = await cat.waitFor((o) => /^sync \d+$/m.test(o), 100);
    }
    t.ok(synced);
    await c.writeFile(`/mnt/xenith/${id}/ctl`, "del\n");
    const ex = await cat.exited;
    t.match(cat.stdout, /^del$/m, "cat printed the del event");
    t.equal(ex.code, 1, "then exits 1");
    t.match(cat.stderr, new RegExp(`^pi9: cat ${file}: window deleted`));
  });
});

t.test("CLI: pi9 cat reports a server that goes away, naming the path and the address", async (t) => {
  const s = await startServe();
  t.teardown(() => s.stop());
  const c = await Client.connect(`unix!${s.sock}`, { dialect: "9P2000" });
  const cat = pi9bg(["cat", ...sockArgs(s), "/mnt/xenith/event"]);
  t.teardown(() => { cat.proc.kill("SIGKILL"); });
  let synced = false;
  for (let i = 0; i < 300 && !synced; i++) {
    await c.writeFile("/mnt/xenith/event", `sync ${i}\n`);
    synced = await cat.waitFor((o) => /^sync \d+$/m.test(o), 100);
  }
  t.ok(synced);
  await c.close();
  await s.stop();
  const ex = await cat.exited;
  t.equal(ex.code, 1);
  t.equal(cat.stderr, `pi9: cat /mnt/xenith/event: unix!${s.sock}: connection closed by the server\n`);
});

// ---- tokens -----------------------------------------------------------------------

t.test("tokens", async (t) => {
  const secret = "s3cret-" + process.pid;
  const dir = tempDir(t);
  const tokenFile = path.join(dir, "token");
  writeFileSync(tokenFile, secret + "\n");
  const s = await startServe({ args: ["--token-file", tokenFile] });
  t.teardown(() => s.stop());
  const addr = `unix!${s.sock}`;

  for (const dialect of [...DIALECTS, "9P2000.u" as Dialect]) {
    t.test(`library, ${dialect}`, async (t) => {
      await t.rejects(Client.connect(addr, { dialect }), { message: /authentication required/ }, "no token: refused, saying so");
      await t.rejects(Client.connect(addr, { dialect, token: "wrong" }), { message: /authentication failed: wrong token/ }, "wrong token: refused, saying so");
      const c = await Client.connect(addr, { dialect, token: secret });
      t.ok((await c.stat("/mnt/xenith")).isDir, "right token works");
      await c.close();
      const sub = await Client.connect(addr, { dialect, token: secret, aname: "/mnt/xenith" });
      t.ok((await sub.readdir("/")).some((e) => e.name === "event"), "token and aname together");
      await sub.close();
      const a = await Client.connect(addr, { dialect, token: secret, auth: true });
      t.ok((await a.stat("/mnt")).isDir, "right token through Tauth works");
      await a.close();
      await t.rejects(Client.connect(addr, { dialect, token: "wrong", auth: true }), { message: /authentication failed: wrong token/ }, "wrong token through Tauth: refused");
    });
  }

  t.test("CLI", async (t) => {
    const bad = await pi9(["ls", ...sockArgs(s), "/mnt"], { env: { PI9_TOKEN: "wrong" } });
    t.equal(bad.code, 1);
    t.match(bad.stderr, new RegExp(`^pi9: ls /mnt: unix!${s.sock.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: attach /: authentication failed: wrong token`));
    const none = await pi9(["ls", ...sockArgs(s), "/mnt"]);
    t.equal(none.code, 1);
    t.match(none.stderr, /authentication required/);
    const badL = await pi9(["ls", ...sockArgs(s), "--dialect", "9P2000.L", "/mnt"], { env: { PI9_TOKEN: "wrong" } });
    t.equal(badL.code, 1);
    t.match(badL.stderr, /permission denied \(EACCES\) — authentication failed: wrong token\?/, ".L: errno plus what it means at attach");
    const good = await pi9(["ls", ...sockArgs(s), "/mnt"], { env: { PI9_TOKEN: secret } });
    t.equal(good.code, 0, good.stderr);
    t.same(good.stdout.split("\n").filter(Boolean), ["pxldisk", "tools", "xenith"]);
    const wrongFile = path.join(s.dir, "wrong-token");
    writeFileSync(wrongFile, "nope\n");
    const rightFile = path.join(s.dir, "right-token");
    writeFileSync(rightFile, secret + "\n");
    const ff = await pi9(["stat", ...sockArgs(s), "--token-file", rightFile, "/mnt/xenith"], { env: { PI9_TOKEN: "wrong" } });
    t.equal(ff.code, 0, "--token-file wins over PI9_TOKEN");
    const fw = await pi9(["stat", ...sockArgs(s), "--token-file", wrongFile, "/mnt/xenith"]);
    t.equal(fw.code, 1);
    const au = await pi9(["stat", ...sockArgs(s), "--auth", "/mnt/xenith"], { env: { PI9_TOKEN: secret } });
    t.equal(au.code, 0, "--auth presents the token by Tauth");
    for (const r of [bad, none, badL, good, ff, fw, au]) t.notMatch(r.stdout + r.stderr, secret, "the token is never printed");
    t.notMatch(s.stderr(), secret, "nor logged by the server");
  });
});

// ---- a scripted server: Tflush corners, pipelining, connection loss ------------

/** A fake 9P2000 server on a unix socket: version and attach answered, the rest handed to `onRequest`. */
async function fakeServer(dir: string, onRequest: (m: Msg, reply: (r: Msg) => void, sock: net.Socket) => void) {
  const sockPath = path.join(dir, `fake-${Math.random().toString(36).slice(2)}.sock`);
  const conns = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    conns.add(sock);
    sock.on("close", () => conns.delete(sock));
    let buf = Buffer.alloc(0);
    const reply = (r: Msg) => { if (!sock.destroyed) sock.write(encode(r, "9P2000")); };
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= buf.readUInt32LE(0)) {
        const n = buf.readUInt32LE(0);
        const m = decode(buf.subarray(0, n), "9P2000");
        buf = buf.subarray(n);
        if (m.type === "Tversion") reply({ type: "Rversion", tag: NOTAG, msize: Math.min(m.msize, 8192), version: "9P2000" });
        else if (m.type === "Tattach") reply({ type: "Rattach", tag: m.tag, qid: { type: 0x80, version: 0, path: 1 } });
        else if (m.type === "Twalk") reply({ type: "Rwalk", tag: m.tag, wqids: m.wnames.map((_: string, i: number) => ({ type: 0, version: 0, path: 10 + i })) });
        else if (m.type === "Topen") reply({ type: "Ropen", tag: m.tag, qid: { type: 0, version: 0, path: 10 }, iounit: 0 });
        else if (m.type === "Tclunk") reply({ type: "Rclunk", tag: m.tag });
        else onRequest(m, reply, sock);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(sockPath, () => r()));
  return {
    addr: `unix!${sockPath}`,
    close: () => new Promise<void>((r) => { for (const c of conns) c.destroy(); srv.close(() => r()); }),
  };
}

t.test("scripted server", async (t) => {
  const s = { dir: tempDir(t) };

  t.test("a reply that beats Rflush wins: the read resolves with its data", async (t) => {
    const held = new Map<number, Msg>();
    const fake = await fakeServer(s.dir, (m, reply) => {
      if (m.type === "Tread") held.set(m.tag, m);
      else if (m.type === "Tflush") {
        reply({ type: "Rread", tag: m.oldtag, data: Buffer.from("late but whole\n") });
        reply({ type: "Rflush", tag: m.tag });
      }
    });
    t.teardown(() => fake.close());
    const c = await Client.connect(fake.addr, { dialect: "9P2000" });
    t.teardown(() => c.close());
    t.equal(c.msize, 8192, "accepts the server's smaller msize");
    const f = await c.open("/x", "r");
    const ac = new AbortController();
    const r = c.read(f, 0, 100, ac.signal);
    for (let i = 0; i < 100 && held.size === 0; i++) await new Promise((res) => setImmediate(res));
    ac.abort();
    t.equal((await r).toString(), "late but whole\n");
  });

  t.test("Rflush without a reply: AbortError, and the connection goes on", async (t) => {
    const reads: Msg[] = [];
    const fake = await fakeServer(s.dir, (m, reply) => {
      if (m.type === "Tread") { reads.push(m); if (reads.length > 1) reply({ type: "Rread", tag: m.tag, data: Buffer.from(`read ${reads.length}`) }); }
      else if (m.type === "Tflush") reply({ type: "Rflush", tag: m.tag });
    });
    t.teardown(() => fake.close());
    const c = await Client.connect(fake.addr, { dialect: "9P2000" });
    t.teardown(() => c.close());
    const f = await c.open("/x", "r");
    const ac = new AbortController();
    const r = c.read(f, 0, 100, ac.signal);
    for (let i = 0; i < 100 && reads.length === 0; i++) await new Promise((res) => setImmediate(res));
    ac.abort();
    t.type(await caught(r), AbortError);
    t.equal((await c.read(f, 0, 100)).toString(), "read 2", "the connection goes on");
  });

  t.test("replies out of order reach their own requests", async (t) => {
    const reads: Msg[] = [];
    const N = 50;
    const fake = await fakeServer(s.dir, (m, reply) => {
      if (m.type !== "Tread") return;
      reads.push(m);
      if (reads.length === N) for (const q of reads.reverse()) reply({ type: "Rread", tag: q.tag, data: Buffer.from(`offset ${q.offset}`) });
    });
    t.teardown(() => fake.close());
    const c = await Client.connect(fake.addr, { dialect: "9P2000" });
    t.teardown(() => c.close());
    const f = await c.open("/x", "r");
    const got = await Promise.all(Array.from({ length: N }, (_, i) => c.read(f, i * 7, 100)));
    t.same(got.map((b) => b.toString()), Array.from({ length: N }, (_, i) => `offset ${i * 7}`));
    t.equal(new Set(reads.map((m) => m.tag)).size, N, "every outstanding request had its own tag");
  });

  t.test("a dropped connection rejects every pending request", async (t) => {
    let pending = 0;
    const held: { sock: net.Socket | null } = { sock: null };
    const fake = await fakeServer(s.dir, (m, _reply, sock) => {
      if (m.type === "Tread" && ++pending === 3) held.sock = sock;
    });
    t.teardown(() => fake.close());
    const c = await Client.connect(fake.addr, { dialect: "9P2000" });
    const f = await c.open("/mnt/xenith/event", "r");
    const rs = [0, 1, 2].map((i) => c.read(f, i, 10));
    for (let i = 0; i < 100 && !held.sock; i++) await new Promise((res) => setImmediate(res));
    t.ok(held.sock, "the server holds three reads");
    held.sock!.destroy();
    for (const r of rs) {
      const e = await caught(r);
      t.type(e, ConnectionError);
      t.match(e.message, /^\/mnt\/xenith\/event: unix!.*: connection closed/, "naming the path and the address");
    }
    t.type(await caught(c.stat("/x")), ConnectionError, "later requests fail at once");
    await c.close();
  });

  t.test("a downgrade to 9P2000 is accepted; then 9P2000 messages are used", async (t) => {
    const seen: string[] = [];
    const fake = await fakeServer(s.dir, (m, reply) => {
      seen.push(m.type);
      if (m.type === "Tstat") reply({ type: "Rstat", tag: m.tag, stat: { type: 0, dev: 0, qid: { type: 0, version: 0, path: 10 }, mode: 0o644, atime: 1, mtime: 2, length: 3, name: "x", uid: "u", gid: "g", muid: "m" } });
    });
    t.teardown(() => fake.close());
    const c = await Client.connect(fake.addr); // asks for 9P2000.L
    t.teardown(() => c.close());
    t.equal(c.dialect, "9P2000");
    const st = await c.stat("/x");
    t.same([st.name, st.size, st.perm, st.uid, st.mtime.getTime()], ["x", 3, 0o644, "u", 2000]);
    t.same(seen, ["Tstat"], "Tstat, not Tgetattr");
  });

  t.test("a server that answers a newer dialect than asked is refused", async (t) => {
    const sockPath = path.join(s.dir, "newer.sock");
    const srv = net.createServer((sock) => {
      sock.once("data", () => sock.write(encode({ type: "Rversion", tag: NOTAG, msize: 8192, version: "9P2000.L" }, "9P2000")));
    });
    await new Promise<void>((r) => srv.listen(sockPath, () => r()));
    t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
    await t.rejects(Client.connect(`unix!${sockPath}`, { dialect: "9P2000" }), { message: `unix!${sockPath}: the server answered version 9P2000.L to 9P2000` });
  });

  t.test("more requests than tags: the rest wait for a free tag", async (t) => {
    const held: Msg[] = [];
    const N = 0xffff + 20; // tags are 0..65534
    let release: (() => void) | null = null;
    const fake = await fakeServer(s.dir, (m, reply) => {
      if (m.type !== "Tread") return;
      if (!release) {
        held.push(m);
        if (held.length === 0xffff) release = () => { for (const q of held) reply({ type: "Rread", tag: q.tag, data: Buffer.from(String(q.offset)) }); };
      } else reply({ type: "Rread", tag: m.tag, data: Buffer.from(String(m.offset)) });
    });
    t.teardown(() => fake.close());
    const c = await Client.connect(fake.addr, { dialect: "9P2000" });
    t.teardown(() => c.close());
    const f = await c.open("/x", "r");
    const all = Promise.all(Array.from({ length: N }, (_, i) => c.read(f, i, 10)));
    const box = { get r() { return release; } };
    for (let i = 0; i < 10000 && !box.r; i++) await new Promise((res) => setTimeout(res, 5));
    t.ok(box.r, "the server saw 65535 reads outstanding at once");
    t.equal(new Set(held.map((m) => m.tag)).size, 0xffff, "every one with its own tag");
    t.notOk(held.some((m) => m.tag === NOTAG), "never NOTAG");
    box.r!();
    const got = await all;
    t.ok(got.every((b, i) => b.toString() === String(i)), "all requests completed with their own replies");
  });

  t.test("a server that answers version unknown is refused clearly", async (t) => {
    const sockPath = path.join(s.dir, "old.sock");
    const srv = net.createServer((sock) => {
      sock.once("data", () => sock.write(encode({ type: "Rversion", tag: NOTAG, msize: 8192, version: "unknown" }, "9P2000")));
    });
    await new Promise<void>((r) => srv.listen(sockPath, () => r()));
    t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
    await t.rejects(Client.connect(`unix!${sockPath}`), { message: `unix!${sockPath}: the server does not speak 9P2000.L` });
  });
});
