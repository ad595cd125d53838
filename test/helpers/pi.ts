// Spawned pi agents in tests: a network-free pi (the faux-provider fixture,
// --offline, a private PI_CODING_AGENT_DIR), the `pi9 serve` flags that run
// it, a reader of event streams, and checks that no pi is left behind.

import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Client } from "../../src/ninep/client.js";
import { ROOT } from "./serve.js";

export const FAUX_EXTENSION = path.join(ROOT, "test", "fixtures", "faux-provider.ts");

/** A paced reply long enough to steer, abort or kill mid-stream (40 tokens a second, about 8 s). */
export const LONG = "This is a deliberately long paced reply, so that there is time to steer it, queue follow-ups, abort it or kill its agent while it streams. ".repeat(2).trim();

/** A reply of 300 kB in one piece. */
export const BIG = "0123456789abcdef".repeat(300000 / 16) + "\u2028end";

/** The model's script (test/fixtures/faux-provider.ts) shared by the agent tests. */
export const SCRIPT = {
  rules: [
    { when: "^say hi$", reply: "Hi there!" },
    { when: "^run bash$", reply: { text: "Running it.", bash: "echo hi > out.txt; echo made out.txt" }, then: "The file is written." },
    { when: "^write a lot$", reply: { text: LONG, tokensPerSecond: 40 } },
    { when: "steered", reply: "Steered reply." },
    // Raw U+2028/U+2029 in pi's JSON lines, and lines far longer than a pipe's chunk.
    { when: "^separators$", reply: "line\u2028separator\u2029paragraph" },
    { when: "^big$", reply: { text: BIG, tokenSize: 1 << 20 } },
    { when: "^run slow$", reply: { bash: "echo started; sleep 300; echo never" }, then: "Slow done." },
  ],
  fallback: { echo: true },
};

/**
 * Set up `base` for agents (agent folder for pi's state, the script) and
 * return the `pi9 serve` arguments that run them there, network-free.
 */
export function piServeArgs(base: string, opts: { roots?: string[]; pi?: string } = {}): string[] {
  const agentDir = path.join(base, "pi-agent");
  mkdirSync(agentDir, { recursive: true });
  const script = path.join(base, "faux-script.json");
  writeFileSync(script, JSON.stringify(SCRIPT));
  return [
    ...(opts.roots ?? [base]).flatMap((r) => ["--agent-root", r]),
    ...(opts.pi ? ["--pi", opts.pi] : []),
    "--pi-env", `PI_CODING_AGENT_DIR=${agentDir}`,
    "--pi-env", `PI9_FAUX_SCRIPT=${script}`,
    "--pi-env", "PI_OFFLINE=1",
    "--pi-env", "PI_TELEMETRY=0",
    // No extensions, skills, prompt templates or context files of the machine's own: only the fixture.
    ...["--offline", "-ne", "-ns", "-np", "-nc", "-e", FAUX_EXTENSION].map((a) => `--pi-arg=${a}`),
  ];
}

/** Write a request to /mnt/xenith/new and read the window id back on the same open file. */
export async function newRequest(c: Client, req: string): Promise<number> {
  const fid = await c.open("/mnt/xenith/new", "rw");
  try {
    await c.write(fid, 0, req + "\n");
    return Number((await c.read(fid, 0, 64)).toString().trim());
  } finally {
    await fid.clunk().catch(() => {});
  }
}

/** Every line of an event stream from the moment of the open, with bounded waits for what should come. */
export class EventReader {
  lines: string[] = [];
  private part = "";
  private ac = new AbortController();
  private wake: (() => void)[] = [];
  done: Promise<void>;
  ended: Error | null = null;

  private constructor(c: Client, p: string, opened: () => void) {
    this.done = (async () => {
      const fid = await c.open(p, "r");
      opened();
      try {
        let off = 0;
        for (;;) {
          const b = await c.read(fid, off, 65536, this.ac.signal);
          if (b.length === 0) break;
          off += b.length;
          this.part += b.toString("utf8");
          const ls = this.part.split("\n");
          this.part = ls.pop()!;
          this.lines.push(...ls);
          for (const w of this.wake.splice(0)) w();
        }
      } catch (e) {
        this.ended = e as Error;
      } finally {
        await fid.clunk().catch(() => {});
        for (const w of this.wake.splice(0)) w();
      }
    })();
  }

  /** Open the stream; resolves once the open is done, so nothing later is missed. */
  static async open(c: Client, p: string): Promise<EventReader> {
    let r!: EventReader;
    await new Promise<void>((resolve, reject) => {
      r = new EventReader(c, p, resolve);
      r.done.catch(reject);
      void r.done.then(() => { if (r.ended) reject(r.ended); });
    });
    return r;
  }

  /** Wait until pred holds of the lines so far; fails after ms (a guard, not a measurement). */
  async until(pred: (lines: string[]) => boolean, what: string, ms = 60000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (!pred(this.lines)) {
      if (this.ended) throw new Error(`event stream ended (${this.ended.message}) waiting for ${what}; saw:\n${this.lines.join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; saw:\n${this.lines.join("\n")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.lines;
  }

  count(line: string) { return this.lines.filter((l) => l === line).length; }

  close() { this.ac.abort(); return this.done.catch(() => {}); }
}

/** Poll until cond() holds (bounded: a guard, not a measurement). */
export async function poll<T>(cond: () => Promise<T | false | null | undefined> | T | false | null | undefined, what: string, ms = 60000, every = 100): Promise<T> {
  const n = Math.ceil(ms / every);
  for (let i = 0; i < n; i++) {
    const v = await cond();
    if (v) return v;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  // A zombie is dead for our purposes.
  try { return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return !existsSync("/proc/self"); }
}

/** Processes whose working folder is `dir` or below (pi agents and their tools run in their folders). */
export function processesIn(dir: string): number[] {
  const out: number[] = [];
  let names: string[];
  try { names = readdirSync("/proc"); } catch { return out; }
  for (const n of names) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${n}/cwd`);
      if ((cwd === dir || cwd.startsWith(dir + "/")) && alive(Number(n))) out.push(Number(n));
    } catch { /* gone, or not ours to see */ }
  }
  return out;
}

/** `key value` lines of an info file. */
export function parseInfo(s: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of s.split("\n")) { const i = l.indexOf(" "); if (i > 0) o[l.slice(0, i)] = l.slice(i + 1); }
  return o;
}
