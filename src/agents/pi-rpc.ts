// One piece on purpose (about 540 lines): the child process, its line
// framing and the RPC command/response matching share the child's lifetime
// (a command pending when the child dies must fail, a stop must wait for it).
//
// A pi agent that pi9 runs itself: `pi --mode rpc` as a child process in the
// agent's folder, spoken to in JSON lines on its stdin and stdout (pi's
// docs/rpc.md). Commands carry an id and wait for the response with that id;
// every other line is one of pi's native events, handed to the window
// (AgentWindow.event) to become body text and event lines.
//
// The child gets its own process group (detached, no shell), its stderr goes
// to a log file in the state folder, and stopping it leaves nothing behind:
// abort when busy, SIGTERM (pi then kills the tool processes it tracks),
// SIGKILL for the whole group after a grace, and SIGKILL for any descendant
// seen before the SIGTERM that is still alive.

import { ChildProcess, spawn } from "node:child_process";
import { accessSync, closeSync, constants, fstatSync, openSync, readFileSync, readdirSync, statSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { fileURLToPath } from "node:url";
import { FsError } from "../fs/errors.js";
import type { AgentWindow, Backend, DeliverAs, PiEvent, ToolInfo } from "./agent.js";
import { TOOLS_COMMAND } from "./pi-bridge.js";

/** How pi9 runs pi (from `pi9 serve --pi, --pi-arg, --pi-env`). */
export interface PiOptions {
  /** pi's entry: a .js/.mjs/.cjs file run with this node, or an executable (a bare name is looked up in PATH). Default: the pi of pi9's own dependency. */
  path?: string;
  /** Extra arguments for every pi, after `--mode rpc`. */
  args?: string[];
  /** Extra environment for every pi. */
  env?: Record<string, string>;
  /** How long pi may take to answer its first command. Default 60 s. */
  startTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL. Default 3 s. */
  killGraceMs?: number;
}

/** What one spawned agent runs with. */
export interface PiSpec {
  cwd: string;
  model?: string;
  /** Where pi's stderr goes (appended). */
  logFile: string;
}

const QUICK_MS = 30_000;
const PROMPT_MS = 5 * 60_000;
const COMPACT_MS = 15 * 60_000;
const ABORT_MS = 60_000;
const TOOLS_MS = 15_000;
/** Longest line accepted from pi (a get_messages answer can be big, not unbounded). */
const MAX_LINE = 256 << 20;

/** The pi of pi9's own dependency: @mariozechner/pi-coding-agent's dist/cli.js. */
export function defaultPiPath(): string {
  try {
    const index = fileURLToPath(import.meta.resolve("@mariozechner/pi-coding-agent"));
    return path.join(path.dirname(index), "cli.js");
  } catch {
    // No resolvable dependency: say so when an agent is spawned.
    return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../node_modules/@mariozechner/pi-coding-agent/dist/cli.js");
  }
}

/** The bridge extension (pi-bridge.ts), compiled beside this file. */
export const BRIDGE_PATH = fileURLToPath(new URL("./pi-bridge.js", import.meta.url));

/**
 * The program and leading arguments that run pi, or an FsError naming the
 * path when there is no such pi.
 */
export function piCommand(p: string): { file: string; args: string[]; shown: string } {
  const isScript = /\.[cm]?js$/.test(p);
  if (!p.includes("/") && !isScript) {
    for (const d of (process.env.PATH ?? "").split(path.delimiter)) {
      if (!d) continue;
      const f = path.join(d, p);
      try { accessSync(f, constants.X_OK); if (statSync(f).isFile()) return { file: f, args: [], shown: f }; } catch { /* next */ }
    }
    throw new FsError("ENOENT", `pi not found: no ${p} in PATH (set pi9 serve --pi to pi's cli.js or executable)`);
  }
  const abs = path.resolve(p);
  let st;
  try { st = statSync(abs); } catch {
    throw new FsError("ENOENT", `pi not found: ${abs}: no such file (set pi9 serve --pi to pi's cli.js or executable)`);
  }
  if (!st.isFile()) throw new FsError("ENOENT", `pi not found: ${abs} is not a file`);
  if (isScript) return { file: process.execPath, args: [abs], shown: abs };
  try { accessSync(abs, constants.X_OK); } catch { throw new FsError("EACCES", `pi not runnable: ${abs} is not executable`); }
  return { file: abs, args: [], shown: abs };
}

interface Pending {
  type: string;
  resolve: (data: any) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const SIGNALS: Record<string, number> = os.constants.signals as unknown as Record<string, number>;

export class PiRpcBackend implements Backend {
  readonly kind = "pi" as const;
  private agent: AgentWindow | null = null;
  private child: ChildProcess | null = null;
  private pending = new Map<string, Pending>();
  private nextId = 1;
  /** The start of a line not yet ended, in pieces; skipping: inside a line too long to keep. */
  private parts: string[] = [];
  private partLen = 0;
  private skipping = false;
  private decoder = new StringDecoder("utf8");
  private toolWaiters = new Map<string, (tools: ToolInfo[]) => void>();
  private hasBridge: boolean | undefined;
  private busy = false;
  /** Tool runs under way, and pi's descendants as last seen while one was: what to stop should pi die. */
  private toolsRunning = 0;
  private tree: Proc[] = [];
  private treeTimer: NodeJS.Timeout | null = null;
  private treeAt = 0;
  private killing: Promise<void> | null = null;
  private killRequested = false;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private exitWaiters: (() => void)[] = [];
  readonly piPath: string;
  model = "";
  sessionId = "";
  sessionFile = "";

  constructor(private opts: PiOptions, readonly spec: PiSpec) {
    this.piPath = opts.path ?? defaultPiPath();
  }

  get pid(): number | undefined { return this.child?.pid; }
  get exited(): boolean { return this.exit !== null; }

  /**
   * Start pi and wait until it answers (get_state): it fails, with the tail
   * of pi's log, when pi cannot be found, exits or does not answer in time.
   */
  async start(agent: AgentWindow): Promise<void> {
    this.agent = agent;
    const cmd = piCommand(this.piPath);
    const args = [...cmd.args, "--mode", "rpc", "-e", BRIDGE_PATH, ...(this.opts.args ?? []), ...(this.spec.model ? ["--model", this.spec.model] : [])];
    const fd = openSync(this.spec.logFile, "a", 0o600);
    const logStart = fstatSync(fd).size;
    writeSync(fd, `--- pi9: ${new Date().toISOString()} starting ${cmd.shown} in ${this.spec.cwd}: ${args.slice(cmd.args.length).join(" ")}\n`);
    let child: ChildProcess;
    try {
      child = spawn(cmd.file, args, {
        cwd: this.spec.cwd,
        env: { ...process.env, ...(this.opts.env ?? {}) },
        stdio: ["pipe", "pipe", fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    child.stdin!.on("error", () => { /* pi went away; its exit says why */ });
    child.stdout!.on("data", (b: Buffer) => this.onData(b));
    let spawnError: Error | null = null;
    // An error with no pid: the program could not be run at all (no exit follows).
    child.on("error", (e) => { if (!child.pid) { spawnError = e; this.onExit(null, null, e); } });
    child.once("exit", (code, signal) => {
      // Let the last lines of stdout arrive first.
      const done = () => this.onExit(code, signal);
      if (child.stdout!.readableEnded || child.stdout!.destroyed) done();
      else { const t = setTimeout(done, 1000); child.stdout!.once("close", () => { clearTimeout(t); done(); }); }
    });
    if (child.pid) live.add(this);
    hookProcessExit();

    const timeout = this.opts.startTimeoutMs ?? 60_000;
    try {
      const st = await this.request({ type: "get_state" }, timeout, "start");
      this.takeState(st);
    } catch (e) {
      const ex = this.exit;
      const why = spawnError ? `${cmd.shown} could not be started: ${(spawnError as Error).message}`
        : ex ? `pi ${exitText(ex.code, ex.signal)} while starting`
        : `pi did not start: ${(e as Error).message}`;
      const tail = logTail(this.spec.logFile, logStart);
      await this.kill().catch(() => {});
      throw new FsError(e instanceof FsError && !spawnError && !ex ? e.code : "EIO", `${why}${tail ? `: ${tail}` : ""} (log: ${this.spec.logFile})`);
    }
  }

  // ---- the wire ------------------------------------------------------------

  private onData(b: Buffer) {
    // pi writes U+2028 and U+2029 raw inside JSON strings: split on \n only.
    // Only the new chunk is searched, so a long line costs no more than its length.
    const s = this.decoder.write(b);
    let start = 0, i: number;
    while ((i = s.indexOf("\n", start)) >= 0) {
      const piece = s.slice(start, i);
      start = i + 1;
      if (this.skipping) { this.skipping = false; continue; }
      const line = this.parts.length ? this.parts.join("") + piece : piece;
      this.parts = [];
      this.partLen = 0;
      this.onLine(line);
    }
    if (start < s.length && !this.skipping) {
      this.parts.push(s.slice(start));
      this.partLen += s.length - start;
      if (this.partLen > MAX_LINE) {
        this.parts = [];
        this.partLen = 0;
        this.skipping = true;
        this.agent?.event({ type: "error", message: `pi sent a line longer than ${MAX_LINE} characters; dropped` });
      }
    }
  }

  private onLine(raw: string) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    let msg: any;
    try { msg = JSON.parse(line); } catch {
      this.agent?.event({ type: "error", message: `pi wrote a line that is not JSON: ${line.slice(0, 200)}` });
      return;
    }
    if (msg && typeof msg === "object") this.onMessage(msg);
  }

  private onMessage(m: PiEvent) {
    if (m.type === "response") return this.onResponse(m);
    if (m.type === "extension_ui_request") return this.onUiRequest(m);
    if (m.type === "agent_start") this.busy = true;
    if (m.type === "agent_end") { this.busy = false; this.trackTools(-Infinity); void this.refreshState(); }
    if (m.type === "tool_execution_start") this.trackTools(1);
    if (m.type === "tool_execution_end") this.trackTools(-1);
    if (m.type === "tool_execution_update" && this.toolsRunning && Date.now() - this.treeAt > 100) this.snapshot();
    this.agent?.event(m);
  }

  private onResponse(m: PiEvent) {
    let id: string | undefined = typeof m.id === "string" ? m.id : undefined;
    // pi drops the id from some refusals (an unknown command): match the oldest of that command.
    if (id === undefined || !this.pending.has(id)) {
      id = [...this.pending.entries()].find(([, p]) => p.type === m.command)?.[0];
      if (id === undefined) return;
    }
    const p = this.pending.get(id)!;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (m.success) p.resolve(m.data);
    else p.reject(new FsError("EINVAL", String(m.error ?? `${m.command} failed`)));
  }

  private onUiRequest(m: PiEvent) {
    if (m.method === "notify" && typeof m.message === "string" && m.message.startsWith(TOOLS_COMMAND + " ")) {
      const rest = m.message.slice(TOOLS_COMMAND.length + 1);
      const sp = rest.indexOf(" ");
      const nonce = sp < 0 ? rest : rest.slice(0, sp);
      const w = this.toolWaiters.get(nonce);
      if (w) {
        this.toolWaiters.delete(nonce);
        try { w(JSON.parse(rest.slice(sp + 1))); } catch { w([]); }
      }
      return;
    }
    if (["select", "confirm", "input", "editor"].includes(m.method)) {
      // A dialog would wait for an answer forever: pi9 has no dialogs, so cancel it and say so.
      this.write({ type: "extension_ui_response", id: m.id, cancelled: true });
      this.agent?.event({ type: "error", message: `an extension asked for ${m.method} (${m.title ?? ""}); pi9 has no dialogs: cancelled` });
    }
  }

  /**
   * pi starts its tools detached (their own sessions), so neither its process
   * group nor a SIGKILL to pi reaches them. While a tool runs, keep a fresh
   * list of pi's descendants; if pi dies, they are stopped with it.
   */
  private trackTools(delta: number) {
    this.toolsRunning = Math.max(0, this.toolsRunning + delta);
    if (this.toolsRunning > 0 && !this.treeTimer && this.child?.pid) {
      this.treeTimer = setInterval(() => this.snapshot(), 500);
      this.treeTimer.unref();
    } else if (this.toolsRunning === 0 && this.treeTimer) {
      clearInterval(this.treeTimer);
      this.treeTimer = null;
    }
  }

  private snapshot() {
    if (!this.child?.pid || this.exit) return;
    this.tree = descendants(this.child.pid);
    this.treeAt = Date.now();
  }

  private write(o: object): boolean {
    const c = this.child;
    if (!c || this.exit || !c.stdin || c.stdin.destroyed) return false;
    c.stdin.write(JSON.stringify(o) + "\n");
    return true;
  }

  /** Send a command and wait for its response's data; a refusal rejects with pi's message. */
  request(cmd: { type: string; [k: string]: unknown }, timeoutMs = QUICK_MS, what = cmd.type): Promise<any> {
    if (this.exit) return Promise.reject(this.goneError(what));
    const id = `pi9-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new FsError("ETIMEDOUT", `${what}: pi did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending.set(id, { type: cmd.type, resolve, reject, timer });
      if (!this.write({ ...cmd, id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(this.goneError(what));
      }
    });
  }

  private goneError(what: string) {
    const e = this.exit;
    const how = e ? exitText(e.code, e.signal) : "is not running";
    return new FsError("EIO", `${what}: pi ${how}; del the window, or spawn a new agent`);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, err?: Error) {
    if (this.exit) return;
    this.exit = { code, signal };
    live.delete(this);
    this.busy = false;
    this.trackTools(-Infinity);
    // Tools pi started and left behind by dying.
    for (const p of this.tree.splice(0)) if (sameProcess(p)) { try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ } }
    this.child?.stdin?.destroy();
    const gone = err ? new FsError("EIO", `pi could not be started: ${err.message}`) : null;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(gone ?? this.goneError(p.type === "get_state" ? "start" : p.type));
      this.pending.delete(id);
    }
    for (const w of this.toolWaiters.values()) w([]);
    this.toolWaiters.clear();
    if (this.agent) {
      const n = exitNumber(code, signal);
      this.agent.renderer.note(`--- pi ${err ? `could not be started: ${err.message}` : exitText(code, signal)} ---`);
      const why = this.killRequested ? undefined : `pi ${err ? `could not be started: ${err.message}` : exitText(code, signal)} unexpectedly; its log is ${this.spec.logFile}`;
      this.agent.exited(n, why);
    }
    for (const w of this.exitWaiters.splice(0)) w();
  }

  private waitExit(ms: number): Promise<boolean> {
    if (this.exit) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.exitWaiters.push(() => { clearTimeout(t); resolve(true); });
    });
  }

  /** Signal pi's process group (pi and whatever it started without detaching). */
  signalGroup(sig: NodeJS.Signals) {
    const pid = this.child?.pid;
    if (!pid || this.exit) return;
    try { process.kill(-pid, sig); } catch { try { process.kill(pid, sig); } catch { /* gone */ } }
  }

  private takeState(st: any) {
    if (!st || typeof st !== "object") return;
    if (st.model && typeof st.model === "object") this.model = `${st.model.provider}/${st.model.id}`;
    else if (st.model === null) this.model = "";
    if (typeof st.sessionId === "string") this.sessionId = st.sessionId;
    this.sessionFile = typeof st.sessionFile === "string" ? st.sessionFile : "";
  }

  private async refreshState() {
    try { this.takeState(await this.request({ type: "get_state" })); } catch { /* exited, or busy: info keeps what it had */ }
  }

  // ---- Backend ---------------------------------------------------------------

  async send(text: string, as: DeliverAs): Promise<void> {
    // pi's prompt with a streamingBehavior starts a turn when pi is idle and
    // queues the text (as a steer or a follow-up) when it is busy: decided
    // inside pi, so there is no race with a turn that is just starting.
    await this.request({ type: "prompt", message: text, streamingBehavior: as === "steer" ? "steer" : "followUp" }, PROMPT_MS, as);
  }

  async abort(): Promise<void> {
    await this.request({ type: "abort" }, ABORT_MS);
  }

  async setModel(provider: string, id: string): Promise<void> {
    const m = await this.request({ type: "set_model", provider, modelId: id }, QUICK_MS, "model");
    if (m && typeof m === "object") this.model = `${m.provider ?? provider}/${m.id ?? id}`;
  }

  async compact(): Promise<void> {
    await this.request({ type: "compact" }, COMPACT_MS);
  }

  async newSession(): Promise<void> {
    const r = await this.request({ type: "new_session" }, QUICK_MS, "new");
    if (r?.cancelled) throw new FsError("ECANCELED", "new: an extension of pi cancelled the new session");
    await this.refreshState();
    this.agent?.renderer.note(`--- new session ${this.sessionId} ---`);
  }

  async messages(): Promise<unknown[]> {
    const r = await this.request({ type: "get_messages" }, QUICK_MS, "messages");
    return Array.isArray(r?.messages) ? r.messages : [];
  }

  async tools(): Promise<ToolInfo[]> {
    if (this.hasBridge === undefined) {
      const r = await this.request({ type: "get_commands" }, QUICK_MS, "tools");
      this.hasBridge = Array.isArray(r?.commands) && r.commands.some((c: any) => c?.name === TOOLS_COMMAND);
    }
    // Without the bridge, "/pi9-tools" would go to the model as a prompt: never send it then.
    if (!this.hasBridge) throw new FsError("EOPNOTSUPP", `tools: this pi did not load pi9's bridge extension (${BRIDGE_PATH})`);
    const nonce = randomBytes(6).toString("hex");
    const got = new Promise<ToolInfo[]>((resolve, reject) => {
      const t = setTimeout(() => { this.toolWaiters.delete(nonce); reject(new FsError("ETIMEDOUT", `tools: pi did not answer within ${TOOLS_MS / 1000} s`)); }, TOOLS_MS);
      this.toolWaiters.set(nonce, (tools) => { clearTimeout(t); resolve(tools); });
    });
    try {
      await this.request({ type: "prompt", message: `/${TOOLS_COMMAND} ${nonce}` }, TOOLS_MS, "tools");
    } catch (e) {
      this.toolWaiters.get(nonce)?.([]);
      throw e;
    }
    return got;
  }

  /** Stop pi for good; resolves when it is gone. */
  kill(): Promise<void> {
    if (this.killing) return this.killing;
    this.killRequested = true;
    this.killing = (async () => {
      if (!this.child?.pid || this.exit) { if (!this.exit) this.onExit(null, null); return; }
      // An abort first: pi then stops its tools itself.
      if (this.busy) await this.request({ type: "abort" }, 3000).catch(() => {});
      const tree = descendants(this.child.pid);
      this.signalGroup("SIGTERM");
      if (!(await this.waitExit(this.opts.killGraceMs ?? 3000))) {
        this.signalGroup("SIGKILL");
        await this.waitExit(10_000);
      }
      for (const p of tree) if (sameProcess(p)) { try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ } }
    })();
    return this.killing;
  }

  info() {
    const i: Record<string, string | number | undefined> = {
      machine: os.hostname(),
      pid: this.child?.pid,
      model: this.model,
      session: this.sessionId,
      session_file: this.sessionFile,
      log: this.spec.logFile,
      pi: this.piPath,
    };
    if (this.exit?.signal) i.signal = this.exit.signal;
    // What pi's tools are running, as last seen (the processes stopped with pi should it die).
    if (this.toolsRunning && !this.exit) i.tool_pids = this.tree.map((p) => p.pid).join(" ");
    return i;
  }
}

/** Running pis: should pi9 itself exit without stopping them, they get a SIGTERM on the way out. */
const live = new Set<PiRpcBackend>();
let hooked = false;
function hookProcessExit() {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => { for (const b of live) b.signalGroup("SIGTERM"); });
}

/** A shell's exit number: the code, or 128 + the signal's number. */
export function exitNumber(code: number | null, signal: NodeJS.Signals | null): number | null {
  if (code !== null) return code;
  if (signal && SIGNALS[signal]) return 128 + SIGNALS[signal];
  return null;
}

function exitText(code: number | null, signal: NodeJS.Signals | null) {
  if (signal) return `was killed by ${signal}`;
  if (code !== null) return `exited with code ${code}`;
  return "is gone";
}

/** The last few lines of pi's log written since `from`, on one line. */
function logTail(file: string, from: number): string {
  try {
    const b = readFileSync(file);
    const s = b.subarray(from).toString("utf8").split("\n").filter((l) => l && !l.startsWith("--- pi9:")).slice(-5).join(" | ");
    return s.length > 600 ? "…" + s.slice(-600) : s;
  } catch { return ""; }
}

// ---- descendants, from /proc (Linux); elsewhere the process group must do ----

interface Proc { pid: number; start: string }

function statOf(pid: number): { ppid: number; start: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold anything.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), start: f[19] };
  } catch { return null; }
}

/** Every descendant of pid now (children of children…), with start times to recognise them later. */
export function descendants(pid: number): Proc[] {
  let pids: number[];
  try { pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number); } catch { return []; }
  const kids = new Map<number, Proc[]>();
  for (const p of pids) {
    const st = statOf(p);
    if (!st) continue;
    const l = kids.get(st.ppid) ?? [];
    l.push({ pid: p, start: st.start });
    kids.set(st.ppid, l);
  }
  const out: Proc[] = [];
  const todo = [pid];
  while (todo.length) {
    for (const k of kids.get(todo.pop()!) ?? []) { out.push(k); todo.push(k.pid); }
  }
  return out;
}

/** Whether a process seen earlier is still the same live process (not a reused pid). */
function sameProcess(p: Proc): boolean {
  const st = statOf(p.pid);
  return !!st && st.start === p.start;
}
