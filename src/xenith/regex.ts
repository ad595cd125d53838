// One piece on purpose (about 850 lines): the parser, the compiler to a
// program and the Pike-VM that runs it share one instruction set; split, its
// definition would have to be exported and kept in step across files.
//
// Plan 9 regular expressions (regexp(7)) for the sam edit language.
//
// Syntax, exactly regexp(7) plus sam's \n:
//   e0: e1 | e0 '|' e1          alternation
//   e1: e2 | e1 e2              concatenation
//   e2: e3 | e2 REP             REP is * + ?
//   e3: literal | class | '.' | '^' | '$' | '(' e0 ')'
// A literal is any character but the metacharacters .*+?[]()|\^$, or any
// character after a backslash; \n is a newline. A class is [s] or [^s] with
// ranges a-b (ascending); inside it -, ] and a leading ^ must be escaped and
// other metacharacters stand for themselves. `.` and negated classes never
// match newline. ^ and $ are line anchors: ^ matches at the start of the text
// or after a newline, $ before a newline or
// at the end of the text when its last line has no newline (there the end of
// the text stands in for the missing newline; sam's matcher tests only for a
// newline, libregexp's for a newline or the end of the string).
// Empty operands are errors, as in sam: `()`, `a|`, `|a`, `*a`.
//
// Matching is leftmost-longest: of all matches the one starting first, and of
// those the longest. Submatches follow regexp(7)'s rule that each part extends
// as far as possible without preventing a match of the rest: among the parses
// of the chosen match, subexpressions are compared in the order of their left
// parentheses, preferring the earlier start and then the later end (a group
// that took part beats one that did not; inside a loop the last iteration
// counts). For (a|ab)(c|bcd)(d*) on "abcd" that gives ab, c, d.
//
// The engine is a Thompson NFA simulation (Pike VM) without backtracking:
// a search costs O(text × pattern) steps whatever the pattern. Threads that
// reach the same instruction at the same position have the same future, so
// only the best of them is kept; the rule above decides which, so the result
// does not depend on the order threads are run in. Searches run in two phases:
// the position of the match is found with threads carrying only their start,
// and only then, if the caller wants submatches, the match is parsed again
// with full captures over its own extent.
//
// Positions are UTF-16 code unit offsets into a JS string: a character
// outside the BMP counts as two, and `.` matches each half. Callers that count
// in runes or bytes convert at their boundary.
//
// Backward search (for sam's ?re? and a1-/re/) runs a program compiled with
// every concatenation reversed over the text read right to left, as sam does:
// it finds the match ending nearest before the starting point, the longest
// such.
//
// Every search may be given a Budget, a count of VM steps shared by all the
// searches of one edit; exceeding it throws BudgetError, so that an x loop that
// would take quadratic time on a huge body fails with a message instead of
// hanging the server.

export class RegexError extends Error {
  override name = "RegexError";
}

export class BudgetError extends Error {
  override name = "BudgetError";
}

/** Longest pattern accepted, in UTF-16 code units. */
export const MAX_PATTERN = 8192;
/** Most instructions a compiled program may have. */
export const MAX_PROGRAM = 12000;
/** Deepest parenthesis nesting accepted. */
export const MAX_NESTING = 500;
/** Subexpressions recorded for \1 to \9; further parentheses only group. */
export const MAX_GROUPS = 9;
/** Default step budget (see Budget). */
export const DEFAULT_BUDGET = 400_000_000;

/** A count of matcher steps that can be shared by many searches. */
export class Budget {
  used = 0;
  constructor(readonly limit: number = DEFAULT_BUDGET) {}
  charge(n: number) {
    this.used += n;
    if (this.used > this.limit) {
      throw new BudgetError(`too much work: more than ${this.limit} matching steps; narrow the address or simplify the pattern`);
    }
  }
}

export interface Range { q0: number; q1: number }

export interface Match extends Range {
  /** sub[0] is the whole match, sub[i] the i-th parenthesized subexpression (null if it took no part). */
  sub: (Range | null)[];
}

export interface SearchOptions {
  budget?: Budget;
  /** Compute the subexpressions too (otherwise only sub[0] is set). */
  captures?: boolean;
}

// ---------------------------------------------------------------------------
// Parsing

type Node =
  | { t: "char"; c: number }
  | { t: "any" }
  | { t: "class"; cls: number }
  | { t: "bol" }
  | { t: "eol" }
  | { t: "cat"; a: Node[] }
  | { t: "alt"; a: Node[] }
  | { t: "star" | "plus" | "quest"; e: Node }
  | { t: "group"; g: number; e: Node }
  | { t: "empty" };

/** A character class as sorted, merged inclusive ranges, plus an ASCII bitmap. */
class CharClass {
  readonly ascii = new Uint8Array(128);
  constructor(readonly ranges: number[], readonly negated: boolean) {
    for (let i = 0; i < ranges.length; i += 2) {
      for (let c = ranges[i]; c <= ranges[i + 1] && c < 128; c++) this.ascii[c] = 1;
    }
    if (negated) for (let c = 0; c < 128; c++) this.ascii[c] = c === 10 ? 0 : this.ascii[c] ^ 1;
  }
  has(c: number): boolean {
    if (c < 128) return this.ascii[c] === 1;
    const r = this.ranges;
    let lo = 0, hi = (r.length >> 1) - 1, inside = false;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (c < r[2 * mid]) hi = mid - 1;
      else if (c > r[2 * mid + 1]) lo = mid + 1;
      else { inside = true; break; }
    }
    return inside !== this.negated;
  }
}

const META = ".*+?[]()|\\^$";

class Parser {
  i = 0;
  ngroups = 0;
  nparens = 0;
  depth = 0;
  classes: CharClass[] = [];
  /** lastNested[g] is the highest group number opened inside group g. */
  lastNested: number[] = [0];
  constructor(readonly s: string) {}

  fail(msg: string): never { throw new RegexError(msg); }

  parse(): Node {
    const n = this.alt();
    if (this.i < this.s.length) {
      // alt() stops only at ')' or the end
      this.fail("unmatched ')'");
    }
    return n;
  }

  alt(): Node {
    const a: Node[] = [];
    for (;;) {
      const e = this.cat();
      if (e === null) {
        const c = this.s[this.i];
        if (c === "|") this.fail("missing operand for '|'");
        if (a.length) this.fail("missing operand for '|'");
        return { t: "empty" };
      }
      a.push(e);
      if (this.s[this.i] !== "|") break;
      this.i++;
      if (this.i >= this.s.length || this.s[this.i] === "|" || this.s[this.i] === ")") {
        this.fail("missing operand for '|'");
      }
    }
    return a.length === 1 ? a[0] : { t: "alt", a };
  }

  /** Concatenation; null if there is no operand here. */
  cat(): Node | null {
    const a: Node[] = [];
    for (;;) {
      const e = this.rep();
      if (e === null) break;
      a.push(e);
    }
    if (a.length === 0) return null;
    return a.length === 1 ? a[0] : { t: "cat", a };
  }

  rep(): Node | null {
    let e = this.atom();
    if (e === null) return null;
    for (;;) {
      const c = this.s[this.i];
      if (c === "*") e = { t: "star", e };
      else if (c === "+") e = { t: "plus", e };
      else if (c === "?") e = { t: "quest", e };
      else break;
      this.i++;
    }
    return e;
  }

  atom(): Node | null {
    if (this.i >= this.s.length) return null;
    const c = this.s[this.i];
    switch (c) {
      case "|":
      case ")":
        return null;
      case "*":
      case "+":
      case "?":
        return this.fail(`missing operand for '${c}'`);
      case "(": {
        this.i++;
        if (++this.depth > MAX_NESTING) this.fail("parentheses nested too deeply");
        // Only the first nine subexpressions are recorded (\1 to \9), as in sam.
        const g = ++this.nparens <= MAX_GROUPS ? this.nparens : 0;
        if (g) { this.ngroups = g; this.lastNested[g] = g; }
        if (this.s[this.i] === ")") this.fail("missing operand for '('");
        const e = this.alt();
        if (this.s[this.i] !== ")") this.fail("unmatched '('");
        this.i++;
        this.depth--;
        if (!g) return e;
        this.lastNested[g] = this.ngroups;
        return { t: "group", g, e };
      }
      case ".":
        this.i++;
        return { t: "any" };
      case "^":
        this.i++;
        return { t: "bol" };
      case "$":
        this.i++;
        return { t: "eol" };
      case "[":
        this.i++;
        return this.cclass();
      case "\\": {
        this.i++;
        if (this.i >= this.s.length) return { t: "char", c: 92 }; // trailing \ is itself
        const e = this.s.charCodeAt(this.i++);
        return { t: "char", c: e === 110 /* n */ ? 10 : e };
      }
      default:
        this.i++;
        return { t: "char", c: c.charCodeAt(0) };
    }
  }

  /** One class member: [code, escaped] or null at the end of the pattern. */
  member(): [number, boolean] {
    if (this.i >= this.s.length) this.fail("missing ']' in class");
    const c = this.s.charCodeAt(this.i++);
    if (c !== 92) return [c, false];
    if (this.i >= this.s.length) this.fail("missing ']' in class");
    const e = this.s.charCodeAt(this.i++);
    return [e === 110 ? 10 : e, true];
  }

  cclass(): Node {
    let negated = false;
    if (this.s[this.i] === "^") { negated = true; this.i++; }
    const raw: number[] = [];
    for (;;) {
      const [c1, esc1] = this.member();
      if (!esc1 && c1 === 93 /* ] */) break;
      if (!esc1 && c1 === 45 /* - */) this.fail("malformed []: '-' must be escaped or between two characters");
      let c2 = c1;
      if (this.s[this.i] === "-") {
        this.i++;
        const [d, escd] = this.member();
        if (!escd && (d === 93 || d === 45)) this.fail("malformed []: range with no end");
        if (d < c1) this.fail(`malformed []: range ${String.fromCharCode(c1)}-${String.fromCharCode(d)} is not ascending`);
        c2 = d;
      }
      raw.push(c1, c2);
    }
    if (raw.length === 0) this.fail("empty class []");
    // sort and merge
    const pairs: [number, number][] = [];
    for (let k = 0; k < raw.length; k += 2) pairs.push([raw[k], raw[k + 1]]);
    pairs.sort((a, b) => a[0] - b[0]);
    const ranges: number[] = [];
    for (const [a, b] of pairs) {
      const n = ranges.length;
      if (n && a <= ranges[n - 1] + 1) ranges[n - 1] = Math.max(ranges[n - 1], b);
      else ranges.push(a, b);
    }
    this.classes.push(new CharClass(ranges, negated));
    return { t: "class", cls: this.classes.length - 1 };
  }
}

// ---------------------------------------------------------------------------
// Programs

const CHAR = 0, ANY = 1, CLASS = 2, SPLIT = 3, JMP = 4, OPEN = 5, CLOSE = 6, BOL = 7, EOL = 8, MATCH = 9;

/** How a search may skip positions where no match can start. */
type Skip =
  | { kind: "none" }
  | { kind: "bol" }
  | { kind: "char"; c: number }
  | { kind: "set"; map: Uint8Array };

class Prog {
  op: Uint8Array;
  x: Int32Array;
  y: Int32Array;
  n = 0;
  skip: Skip = { kind: "none" };
  readonly vms = new Map<number, VM>();
  constructor(size: number, readonly classes: CharClass[], readonly ngroups: number, readonly lastNested: number[]) {
    this.op = new Uint8Array(size);
    this.x = new Int32Array(size);
    this.y = new Int32Array(size);
  }
  emit(op: number, x = 0, y = 0): number {
    if (this.n >= this.op.length) throw new RegexError("regular expression too long");
    this.op[this.n] = op; this.x[this.n] = x; this.y[this.n] = y;
    return this.n++;
  }
}

function size(n: Node): number {
  switch (n.t) {
    case "cat": return n.a.reduce((s, e) => s + size(e), 0);
    case "alt": return n.a.reduce((s, e) => s + size(e) + 2, 0);
    case "star": return size(n.e) + 2;
    case "plus": return size(n.e) + 1;
    case "quest": return size(n.e) + 1;
    case "group": return size(n.e) + 2;
    case "empty": return 0;
    default: return 1;
  }
}

function gen(p: Prog, n: Node, backward: boolean) {
  switch (n.t) {
    case "char": p.emit(CHAR, n.c); break;
    case "any": p.emit(ANY); break;
    case "class": p.emit(CLASS, n.cls); break;
    case "bol": p.emit(BOL); break;
    case "eol": p.emit(EOL); break;
    case "empty": break;
    case "cat":
      if (backward) for (let k = n.a.length - 1; k >= 0; k--) gen(p, n.a[k], backward);
      else for (const e of n.a) gen(p, e, backward);
      break;
    case "alt": {
      const jumps: number[] = [];
      for (let k = 0; k < n.a.length - 1; k++) {
        const s = p.emit(SPLIT, p.n + 1);
        gen(p, n.a[k], backward);
        jumps.push(p.emit(JMP));
        p.y[s] = p.n;
      }
      gen(p, n.a[n.a.length - 1], backward);
      for (const j of jumps) p.x[j] = p.n;
      break;
    }
    case "star": {
      const s = p.emit(SPLIT, p.n + 1);
      gen(p, n.e, backward);
      p.emit(JMP, s);
      p.y[s] = p.n;
      break;
    }
    case "plus": {
      const top = p.n;
      gen(p, n.e, backward);
      p.emit(SPLIT, top, p.n + 1);
      break;
    }
    case "quest": {
      const s = p.emit(SPLIT, p.n + 1);
      gen(p, n.e, backward);
      p.y[s] = p.n;
      break;
    }
    case "group":
      p.emit(OPEN, n.g);
      gen(p, n.e, backward);
      p.emit(CLOSE, n.g);
      break;
  }
}

/** Work out how a search can skip ahead when no thread is alive. */
function analyse(p: Prog) {
  const seen = new Uint8Array(p.n);
  const stack = [0];
  let nullable = false, bol = false;
  const consumers: number[] = [];
  while (stack.length) {
    const pc = stack.pop()!;
    if (seen[pc]) continue;
    seen[pc] = 1;
    switch (p.op[pc]) {
      case JMP: stack.push(p.x[pc]); break;
      case SPLIT: stack.push(p.x[pc], p.y[pc]); break;
      case OPEN: case CLOSE: stack.push(pc + 1); break;
      case BOL: bol = true; break;
      case EOL: case MATCH: nullable = true; break;
      default: consumers.push(pc);
    }
  }
  if (nullable) return;
  if (bol) {
    if (consumers.length === 0) p.skip = { kind: "bol" };
    return;
  }
  if (consumers.length === 1 && p.op[consumers[0]] === CHAR) {
    p.skip = { kind: "char", c: p.x[consumers[0]] };
    return;
  }
  const map = new Uint8Array(65536);
  for (const pc of consumers) {
    switch (p.op[pc]) {
      case CHAR: map[p.x[pc]] = 1; break;
      case ANY: map.fill(1, 0, 10); map.fill(1, 11); break;
      case CLASS: {
        const cls = p.classes[p.x[pc]];
        if (cls.negated) {
          const m2 = new Uint8Array(65536).fill(1);
          m2[10] = 0;
          for (let k = 0; k < cls.ranges.length; k += 2) m2.fill(0, cls.ranges[k], Math.min(65535, cls.ranges[k + 1]) + 1);
          for (let c = 0; c < 65536; c++) map[c] |= m2[c];
        } else {
          for (let k = 0; k < cls.ranges.length; k += 2) map.fill(1, cls.ranges[k], Math.min(65535, cls.ranges[k + 1]) + 1);
        }
        break;
      }
    }
  }
  p.skip = { kind: "set", map };
}

// ---------------------------------------------------------------------------
// The VM
//
// Positions inside the VM are "x" coordinates: for a forward program x is the
// text offset; for a backward program x = len - offset, so the VM always
// advances x by one per character read.

class ThreadList {
  gen = 1;
  n = 0;
  readonly seen: Int32Array;
  readonly order: Int32Array;
  readonly caps: Int32Array;
  constructor(size: number, ncap: number) {
    this.seen = new Int32Array(size);
    this.order = new Int32Array(size);
    this.caps = new Int32Array(size * ncap);
  }
  clear() {
    if (++this.gen > 0x3fffffff) { this.seen.fill(0); this.gen = 1; }
    this.n = 0;
  }
}

interface Found { start: number; end: number; caps: Int32Array | null }

/**
 * The machine for one program and one capture width, kept with the program
 * so that the many short searches of an x loop allocate nothing.
 *
 * run() goes over x in [xFrom, xTo] (characters at xFrom..xTo-1 are read),
 * starting threads at every x in [xFrom, seedMax] until a match is found.
 * With ncap == 1 threads carry only their start; otherwise
 * ncap == 1 + 2 * ngroups and the captures decide between parses.
 */
class VM {
  private cl: ThreadList;
  private nl: ThreadList;
  private stackPc = new Int32Array(64);
  private stackCaps: Int32Array;
  private sp = 0;
  private readonly seed: Int32Array;
  private readonly bestCaps: Int32Array | null;
  // per run
  private text = "";
  private len = 0;
  private backward = false;
  private bestStart = -1;
  private bestEnd = -1;
  private work = 0;

  constructor(private readonly p: Prog, private readonly ncap: number) {
    this.cl = new ThreadList(p.n, ncap);
    this.nl = new ThreadList(p.n, ncap);
    this.stackCaps = new Int32Array(64 * ncap);
    this.seed = new Int32Array(ncap);
    this.bestCaps = ncap > 1 ? new Int32Array(ncap) : null;
  }

  private charAt(x: number): number {
    return this.backward ? this.text.charCodeAt(this.len - 1 - x) : this.text.charCodeAt(x);
  }

  private atBol(x: number): boolean {
    const q = this.backward ? this.len - x : x;
    return q === 0 || this.text.charCodeAt(q - 1) === 10;
  }

  private atEol(x: number): boolean {
    const q = this.backward ? this.len - x : x, len = this.len;
    return q < len ? this.text.charCodeAt(q) === 10 : len > 0 && this.text.charCodeAt(len - 1) !== 10;
  }

  // Are captures a[ao..] better than b[bo..]? Slot 0 is the start of the
  // whole match; then per group its start and end.
  private better(a: Int32Array, ao: number, b: Int32Array, bo: number): boolean {
    if (a[ao] !== b[bo]) return a[ao] < b[bo];
    const ncap = this.ncap;
    for (let k = 1; k < ncap; k += 2) {
      const as = a[ao + k], bs = b[bo + k];
      if (as !== bs) {
        if (as === -1) return false;
        if (bs === -1) return true;
        return as < bs;
      }
      const ae = a[ao + k + 1], be = b[bo + k + 1];
      if (ae !== be) return ae > be;
    }
    return false;
  }

  private push(pc: number, src: Int32Array, so: number) {
    const ncap = this.ncap;
    if (this.sp === this.stackPc.length) {
      const np = new Int32Array(this.sp * 2); np.set(this.stackPc); this.stackPc = np;
      const nc = new Int32Array(this.sp * 2 * ncap); nc.set(this.stackCaps); this.stackCaps = nc;
    }
    this.stackPc[this.sp] = pc;
    const d = this.sp * ncap;
    if (ncap === 1) this.stackCaps[d] = src[so];
    else for (let k = 0; k < ncap; k++) this.stackCaps[d + k] = src[so + k];
    this.sp++;
  }

  // Add the thread (pc, caps) at position x to list l, following empty moves.
  private add(l: ThreadList, pc0: number, src: Int32Array, so: number, x: number) {
    const p = this.p, op = p.op, ax = p.x, ay = p.y, ncap = this.ncap, caps = l.caps, seen = l.seen, gen = l.gen;
    this.push(pc0, src, so);
    while (this.sp > 0) {
      const sp = --this.sp;
      this.work++;
      const pc = this.stackPc[sp], d = sp * ncap, slot = pc * ncap, sc = this.stackCaps;
      if (seen[pc] === gen) {
        if (!this.better(sc, d, caps, slot)) continue;
      } else {
        seen[pc] = gen;
        l.order[l.n++] = pc;
      }
      if (ncap === 1) caps[slot] = sc[d];
      else for (let k = 0; k < ncap; k++) caps[slot + k] = sc[d + k];
      switch (op[pc]) {
        case JMP: this.push(ax[pc], caps, slot); break;
        case SPLIT: this.push(ay[pc], caps, slot); this.push(ax[pc], caps, slot); break;
        case OPEN: {
          this.push(pc + 1, caps, slot);
          if (ncap > 1) {
            const g = ax[pc], t = (this.sp - 1) * ncap, st = this.stackCaps;
            st[t + 2 * g - 1] = x;
            st[t + 2 * g] = -1;
            for (let h = g + 1; h <= p.lastNested[g]; h++) { st[t + 2 * h - 1] = -1; st[t + 2 * h] = -1; }
          }
          break;
        }
        case CLOSE:
          this.push(pc + 1, caps, slot);
          if (ncap > 1) this.stackCaps[(this.sp - 1) * ncap + 2 * ax[pc]] = x;
          break;
        case BOL: if (this.atBol(x)) this.push(pc + 1, caps, slot); break;
        case EOL: if (this.atEol(x)) this.push(pc + 1, caps, slot); break;
        case MATCH: {
          const s = caps[slot], bc = this.bestCaps;
          if (this.bestStart < 0 || s < this.bestStart || (s === this.bestStart && (x > this.bestEnd ||
            (x === this.bestEnd && bc !== null && this.better(caps, slot, bc, 0))))) {
            this.bestStart = s; this.bestEnd = x;
            if (bc) for (let k = 0; k < ncap; k++) bc[k] = caps[slot + k];
          }
          break;
        }
        default: break; // a consumer waits for the next character
      }
    }
  }

  // The first x in [from, end] whose character is c, or -1. Native
  // indexOf is used only when the text beyond the range is not much longer
  // than the range, so that a search confined to a small range never scans
  // the rest of a huge body; the distance scanned is charged either way.
  private findChar(c: number, from: number, end: number): number {
    if (end < from) return -1;
    const text = this.text, len = this.len;
    if (len - from <= 4 * (end - from + 1)) {
      const ch = String.fromCharCode(c);
      let x: number;
      if (this.backward) {
        const j = text.lastIndexOf(ch, len - 1 - from);
        x = j < 0 ? len : len - 1 - j;
      } else {
        const j = text.indexOf(ch, from);
        x = j < 0 ? len : j;
      }
      this.work += (x - from) >> 4;
      return x <= end ? x : -1;
    }
    let x = from;
    if (this.backward) while (x <= end && text.charCodeAt(len - 1 - x) !== c) x++;
    else while (x <= end && text.charCodeAt(x) !== c) x++;
    this.work += (x - from) >> 4;
    return x <= end ? x : -1;
  }

  // Next x >= from where a thread started could survive, or -1.
  private skipTo(from: number, xTo: number, seedMax: number): number {
    const sk = this.p.skip, text = this.text, len = this.len;
    switch (sk.kind) {
      case "none": return from;
      case "bol": {
        // An offset is at a line start when the character before it is a
        // newline. Backward, that character is the one read at x itself.
        const limit = Math.min(xTo, seedMax);
        if (this.backward) {
          const nl = this.findChar(10, from, Math.min(limit, len - 1));
          return nl >= 0 ? nl : limit === len ? len : -1;
        }
        if (from === 0 || text.charCodeAt(from - 1) === 10) return from <= seedMax ? from : -1;
        const nl = this.findChar(10, from, limit - 1);
        return nl < 0 ? -1 : nl + 1;
      }
      case "char":
        return this.findChar(sk.c, from, Math.min(xTo - 1, seedMax));
      case "set": {
        const map = sk.map, end = Math.min(xTo - 1, seedMax);
        let x = from;
        if (this.backward) while (x <= end && map[text.charCodeAt(len - 1 - x)] === 0) x++;
        else while (x <= end && map[text.charCodeAt(x)] === 0) x++;
        this.work += (x - from) >> 4;
        return x <= end ? x : -1;
      }
    }
  }

  run(text: string, backward: boolean, xFrom: number, xTo: number, seedMax: number, budget: Budget | undefined): Found | null {
    this.text = text; this.len = text.length; this.backward = backward;
    this.bestStart = -1; this.bestEnd = -1; this.work = 0; this.sp = 0;
    const ncap = this.ncap, p = this.p, op = p.op, ax = p.x, classes = p.classes, seed = this.seed;
    seed.fill(-1);
    let cl = this.cl, nl = this.nl;
    cl.clear();
    let x = xFrom;
    try {
      for (;;) {
        if (this.bestStart < 0 && x <= seedMax) {
          if (cl.n === 0) {
            const nx = this.skipTo(x, xTo, seedMax);
            if (nx < 0) break;
            x = nx;
          }
          seed[0] = x;
          this.add(cl, 0, seed, 0, x);
        }
        if (cl.n === 0) {
          if (this.bestStart >= 0 || x >= seedMax || x >= xTo) break;
          x++;
          continue;
        }
        if (x >= xTo) break;
        const c = backward ? text.charCodeAt(this.len - 1 - x) : text.charCodeAt(x);
        nl.clear();
        const order = cl.order, caps = cl.caps, n = cl.n, bestStart = this.bestStart;
        for (let i = 0; i < n; i++) {
          const pc = order[i];
          switch (op[pc]) {
            case CHAR: if (c !== ax[pc]) continue; break;
            case ANY: if (c === 10) continue; break;
            case CLASS: if (!classes[ax[pc]].has(c)) continue; break;
            default: continue;
          }
          if (bestStart >= 0 && caps[pc * ncap] > bestStart) continue;
          this.add(nl, pc + 1, caps, pc * ncap, x + 1);
        }
        this.work += n;
        if (this.work > 65536 && budget) { budget.charge(this.work); this.work = 0; }
        const t = cl; cl = nl; nl = t;
        x++;
      }
    } finally {
      this.cl = cl; this.nl = nl;
      this.text = "";
    }
    if (budget) budget.charge(this.work + 16);
    if (this.bestStart < 0) return null;
    return { start: this.bestStart, end: this.bestEnd, caps: this.bestCaps };
  }
}

function run(p: Prog, text: string, backward: boolean, xFrom: number, xTo: number, seedMax: number,
  ncap: number, budget: Budget | undefined): Found | null {
  let vm = p.vms.get(ncap);
  if (!vm) { vm = new VM(p, ncap); p.vms.set(ncap, vm); }
  return vm.run(text, backward, xFrom, xTo, seedMax, budget);
}

// ---------------------------------------------------------------------------
// Public interface

export class Regex {
  /** Number of parenthesized subexpressions. */
  readonly ngroups: number;
  private readonly fwd: Prog;
  private bwdProg: Prog | null = null;
  private readonly tree: Node;
  private readonly classes: CharClass[];
  private readonly lastNested: number[];

  constructor(readonly source: string) {
    if (source.length > MAX_PATTERN) throw new RegexError(`regular expression too long (more than ${MAX_PATTERN} characters)`);
    const ps = new Parser(source);
    this.tree = ps.parse();
    this.ngroups = ps.ngroups;
    this.classes = ps.classes;
    this.lastNested = ps.lastNested;
    this.fwd = this.build(false);
  }

  private build(backward: boolean): Prog {
    const n = size(this.tree) + 1;
    if (n > MAX_PROGRAM) throw new RegexError(`regular expression too long (${n} instructions, limit ${MAX_PROGRAM})`);
    const p = new Prog(n, this.classes, this.ngroups, this.lastNested);
    gen(p, this.tree, backward);
    p.emit(MATCH);
    analyse(p);
    return p;
  }

  private get bwd(): Prog {
    if (!this.bwdProg) this.bwdProg = this.build(true);
    return this.bwdProg;
  }

  private result(text: string, backward: boolean, f: Found, opts: SearchOptions): Match {
    const len = text.length;
    const toQ = (x: number) => (backward ? len - x : x);
    let q0 = toQ(f.start), q1 = toQ(f.end);
    if (backward) [q0, q1] = [q1, q0];
    const sub: (Range | null)[] = [{ q0, q1 }];
    if (opts.captures && this.ngroups > 0) {
      const p = backward ? this.bwd : this.fwd;
      const ncap = 1 + 2 * this.ngroups;
      const g = run(p, text, backward, f.start, f.end, f.start, ncap, opts.budget);
      const caps = g?.caps;
      for (let k = 1; k <= this.ngroups; k++) {
        const s = caps ? caps[2 * k - 1] : -1, e = caps ? caps[2 * k] : -1;
        if (s < 0 || e < 0) { sub.push(null); continue; }
        const a = toQ(s), b = toQ(e);
        sub.push(backward ? { q0: b, q1: a } : { q0: a, q1: b });
      }
    }
    return { q0, q1, sub };
  }

  /**
   * The leftmost-longest match lying within [from, to] and starting at or
   * before maxStart. Anchors look at the whole text. By default, as in sam,
   * a search does not start at `to` itself (so an x loop finds no empty match
   * at the end of its range) unless from == to, or `to` is the end of a text
   * whose last line lacks its newline (there it stands in for the newline).
   */
  match(text: string, from: number, to: number, opts: SearchOptions & { maxStart?: number } = {}): Match | null {
    from = Math.max(0, from); to = Math.min(text.length, to);
    if (from > to) return null;
    const seedMax = Math.min(to, opts.maxStart ?? defaultMaxStart(text, from, to));
    if (seedMax < from) return null;
    const f = run(this.fwd, text, false, from, to, seedMax, 1, opts.budget);
    return f ? this.result(text, false, f, opts) : null;
  }

  /**
   * Searching right to left: of the matches lying within [from, to] and
   * ending at or after minEnd, the one ending last, and of those the longest.
   * By default minEnd is from + 1 (no empty match at `from`) unless from == to,
   * mirroring match().
   */
  matchBackward(text: string, from: number, to: number, opts: SearchOptions & { minEnd?: number } = {}): Match | null {
    from = Math.max(0, from); to = Math.min(text.length, to);
    if (from > to) return null;
    const len = text.length;
    const minEnd = Math.max(from, opts.minEnd ?? (from === to ? from : from + 1));
    if (minEnd > to) return null;
    const f = run(this.bwd, text, true, len - to, len - from, len - minEnd, 1, opts.budget);
    return f ? this.result(text, true, f, opts) : null;
  }

  /**
   * sam's forward search from p (an address /re/): the first match starting
   * at or after p, or failing that, wrapping around, the first one starting
   * before p (it may straddle p). As in sam no match starts at the very end.
   */
  search(text: string, p: number, opts: SearchOptions = {}): Match | null {
    const len = text.length;
    const last = len > 0 && text.charCodeAt(len - 1) !== 10 ? len : len - 1;
    return (p <= last ? this.match(text, p, len, { ...opts, maxStart: last }) : null) ??
      (p > 0 ? this.match(text, 0, len, { ...opts, maxStart: Math.min(p - 1, last) }) : null);
  }

  /**
   * sam's backward search from p (an address ?re?): the match ending nearest
   * before p, or failing that, wrapping around, the last one ending after p.
   * As in sam no match ends at the very beginning.
   */
  searchBackward(text: string, p: number, opts: SearchOptions = {}): Match | null {
    const len = text.length;
    return (p > 0 ? this.matchBackward(text, 0, p, { ...opts, minEnd: 1 }) : null) ??
      (p < len ? this.matchBackward(text, 0, len, { ...opts, minEnd: p + 1 }) : null);
  }
}

/** sam's rule for the last position a search over [from, to] may start at. */
function defaultMaxStart(text: string, from: number, to: number): number {
  const len = text.length;
  if (from === to) return to;
  if (to === len && len > 0 && text.charCodeAt(len - 1) !== 10) return to;
  return to - 1;
}

/** Compile a regexp(7) pattern; throws RegexError naming the problem. */
export function compileRegex(source: string): Regex {
  return new Regex(source);
}

/**
 * A pattern matching s literally: metacharacters are escaped and newlines
 * written \n. In an edit command the delimiter must be escaped as well.
 */
export function quoteRegex(s: string): string {
  let out = "";
  for (const ch of s) out += ch === "\n" ? "\\n" : META.includes(ch) ? "\\" + ch : ch;
  return out;
}
