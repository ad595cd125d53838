// pi9 against diod's client tools (Debian's diod 1.0.24): diodls and diodcat
// speak 9P2000.L through libnpclient, try Tauth first and go on only when it
// fails with ENOENT, and read files with one Tread per read (count
// msize-24). The content they read is written beforehand through a plain 9P
// connection made with the codec, so this suite needs no VM.
//
// The tools' options (diodcat --help): -s HOST[:PORT] or /path/to/socket,
// -a aname (default "ctl", which pi9 does not have), -m msize (default
// 65536), -t timeout in seconds; diodls also -l (long listing).

import t from "tap";
import { spawn } from "node:child_process";
import net from "node:net";
import { decode, encode, Msg } from "../src/ninep/codec.js";
import { NOFID, NONUNAME } from "../src/ninep/constants.js";
import { gate, Ran, run, which } from "./helpers/kit.js";
import { childEnv, Served, startServe } from "./helpers/serve.js";

const O_WRONLY = 1, O_RDWR = 2, O_APPEND = 0o2000;

/** A minimal sequential 9P2000.L connection: one request at a time. */
class Wire {
  private buf = Buffer.alloc(0);
  private waiting: { resolve: (m: Msg) => void; reject: (e: Error) => void } | null = null;
  private tag = 1;
  private constructor(private sock: net.Socket) {
    sock.on("data", (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      while (this.buf.length >= 4 && this.buf.length >= this.buf.readUInt32LE(0)) {
        const n = this.buf.readUInt32LE(0);
        const m = decode(this.buf.subarray(0, n), "9P2000.L");
        this.buf = this.buf.subarray(n);
        const w = this.waiting; this.waiting = null;
        w?.resolve(m);
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => { const w = this.waiting; this.waiting = null; w?.reject(new Error("connection closed")); });
  }
  static async dial(path: string): Promise<Wire> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path, () => resolve(s));
      s.once("error", reject);
    });
    const w = new Wire(sock);
    const v = await w.rpc({ type: "Tversion", tag: 0xffff, msize: 65536, version: "9P2000.L" });
    if (v.version !== "9P2000.L") throw new Error(`Tversion: ${JSON.stringify(v)}`);
    await w.ok({ type: "Tattach", fid: 0, afid: NOFID, uname: "test", aname: "", n_uname: NONUNAME });
    return w;
  }
  rpc(m: Omit<Msg, "tag"> & { tag?: number }): Promise<Msg> {
    if (this.waiting) throw new Error("Wire is sequential");
    const msg = { tag: this.tag++ & 0x7fff, ...m } as Msg;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.sock.write(encode(msg, "9P2000.L"));
    });
  }
  async ok(m: Omit<Msg, "tag">): Promise<Msg> {
    const r = await this.rpc(m);
    if (r.type === "Rlerror") throw new Error(`${m.type}: errno ${r.ecode}`);
    return r;
  }
  /** Open a path from the root on a new fid. */
  async open(fid: number, path: string[], flags: number) {
    await this.ok({ type: "Twalk", fid: 0, newfid: fid, wnames: path });
    await this.ok({ type: "Tlopen", fid, flags });
  }
  async write(fid: number, data: Buffer, offset = 0) {
    for (let off = 0; off < data.length;) {
      const r = await this.ok({ type: "Twrite", fid, offset: offset + off, data: data.subarray(off, off + 60000) });
      off += r.count;
    }
  }
  close() { this.sock.destroy(); }
}

/** Make a window with a name and a body, as a program would through `new`. */
async function makeWindow(w: Wire, name: string, body: Buffer): Promise<string> {
  await w.open(10, ["mnt", "xenith", "new"], O_RDWR);
  await w.write(10, Buffer.from(`window ${name}\n`));
  const id = (await w.ok({ type: "Tread", fid: 10, offset: 0, count: 64 })).data.toString().trim();
  await w.ok({ type: "Tclunk", fid: 10 });
  await w.open(11, ["mnt", "xenith", id, "body"], O_WRONLY | O_APPEND);
  await w.write(11, body);
  await w.ok({ type: "Tclunk", fid: 11 });
  return id;
}

const tools = { diodls: which("diodls"), diodcat: which("diodcat") };
const missing = !tools.diodls ? "diodls not found (Debian package diod)" : !tools.diodcat ? "diodcat not found (Debian package diod)" : null;

if (gate(t, "diod's client tools", missing)) {
  const diodls = tools.diodls!, diodcat = tools.diodcat!;
  let s: Served;
  let w: Wire;
  let big: Buffer;
  let id = "", id2 = "";
  const guard = 60000; // a guard against a hang, not a timing assertion
  const ls = (...a: string[]) => run(diodls, ["-t", "30", "-s", s.sock, ...a], { env: childEnv(), timeoutMs: guard });
  const dcat = (...a: string[]) => run(diodcat, ["-t", "30", "-s", s.sock, ...a], { env: childEnv(), timeoutMs: guard });
  const diag = (r: Ran) => (r.code === 0 ? {} : { stdout: r.stdout, stderr: r.stderr, server: s.stderr() });
  const lines = (out: string) => out.split("\n").filter(Boolean);

  t.before(async () => {
    s = await startServe();
    w = await Wire.dial(s.sock);
    const ls: string[] = [];
    for (let i = 0; i < 5000; i++) ls.push(`line ${String(i).padStart(5, "0")}: the quick brown fox jumps over the lazy dog\n`);
    big = Buffer.from(ls.join("")); // about 290 KB: several Treads at any msize
    id = await makeWindow(w, "diodtest", big);
    id2 = await makeWindow(w, "small", Buffer.from("hello from pi9\n"));
  });
  t.teardown(async () => { w?.close(); await s?.stop(); });

  t.test("diodls lists the root and /mnt/xenith (Tauth refused with ENOENT, then attach)", async (t) => {
    let r = await ls("-a", "/", "/");
    t.equal(r.code, 0, "diodls -a / / succeeds", diag(r));
    t.same(lines(r.stdout).sort(), ["mnt", "n"], "the root holds mnt and n");
    r = await ls("-a", "/", "/mnt");
    t.same(lines(r.stdout).sort(), ["pxldisk", "tools", "xenith"], "/mnt", diag(r));
    r = await ls("-a", "/", "/mnt/xenith");
    t.equal(r.code, 0, "diodls /mnt/xenith succeeds", diag(r));
    t.same(lines(r.stdout).sort(), [id, id2, "event", "focus", "index", "log", "new"].sort(), "/mnt/xenith: the root files and both windows");
  });

  t.test("diodls with aname=/mnt/xenith", async (t) => {
    let r = await ls("-a", "/mnt/xenith", "/");
    t.equal(r.code, 0, "diodls -a /mnt/xenith / succeeds", diag(r));
    t.same(lines(r.stdout).sort(), [id, id2, "event", "focus", "index", "log", "new"].sort(), "the xenith directory is the root");
    r = await ls("-a", "/mnt/xenith", id);
    t.equal(r.code, 0, `diodls ${id} succeeds`, diag(r));
    for (const f of ["body", "ctl", "event", "tag"]) t.ok(lines(r.stdout).includes(f), `window ${id} has ${f}`);
    r = await ls("-a", "/mnt/xenith", "index");
    t.equal(r.code, 0, "diodls of a file succeeds", diag(r));
    t.same(lines(r.stdout), ["index"], "and prints its name");
  });

  t.test("diodls -l", async (t) => {
    // diodls -l walks from the fid it opened for Treaddir: pi9 accepts a walk
    // from an open fid to a new one, as diod and QEMU do.
    const r = await ls("-l", "-a", "/mnt/xenith", "/");
    t.equal(r.code, 0, "diodls -l succeeds", { stderr: r.stderr.slice(0, 300) });
    t.match(r.stdout, /^-r--r--r--.*\sindex$/m, "diodls -l shows index with its mode");
    t.match(r.stdout, /^-rw-rw-rw-.*\snew$/m, "and new with its mode");
  });

  t.test("diodcat reads a window body exactly", async (t) => {
    let r = await dcat("-a", "/mnt/xenith", `${id}/body`);
    t.equal(r.code, 0, "diodcat body succeeds", diag(r));
    t.equal(r.stdout.length, big.length, `all ${big.length} bytes`);
    t.ok(r.stdout === big.toString(), "byte for byte the body written through 9P");
    r = await dcat("-m", "8192", "-a", "/", `/mnt/xenith/${id}/body`);
    t.equal(r.code, 0, "with msize 8192 and the whole-tree aname too", diag(r));
    t.ok(r.stdout === big.toString(), "same bytes at msize 8192");
    r = await dcat("-a", "/mnt/xenith", `${id2}/body`, "index");
    t.equal(r.code, 0, "diodcat of two files succeeds", diag(r));
    t.match(r.stdout, new RegExp(`^hello from pi9\\n${id} window idle diodtest \\S+\\n${id2} window idle small \\S+\\n$`), "the second body, then index");
  });

  t.test("diodcat of ctl and log", async (t) => {
    let r = await dcat("-a", "/mnt/xenith", `${id}/ctl`);
    t.equal(r.code, 0, "diodcat ctl succeeds", diag(r));
    t.match(r.stdout, new RegExp(`^${id} window idle diodtest \\S+ ${big.length} 1\\n$`), "ctl: id kind status name cwd bodylen dirty");
    r = await dcat("-a", "/mnt/xenith", "log");
    t.equal(r.code, 0, "diodcat log succeeds", diag(r));
    t.match(r.stdout, new RegExp(`^new ${id} window diodtest$`, "m"), "log has the first window");
    t.match(r.stdout, new RegExp(`^new ${id2} window small$`, "m"), "log has the second window");
  });

  t.test("diodcat errors", async (t) => {
    let r = await dcat("-a", "/mnt/xenith", "nosuchfile");
    t.not(r.code, 0, "a missing file fails");
    t.match(r.stderr, /No such file or directory/, "with ENOENT");
    r = await dcat("-a", "ctl", "version");
    t.not(r.code, 0, "diod's default aname (ctl) is no tree of pi9");
    t.match(r.stderr, /attaching to aname='ctl': No such file or directory/, "the attach fails with ENOENT");
    r = await dcat("-a", "/mnt/xenith", `${id}`);
    t.not(r.code, 0, "reading a directory with Tread fails (9P2000.L uses Treaddir)");
  });

  t.test("diodcat receives a line from a blocking event stream", async (t) => {
    await w.open(20, ["mnt", "xenith", id, "event"], O_WRONLY);
    const p = spawn(diodcat, ["-t", "30", "-s", s.sock, "-a", "/mnt/xenith", `${id}/event`], { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
    p.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
    const exited = new Promise<number | null>((resolve) => p.once("exit", (c) => resolve(c)));
    let code: number | null | undefined;
    void exited.then((c) => { code = c; });
    // Each open reads from the moment it opened, so post until the reader shows the line (bounded).
    for (let i = 0; i < 200 && !out.includes("note ping\n") && code === undefined; i++) {
      await w.write(20, Buffer.from("note ping\n"));
      await new Promise((r) => setTimeout(r, 100));
    }
    t.match(out, /^note ping$/m, "the posted event reached diodcat", { stderr: err, code });
    // diodcat reads once per call, so the follow-up rule's 0 after a short reply ends it
    // (DESIGN.md 2.2, a known gap); either way the process must not linger.
    if (code === undefined) p.kill("SIGTERM");
    await exited;
    await w.ok({ type: "Tclunk", fid: 20 });
    const idx = await dcat("-a", "/mnt/xenith", "index");
    t.equal(idx.code, 0, "the server still serves after the reader went away", diag(idx));
  });
}
