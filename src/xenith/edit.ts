// One piece on purpose (about 800 lines): parser, address evaluation and
// commands share one transaction state (dot, the pending change list and the
// step budget); split, each part would need all of it.
//
// The sam command language (sam(1), "A Tutorial for the Sam Command
// Language"), as Xenith applies it to a window body through `edit`, ctl lines
// and the addr file. A pure library: text in, changes out.
//
// All changes an edit makes are computed against the original text and
// returned at the end, sorted and non-overlapping, for the caller to apply in
// one pass; as in sam, each change must lie at or after the previous one
// ("changes not in sequence" otherwise), successive insertions at one place
// are catenated in order, and an edit that fails changes nothing. One call is
// one transaction, as in acme's Edit: every command of a multi-line edit sees
// the original text, and dot carries from one command to the next.
//
// Positions are UTF-16 code unit offsets (see regex.ts). The grammar and every
// choice made where sam leaves room are written up in man/xenith-edit.txt;
// EDIT_SYNOPSIS below is the one-screen version.

import { Budget, BudgetError, Regex, RegexError, type Range } from "./regex.js";

export type { Range } from "./regex.js";

export class EditError extends Error {
  override name = "EditError";
}

/** Replace original text [q0, q1) by text. */
export interface Change { q0: number; q1: number; text: string }

export interface EditResult {
  /** Against the original text, sorted by q0, non-overlapping, adjacent ones merged. */
  changes: Change[];
  /** Dot in the text after the changes are applied. */
  dot: Range;
  /** What p and = printed. */
  output: string;
}

/** State kept between edits of one window: the last regular expression (for //). */
export interface EditState { lastPattern?: string }

export interface EditOptions {
  /** Step budget for the whole edit, or a Budget to share (default defaultBudget(text.length)). */
  budget?: number | Budget;
  /** Most characters p and = may print (default 64 Mi). */
  maxOutput?: number;
  /** Most characters the edit may insert in all (default 256 Mi). */
  maxInsert?: number;
  /** The empty regular expression // means the last one used; kept here across edits. */
  state?: EditState;
}

/**
 * The default step budget: enough for any linear pass over a 10 MiB body
 * (a step is a thread moved one character, or one command run), while an
 * edit that would take quadratic time fails within a few seconds.
 */
export function defaultBudget(textLength: number): number {
  return 50_000_000 + 20 * textLength;
}

export const DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024;
export const DEFAULT_MAX_INSERT = 256 * 1024 * 1024;
const MAX_DEPTH = 400;

// ---------------------------------------------------------------------------
// Syntax tree

export type Atom =
  | { t: "#"; n: number }
  | { t: "l"; n: number }
  | { t: "/" | "?"; re: Regex }
  | { t: "." | "$" | "+" | "-" };

export type Addr =
  | { t: "simple"; atoms: Atom[] }
  | { t: "," | ";"; left: Addr | null; right: Addr | null };

export type Cmd =
  | { c: "a" | "i" | "c"; addr: Addr | null; text: string }
  | { c: "d" | "p"; addr: Addr | null }
  | { c: "="; addr: Addr | null; chars: boolean }
  | { c: "s"; addr: Addr | null; re: Regex; rhs: string; n: number; global: boolean; groups: boolean }
  | { c: "m" | "t"; addr: Addr | null; dest: Addr }
  | { c: "x" | "y"; addr: Addr | null; re: Regex | null; cmd: Cmd }
  | { c: "g" | "v"; addr: Addr | null; re: Regex; cmd: Cmd }
  | { c: "{"; addr: Addr | null; cmds: Cmd[] }
  /** An address alone: set dot. */
  | { c: "\n"; addr: Addr | null };

/** A short summary of the language, for help texts and error replies. */
export const EDIT_SYNOPSIS = `sam edit language (see xenith-edit notes):
addresses  #n  n  /re/  ?re?  $  .  a1+a2  a1-a2  a1,a2  a1;a2   (, alone: whole body)
commands   a/text/  i/text/  c/text/  d  s[n]/re/text/[g]  m addr  t addr  p  =  =#
loops      x/re/ cmd  x cmd (lines)  y/re/ cmd  g/re/ cmd  v/re/ cmd  { cmd-per-line }
regexp     . [set] [^set] ^ $ * + ? | ( )  \\n; leftmost-longest; & and \\1-\\9 in s
one edit is one transaction: changes are against the original text, in order
`;

const CLOSE = Symbol("}");

const show = (c: string | null) => (c === null ? "end of input" : c === "\n" ? "newline" : `'${c}'`);

class EditParser {
  i = 0;
  depth = 0;
  readonly s: string;
  lastPat: string | undefined;
  private cache = new Map<string, Regex>();

  constructor(src: string, state?: EditState) {
    this.s = src.endsWith("\n") ? src : src + "\n";
    this.lastPat = state?.lastPattern;
  }

  fail(msg: string): never { throw new EditError(msg); }
  peek(): string | null { return this.i < this.s.length ? this.s[this.i] : null; }
  getch(): string | null { return this.i < this.s.length ? this.s[this.i++] : null; }
  skipbl(): string | null {
    while (this.i < this.s.length && (this.s[this.i] === " " || this.s[this.i] === "\t")) this.i++;
    return this.peek();
  }
  enter() { if (++this.depth > MAX_DEPTH) this.fail("edit nested too deeply"); }

  atnl() {
    const c = this.skipbl();
    if (c === null) return;
    this.i++;
    if (c !== "\n") this.fail(`newline expected (saw ${show(c)})`);
  }

  getnum(): number {
    let j = this.i;
    while (j < this.s.length && this.s[j] >= "0" && this.s[j] <= "9") j++;
    if (j === this.i) return 1; // no number defaults to 1
    const n = Math.min(Number(this.s.slice(this.i, j)), Number.MAX_SAFE_INTEGER);
    this.i = j;
    return n;
  }

  okdelim(c: string | null, what: string): string {
    if (c === null || c === "\n") this.fail(`${what} expected`);
    if (c === "\\" || /^[A-Za-z0-9]$/.test(c)) this.fail(`bad delimiter '${c}'`);
    return c;
  }

  compile(pat: string, delim: string): Regex {
    let re = this.cache.get(pat);
    if (!re) {
      try {
        re = new Regex(pat);
      } catch (e) {
        if (e instanceof RegexError) this.fail(`regular expression: ${e.message} in ${delim}${pat}${delim}`);
        throw e;
      }
      this.cache.set(pat, re);
    }
    return re;
  }

  /** Text up to an unescaped delim or a newline; \delim is delim; "" means the last pattern. */
  getregexp(delim: string): Regex {
    let buf = "";
    let c: string | null;
    for (;;) {
      c = this.getch();
      if (c === "\\") {
        const n = this.peek();
        if (n === delim) c = this.getch();
        else if (n === "\\") { buf += c; c = this.getch(); }
      } else if (c === delim || c === "\n" || c === null) break;
      buf += c;
    }
    if (c === "\n") this.i--;
    if (buf.length > 0) this.lastPat = buf;
    if (this.lastPat === undefined) this.fail("no previous regular expression");
    return this.compile(this.lastPat, delim);
  }

  /** Replacement or inserted text up to delim or newline; \n is newline, \delim is delim. */
  getrhs(delim: string, cmd: string): string {
    let out = "";
    let c: string | null;
    for (;;) {
      c = this.getch();
      if (c === null || c === delim || c === "\n") break;
      if (c === "\\") {
        c = this.getch();
        if (c === null) { out += "\\"; break; }
        if (c === "\n") { this.i--; c = "\\"; }
        else if (c === "n") c = "\n";
        else if (c !== delim && (cmd === "s" || c !== "\\")) out += "\\";
      }
      out += c;
    }
    if (c !== null) this.i--; // let the caller see the delimiter or newline
    return out;
  }

  simple(): Atom[] | null {
    const atoms: Atom[] = [];
    for (;;) {
      const c = this.skipbl();
      let a: Atom;
      if (c === "#") { this.i++; a = { t: "#", n: this.getnum() }; }
      else if (c !== null && c >= "0" && c <= "9") a = { t: "l", n: this.getnum() };
      else if (c === "/" || c === "?") { this.i++; a = { t: c, re: this.getregexp(c) }; }
      else if (c === "." || c === "$" || c === "+" || c === "-") { this.i++; a = { t: c }; }
      else break;
      const prev = atoms[atoms.length - 1];
      if (prev) {
        if (a.t === "." || a.t === "$") this.fail(`bad address: '${a.t}' cannot follow another address`);
        if (a.t !== "+" && a.t !== "-" && prev.t !== "+" && prev.t !== "-") atoms.push({ t: "+" });
      }
      if (atoms.length > 10000) this.fail("bad address: too long");
      atoms.push(a);
    }
    return atoms.length ? atoms : null;
  }

  compound(): Addr | null {
    this.enter();
    const atoms = this.simple();
    const left: Addr | null = atoms ? { t: "simple", atoms } : null;
    const c = this.skipbl();
    if (c !== "," && c !== ";") { this.depth--; return left; }
    this.i++;
    const right = this.compound();
    if (right && right.t !== "simple" && right.left === null) this.fail(`bad address: '${right.t}' with nothing before it`);
    this.depth--;
    return { t: c, left, right };
  }

  collecttext(cmd: string): string {
    const c = this.skipbl();
    if (c === "\n") {
      this.i++;
      let out = "";
      while (this.i < this.s.length) {
        const e = this.s.indexOf("\n", this.i);
        const line = this.s.slice(this.i, e);
        this.i = e + 1;
        if (line === ".") break;
        out += line + "\n";
      }
      return out;
    }
    const delim = this.okdelim(this.getch(), `text for '${cmd}'`);
    const text = this.getrhs(delim, "a");
    if (this.peek() === delim) this.i++;
    this.atnl();
    return text;
  }

  /** The command run for each match of x, y, g, v. */
  subcmd(cmd: string, nest: number): Cmd {
    if (this.skipbl() === "\n") { this.i++; return { c: "p", addr: null }; }
    const sub = this.cmd(nest);
    if (sub === null || sub === CLOSE) this.fail(`command expected after '${cmd}'`);
    return sub;
  }

  cmd(nest: number): Cmd | null | typeof CLOSE {
    this.enter();
    try {
      const addr = this.compound();
      const c = this.skipbl();
      if (c === null) return addr ? { c: "\n", addr } : null;
      this.i++;
      switch (c) {
        case "\n":
          return { c: "\n", addr };
        case "a": case "i": case "c":
          return { c, addr, text: this.collecttext(c) };
        case "d": case "p":
          this.atnl();
          return { c, addr };
        case "=": {
          const e = this.s.indexOf("\n", this.i);
          const arg = this.s.slice(this.i, e).trim();
          this.i = e + 1;
          if (arg !== "" && arg !== "#") this.fail(`newline expected after '=' (saw '${arg}')`);
          return { c, addr, chars: arg === "#" };
        }
        case "s": {
          const n = this.getnum();
          this.skipbl();
          const delim = this.okdelim(this.getch(), "regular expression for 's'");
          const re = this.getregexp(delim);
          const rhs = this.getrhs(delim, "s");
          let global = false;
          if (this.peek() === delim) {
            this.i++;
            if (this.peek() === "g") { this.i++; global = true; }
          }
          this.atnl();
          return { c, addr, re, rhs, n, global, groups: /\\[1-9]/.test(rhs) };
        }
        case "m": case "t": {
          const atoms = this.simple();
          if (!atoms) this.fail(`bad address: destination expected after '${c}'`);
          this.atnl();
          return { c, addr, dest: { t: "simple", atoms } };
        }
        case "x": case "y": case "g": case "v": {
          let re: Regex | null = null;
          const n = this.peek();
          if (c !== "x" || (n !== " " && n !== "\t" && n !== "\n" && n !== null)) {
            this.skipbl();
            re = this.getregexp(this.okdelim(this.getch(), `regular expression for '${c}'`));
          }
          const sub = this.subcmd(c, nest);
          if (c === "x" || c === "y") return { c, addr, re, cmd: sub };
          return { c, addr, re: re!, cmd: sub };
        }
        case "{": {
          const cmds: Cmd[] = [];
          for (;;) {
            if (this.skipbl() === "\n") this.i++;
            const sub = this.cmd(nest + 1);
            if (sub === null) this.fail("missing '}'");
            if (sub === CLOSE) break;
            if (sub.c !== "\n" || sub.addr) cmds.push(sub);
          }
          return { c, addr, cmds };
        }
        case "}":
          if (addr) this.fail("'}' takes no address");
          this.atnl();
          if (nest === 0) this.fail("unmatched '}'");
          return CLOSE;
        default:
          return this.fail(`unknown command ${show(c)}`);
      }
    } finally {
      this.depth--;
    }
  }

  program(): Cmd[] {
    const cmds: Cmd[] = [];
    for (;;) {
      const c = this.cmd(0);
      if (c === null) break;
      if (c === CLOSE) this.fail("unmatched '}'"); // not reached: cmd() reports it
      if (c.c !== "\n" || c.addr) cmds.push(c);
    }
    return cmds;
  }
}

/**
 * Parse an edit: one or more commands, one a line. Throws EditError naming
 * the problem. Regular expressions are compiled here, and the empty one is
 * resolved against state.lastPattern (which is updated).
 */
export function parseEdit(src: string, state?: EditState): Cmd[] {
  const p = new EditParser(src, state);
  const cmds = p.program();
  if (state && p.lastPat !== undefined) state.lastPattern = p.lastPat;
  return cmds;
}

/** Parse a lone address (for the addr file). */
export function parseAddress(src: string, state?: EditState): Addr | null {
  const p = new EditParser(src, state);
  const a = p.compound();
  const rest = p.s.slice(p.i);
  if (rest.trim() !== "") throw new EditError(`bad address: unexpected '${rest.trim()[0]}'`);
  if (state && p.lastPat !== undefined) state.lastPattern = p.lastPat;
  return a;
}

// ---------------------------------------------------------------------------
// Evaluation

function lowerBound(a: Int32Array, n: number, v: number): number {
  let lo = 0, hi = n;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] < v) lo = mid + 1; else hi = mid; }
  return lo;
}

type ResultDot = { kind: "new" | "orig"; q0: number; q1: number };

class Exec {
  readonly len: number;
  readonly budget: Budget;
  readonly maxOutput: number;
  readonly maxInsert: number;
  dot: Range;
  nest = 0;
  changes: Change[] = [];
  hiposn = 0;
  delta = 0;
  inserted = 0;
  lastDot: ResultDot | null = null;
  out: string[] = [];
  outLen = 0;
  private nl: Int32Array | null = null;
  private nnl = 0;

  constructor(readonly text: string, dot: Range, opts: EditOptions) {
    this.len = text.length;
    const q0 = Math.max(0, Math.min(this.len, dot.q0 | 0));
    this.dot = { q0, q1: Math.max(q0, Math.min(this.len, dot.q1 | 0)) };
    this.budget = opts.budget instanceof Budget ? opts.budget : new Budget(opts.budget ?? defaultBudget(this.len));
    this.maxOutput = opts.maxOutput ?? DEFAULT_MAX_OUTPUT;
    this.maxInsert = opts.maxInsert ?? DEFAULT_MAX_INSERT;
  }

  fail(msg: string): never { throw new EditError(msg); }

  /** Offsets of the newlines, built once. */
  lines(): Int32Array {
    if (!this.nl) {
      let a = new Int32Array(1024), n = 0;
      for (let i = this.text.indexOf("\n"); i >= 0; i = this.text.indexOf("\n", i + 1)) {
        if (n === a.length) { const b = new Int32Array(n * 2); b.set(a); a = b; }
        a[n++] = i;
      }
      this.nl = a; this.nnl = n;
      this.budget.charge(this.len >> 4);
    }
    return this.nl;
  }

  /** Newlines at offsets before p. */
  nlBefore(p: number): number { const nl = this.lines(); return lowerBound(nl, this.nnl, p); }

  /** The end of the line holding offset p: just after its newline, or the end of the text. */
  endOfLine(p: number): number {
    const k = this.nlBefore(p);
    return k < this.nnl ? this.nl![k] + 1 : this.len;
  }

  charaddr(n: number, a: Range, sign: number): Range {
    let q: number;
    if (sign === 0) q = n;
    else if (sign < 0) q = a.q0 - n;
    else q = a.q1 + n;
    if (q < 0 || q > this.len) this.fail(`address out of range: #${q} (text has ${this.len} characters)`);
    return { q0: q, q1: q };
  }

  lineaddr(n: number, a: Range, sign: number): Range {
    const nl = this.lines(), nnl = this.nnl, text = this.text;
    const range = () => this.fail(`address out of range: line ${sign > 0 ? "+" : sign < 0 ? "-" : ""}${n}`);
    if (sign >= 0) {
      if (n === 0) {
        if (sign === 0 || a.q1 === 0) return { q0: 0, q1: 0 };
        return { q0: a.q1, q1: this.endOfLine(a.q1 - 1) };
      }
      let q0: number;
      if (sign === 0 || a.q1 === 0) {
        if (n - 1 > nnl) range();
        q0 = n === 1 ? 0 : nl[n - 2] + 1;
      } else {
        const need = n - (text.charCodeAt(a.q1 - 1) === 10 ? 1 : 0);
        if (need === 0) q0 = a.q1;
        else {
          const k = this.nlBefore(a.q1) + need - 1;
          if (k >= nnl) range();
          q0 = nl[k] + 1;
        }
      }
      return { q0, q1: this.endOfLine(q0) };
    }
    let p = a.q0, q1: number;
    if (n === 0) q1 = p;
    else {
      const k = this.nlBefore(a.q0);
      if (k >= n) p = nl[k - n] + 1;
      else if (k === n - 1) p = 0;
      else range();
      q1 = p;
      if (p > 0) p--;
    }
    const k2 = this.nlBefore(p);
    return { q0: k2 > 0 ? nl[k2 - 1] + 1 : 0, q1 };
  }

  nextmatch(re: Regex, delim: string, p: number, sign: number): Range {
    const opts = { budget: this.budget };
    const none: () => never = () => this.fail(`no match for ${delim}${re.source}${delim}`);
    if (sign >= 0) {
      let m = re.search(this.text, p, opts);
      if (!m) none();
      if (m.q0 === m.q1 && m.q0 === p) {
        if (++p > this.len) p = 0;
        m = re.search(this.text, p, opts);
        if (!m) none();
      }
      return { q0: m.q0, q1: m.q1 };
    }
    let m = re.searchBackward(this.text, p, opts);
    if (!m) none();
    if (m.q0 === m.q1 && m.q1 === p) {
      if (--p < 0) p = this.len;
      m = re.searchBackward(this.text, p, opts);
      if (!m) none();
    }
    return { q0: m.q0, q1: m.q1 };
  }

  address(ap: Addr, a: Range, sign: number): Range {
    if (ap.t !== "simple") {
      const a1 = ap.left ? this.address(ap.left, a, 0) : { q0: 0, q1: 0 };
      if (ap.t === ";") { a = a1; this.dot = { ...a1 }; }
      const a2 = ap.right ? this.address(ap.right, a, 0) : { q0: this.len, q1: this.len };
      if (a2.q1 < a1.q0) this.fail("addresses out of order");
      return { q0: a1.q0, q1: a2.q1 };
    }
    const atoms = ap.atoms;
    for (let k = 0; k < atoms.length; k++) {
      const at = atoms[k];
      switch (at.t) {
        case "l": a = this.lineaddr(at.n, a, sign); break;
        case "#": a = this.charaddr(at.n, a, sign); break;
        case ".": a = { ...this.dot }; break;
        case "$": a = { q0: this.len, q1: this.len }; break;
        case "/": case "?":
          if (at.t === "?") { sign = -sign; if (sign === 0) sign = -1; }
          a = this.nextmatch(at.re, at.t, sign >= 0 ? a.q1 : a.q0, sign);
          break;
        case "+": case "-": {
          sign = at.t === "+" ? 1 : -1;
          const nx = atoms[k + 1];
          if (!nx || nx.t === "+" || nx.t === "-") a = this.lineaddr(1, a, sign);
          break;
        }
      }
    }
    return a;
  }

  // --- the change log

  insert(p: number, s: string): number {
    const at = p + this.delta;
    if (s.length === 0) return at;
    if (p < this.hiposn) this.fail("changes not in sequence");
    this.inserted += s.length;
    if (this.inserted > this.maxInsert) this.fail(`edit too large: more than ${this.maxInsert} characters inserted`);
    const last = this.changes[this.changes.length - 1];
    if (last && last.q1 === p) last.text += s;
    else this.changes.push({ q0: p, q1: p, text: s });
    this.hiposn = p;
    this.delta += s.length;
    return at;
  }

  delete(p0: number, p1: number) {
    if (p0 === p1) return;
    if (p0 < this.hiposn) this.fail("changes not in sequence");
    const last = this.changes[this.changes.length - 1];
    if (last && last.q1 === p0) last.q1 = p1;
    else this.changes.push({ q0: p0, q1: p1, text: "" });
    this.hiposn = p1;
    this.delta -= p1 - p0;
  }

  print(s: string) {
    this.outLen += s.length;
    if (this.outLen > this.maxOutput) this.fail(`output too large: more than ${this.maxOutput} characters`);
    this.out.push(s);
  }

  // --- commands

  exec(cp: Cmd) {
    this.budget.charge(1);
    if (cp.c === "{") {
      const a = cp.addr ? this.address(cp.addr, this.dot, 0) : { ...this.dot };
      for (const sub of cp.cmds) {
        this.dot = { ...a };
        this.exec(sub);
      }
      return;
    }
    const r = cp.addr ? this.address(cp.addr, this.dot, 0) : { ...this.dot };
    const text = this.text;
    switch (cp.c) {
      case "\n":
        this.dot = r;
        break;
      case "a": {
        const at = this.insert(r.q1, cp.text);
        this.lastDot = { kind: "new", q0: at, q1: at + cp.text.length };
        this.dot = { q0: r.q1, q1: r.q1 };
        break;
      }
      case "i": {
        const at = this.insert(r.q0, cp.text);
        this.lastDot = { kind: "new", q0: at, q1: at + cp.text.length };
        this.dot = { q0: r.q0, q1: r.q0 };
        break;
      }
      case "c": {
        this.delete(r.q0, r.q1);
        const at = this.insert(r.q1, cp.text);
        this.lastDot = { kind: "new", q0: at, q1: at + cp.text.length };
        this.dot = r;
        break;
      }
      case "d": {
        this.delete(r.q0, r.q1);
        const at = r.q1 + this.delta;
        this.lastDot = { kind: "new", q0: at, q1: at };
        this.dot = { q0: r.q0, q1: r.q0 };
        break;
      }
      case "s":
        this.substitute(cp, r);
        this.lastDot = { kind: "orig", q0: r.q0, q1: r.q1 };
        this.dot = r;
        break;
      case "m": case "t": {
        const dest = this.address(cp.dest, this.dot, 0).q1;
        const s = text.slice(r.q0, r.q1);
        let at: number;
        if (cp.c === "t") at = this.insert(dest, s);
        else if (r.q1 <= dest) { this.delete(r.q0, r.q1); at = this.insert(dest, s); }
        else if (dest <= r.q0) { at = this.insert(dest, s); this.delete(r.q0, r.q1); }
        else this.fail("addresses overlap");
        this.lastDot = { kind: "new", q0: at, q1: at + s.length };
        break;
      }
      case "p":
        this.print(text.slice(r.q0, r.q1));
        this.dot = r;
        break;
      case "=":
        this.print(cp.chars ? this.charPosn(r) : this.linePosn(r));
        break;
      case "x": case "y":
        if (cp.re) this.looper(cp.re, cp.c === "x", cp.cmd, r);
        else this.linelooper(cp.cmd, r);
        break;
      case "g": case "v": {
        const m = cp.re.match(text, r.q0, r.q1, { budget: this.budget });
        if ((m !== null) !== (cp.c === "v")) {
          this.dot = r;
          this.exec(cp.cmd);
        }
        break;
      }
    }
  }

  linePosn(r: Range): string {
    const l1 = 1 + this.nlBefore(r.q0);
    let l2 = 1 + this.nlBefore(r.q1);
    if (r.q1 > r.q0 && this.text.charCodeAt(r.q1 - 1) === 10) l2--;
    return l2 !== l1 ? `${l1},${l2}\n` : `${l1}\n`;
  }

  charPosn(r: Range): string {
    return r.q1 !== r.q0 ? `#${r.q0},#${r.q1}\n` : `#${r.q0}\n`;
  }

  substitute(cp: Extract<Cmd, { c: "s" }>, r: Range) {
    let n = cp.n, op = -1, didsub = false;
    for (let p1 = r.q0; p1 <= r.q1;) {
      const m = cp.re.match(this.text, p1, r.q1, { budget: this.budget, captures: cp.groups });
      if (!m) break;
      if (m.q0 === m.q1) {
        if (m.q0 === op) { p1++; continue; }
        p1 = m.q1 + 1;
      } else p1 = m.q1;
      op = m.q1;
      if (--n > 0) continue;
      const rep = this.expand(cp.rhs, m.sub);
      this.delete(m.q0, m.q1);
      this.insert(m.q1, rep);
      didsub = true;
      if (!cp.global) break;
    }
    if (!didsub && this.nest === 0) this.fail(`no substitution for ${cp.re.source === "" ? "//" : "/" + cp.re.source + "/"}`);
  }

  expand(rhs: string, sub: (Range | null)[]): string {
    if (rhs.indexOf("\\") < 0 && rhs.indexOf("&") < 0) return rhs;
    let out = "";
    for (let k = 0; k < rhs.length; k++) {
      const c = rhs[k];
      if (c === "\\" && k < rhs.length - 1) {
        const d = rhs[++k];
        if (d >= "1" && d <= "9") {
          const g = sub[d.charCodeAt(0) - 48];
          if (g) out += this.text.slice(g.q0, g.q1);
        } else out += d;
      } else if (c === "&") {
        out += this.text.slice(sub[0]!.q0, sub[0]!.q1);
      } else out += c;
    }
    return out;
  }

  looper(re: Regex, isX: boolean, sub: Cmd, r: Range) {
    let op = isX ? -1 : r.q0;
    this.nest++;
    for (let p = r.q0; p <= r.q1;) {
      const m = re.match(this.text, p, r.q1, { budget: this.budget });
      let d: Range;
      if (!m) {
        if (isX || op > r.q1) break;
        d = { q0: op, q1: r.q1 };
        p = r.q1 + 1;
      } else {
        if (m.q0 === m.q1) {
          if (m.q0 === op) { p++; continue; }
          p = m.q1 + 1;
        } else p = m.q1;
        d = isX ? { q0: m.q0, q1: m.q1 } : { q0: op, q1: m.q0 };
        op = m.q1;
      }
      this.dot = d;
      this.exec(sub);
    }
    this.nest--;
  }

  linelooper(sub: Cmd, r: Range) {
    this.nest++;
    for (let p = r.q0; p < r.q1;) {
      const e = Math.min(this.endOfLine(p), r.q1);
      this.dot = { q0: p, q1: e };
      this.exec(sub);
      p = e;
    }
    this.nest--;
  }

  /** Where original offset p is after the changes; "after" puts it after text inserted at p. */
  map(p: number, after: boolean): number {
    let shift = 0;
    for (const ch of this.changes) {
      const d = ch.text.length - (ch.q1 - ch.q0);
      if (ch.q1 < p || (ch.q1 === p && ch.q0 < p)) shift += d;
      else if (ch.q0 === p && ch.q1 === p) { if (after) shift += d; break; }
      else if (ch.q0 < p && p < ch.q1) return ch.q0 + shift + (after ? ch.text.length : 0);
      else break;
    }
    return p + shift;
  }

  result(): EditResult {
    let dot: Range;
    const newLen = this.len + this.delta;
    if (this.changes.length && this.lastDot) {
      const d = this.lastDot;
      dot = d.kind === "new" ? { q0: d.q0, q1: d.q1 } : { q0: this.map(d.q0, false), q1: this.map(d.q1, true) };
      dot.q0 = Math.max(0, Math.min(newLen, dot.q0));
      dot.q1 = Math.max(dot.q0, Math.min(newLen, dot.q1));
    } else {
      dot = { ...this.dot };
    }
    return { changes: this.changes, dot, output: this.out.join("") };
  }
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof BudgetError) throw new EditError(e.message);
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw new EditError("edit nested too deeply");
    throw e;
  }
}

/**
 * Run an edit (source text or parsed commands) on text with the given dot
 * (the selection; pass the whole body when nothing is selected).
 * Throws EditError, in which case nothing is to be changed.
 */
export function runEdit(text: string, src: string | Cmd[], dot: Range, opts: EditOptions = {}): EditResult {
  return wrap(() => {
    const cmds = typeof src === "string" ? parseEdit(src, opts.state) : src;
    const ex = new Exec(text, dot, opts);
    for (const c of cmds) ex.exec(c);
    return ex.result();
  });
}

/** Evaluate an address (the addr file's language) against text with dot. Empty means dot. */
export function resolveAddress(text: string, addr: string, dot: Range, opts: EditOptions = {}): Range {
  return wrap(() => {
    const a = parseAddress(addr, opts.state);
    const ex = new Exec(text, dot, opts);
    return a ? ex.address(a, ex.dot, 0) : ex.dot;
  });
}

/** Apply changes as runEdit returns them (sorted, non-overlapping) to text. */
export function applyChanges(text: string, changes: Change[]): string {
  const parts: string[] = [];
  let pos = 0;
  for (const c of changes) {
    if (c.q0 < pos || c.q1 < c.q0 || c.q1 > text.length) throw new EditError("changes not in sequence");
    parts.push(text.slice(pos, c.q0), c.text);
    pos = c.q1;
  }
  parts.push(text.slice(pos));
  return parts.join("");
}

/** Convenience: run an edit and apply it. */
export function edit(text: string, src: string, dot?: Range, opts?: EditOptions): EditResult & { text: string } {
  const r = runEdit(text, src, dot ?? { q0: 0, q1: text.length }, opts);
  return { ...r, text: applyChanges(text, r.changes) };
}
