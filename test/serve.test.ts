// `pi9 serve` as a person runs it: transports (stdio), refusals, shutdown.

import t from "tap";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { decode, encode, Msg } from "../src/ninep/codec.js";
import { NOFID } from "../src/ninep/constants.js";
import { BIN, childEnv, runPi9, startServe } from "./helpers/serve.js";

t.test("--stdio serves one 9P connection on stdin/stdout and exits when it ends", async (t) => {
  const p = spawn(process.execPath, [BIN, "serve", "--stdio", "--http", "off", "--state", path.join(t.testdirName, "st")], { stdio: ["pipe", "pipe", "pipe"], env: childEnv() });
  t.teardown(() => { if (p.exitCode === null) p.kill("SIGKILL"); });
  const replies: Msg[] = [];
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  p.stdout!.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= buf.readUInt32LE(0)) {
      const n = buf.readUInt32LE(0);
      replies.push(decode(buf.subarray(0, n), "9P2000.L"));
      buf = buf.subarray(n);
      waiters.shift()?.();
    }
  });
  const rpc = (m: Msg) => new Promise<Msg>((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`no reply to ${m.type}`)), 15000);
    waiters.push(() => { clearTimeout(guard); resolve(replies.shift()!); });
    p.stdin!.write(encode(m, "9P2000.L"));
  });
  t.match(await rpc({ type: "Tversion", tag: 0xffff, msize: 65536, version: "9P2000.L" }), { type: "Rversion", version: "9P2000.L", msize: 65536 });
  t.match(await rpc({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "me", aname: "/mnt/xenith", n_uname: 0 }), { type: "Rattach" });
  t.match(await rpc({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["new"] }), { type: "Rwalk" });
  t.match(await rpc({ type: "Tlopen", tag: 1, fid: 1, flags: 0 }), { type: "Rlopen" });
  const r = await rpc({ type: "Tread", tag: 1, fid: 1, offset: 0, count: 100 });
  t.equal(r.type, "Rread");
  t.equal(r.data.toString(), "1\n", "a window was made and its id read back");
  p.stdin!.end();
  const code = await new Promise((resolve) => p.once("exit", resolve));
  t.equal(code, 0, "the server exits when its stdio connection ends");
});

t.test("refuses to listen beyond loopback without a token, naming the address", async (t) => {
  const r = await runPi9(["serve", "--listen", "tcp!0.0.0.0!0", "--http", "off", "--state", path.join(t.testdirName, "st")], { PI9_TOKEN: "", HYPI_TOKEN: "" });
  t.equal(r.code, 2);
  t.match(r.stderr, /refusing to listen on tcp!0\.0\.0\.0!0 without a token/);
});

t.test("bad addresses and token files are usage errors that name the culprit", async (t) => {
  const bad = await runPi9(["serve", "--listen", "foo!bar", "--http", "off"]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /foo!bar: unknown network foo/);
  const tf = await runPi9(["serve", "--token-file", "/nonexistent/token", "--http", "off"]);
  t.not(tf.code, 0);
  t.match(tf.stderr, /--token-file \/nonexistent\/token/);
});

t.test("with a token file the server listens beyond loopback and never prints the token", async (t) => {
  const tokenFile = path.join(t.testdirName, "tok");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(t.testdirName, { recursive: true });
  writeFileSync(tokenFile, "s3cret-token-value\n");
  const s = await startServe({ args: ["--token-file", tokenFile, "--listen", "tcp!0.0.0.0!0", "--log-level", "debug"] });
  t.teardown(() => s.stop());
  t.match(s.stderr(), /token required/);
  t.notMatch(s.stderr(), /s3cret-token-value/);
});

t.test("SIGTERM shuts down cleanly and removes the unix socket", async (t) => {
  const s = await startServe();
  t.ok(existsSync(s.sock));
  const code = await s.stop();
  t.equal(code, 0);
  t.notOk(existsSync(s.sock), "socket removed");
  t.match(s.stderr(), /SIGTERM: shutting down/);
});

t.test("a second server on the same socket is refused, the first keeps it", async (t) => {
  const s = await startServe();
  t.teardown(() => s.stop());
  const r = await runPi9(["serve", "--listen", `unix!${s.sock}`, "--http", "off", "--state", path.join(s.dir, "st2")]);
  t.equal(r.code, 2);
  t.match(r.stderr, /another server is listening there/);
  t.ok(existsSync(s.sock));
});
