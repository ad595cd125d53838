// Text held in memory: bytes in a list of pieces with prefix offsets (a
// window's body, an append-only log).
// Appends never copy existing text; reads at any offset are a binary search;
// a batch of sorted changes is applied in one pass over the pieces, so an
// edit touching a million places costs one walk of the text, not a million.

/** Replace [q0, q1) with text (a string is UTF-8 encoded). */
export interface Change { q0: number; q1: number; text: Buffer | string }

/** Bytes a change inserts. */
export function changeLen(c: Change): number {
  return typeof c.text === "string" ? Buffer.byteLength(c.text, "utf8") : c.text.length;
}

const TAIL = 64 * 1024;
const MAX_PIECES = 4096;
/** Batches up to this many changes are spliced into the piece list; larger ones rebuild the text. */
const SPLICE_MAX = 64;

export class Text {
  private pieces: Buffer[] = [];
  private starts: number[] = [];
  private _size = 0;
  private tail: Buffer | null = null;
  private tailLen = 0;
  /** True while every byte is ASCII (then byte and character offsets agree). */
  private _ascii = true;

  get size() { return this._size; }
  get ascii() { return this._ascii; }

  append(text: Buffer | string) {
    const data = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    if (data.length === 0) return;
    if (this._ascii && !isAscii(data)) this._ascii = false;
    if (data.length >= TAIL / 2) {
      this.tail = null;
      this.pushPiece(Buffer.from(data));
    } else {
      if (!this.tail || this.tailLen + data.length > this.tail.length) {
        this.tail = Buffer.allocUnsafe(TAIL);
        this.tailLen = 0;
        this.pushPiece(this.tail.subarray(0, 0));
      }
      data.copy(this.tail, this.tailLen);
      this.tailLen += data.length;
      this.pieces[this.pieces.length - 1] = this.tail.subarray(0, this.tailLen);
    }
    this._size += data.length;
  }

  private pushPiece(b: Buffer) { this.starts.push(this._size); this.pieces.push(b); }

  private find(offset: number) {
    let lo = 0, hi = this.starts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (this.starts[mid] <= offset) lo = mid; else hi = mid - 1; }
    return lo;
  }

  read(offset: number, count: number): Buffer {
    if (offset >= this._size || count <= 0) return Buffer.alloc(0);
    const end = Math.min(this._size, offset + count);
    let i = this.find(offset);
    const first = this.pieces[i], s0 = this.starts[i];
    if (end <= s0 + first.length) return first.subarray(offset - s0, end - s0);
    const parts: Buffer[] = [];
    let pos = offset;
    while (pos < end) {
      const p = this.pieces[i], s = this.starts[i];
      parts.push(p.subarray(pos - s, Math.min(p.length, end - s)));
      pos = s + p.length; i++;
    }
    return Buffer.concat(parts, end - offset);
  }

  toBuffer(): Buffer { return this.read(0, this._size); }
  toString(): string { return this.toBuffer().toString("utf8"); }

  /**
   * Apply changes given against the current text, sorted by q0 and not
   * overlapping (the caller checks). A few changes splice pieces; many are
   * applied by writing the new text once into one buffer, so a million-change
   * edit costs one pass and one allocation rather than a million.
   */
  applyBatch(changes: Change[]) {
    if (changes.length === 0) return;
    for (const c of changes) {
      if (this._ascii && (typeof c.text === "string" ? !isAsciiStr(c.text) : !isAscii(c.text))) this._ascii = false;
    }
    if (changes.length > SPLICE_MAX) { this.rebuild(changes); return; }
    const out: Buffer[] = [];
    let pos = 0;
    for (const c of changes) {
      if (c.q0 > pos) this.collect(pos, c.q0, out);
      const b = typeof c.text === "string" ? Buffer.from(c.text, "utf8") : Buffer.from(c.text);
      if (b.length) out.push(b);
      pos = c.q1;
    }
    if (pos < this._size) this.collect(pos, this._size, out);
    this.reset();
    for (const b of out) if (b.length) { this.pushPiece(b); this._size += b.length; }
    if (this.pieces.length > MAX_PIECES) this.rebuild([]);
  }

  private reset() { this.tail = null; this.pieces = []; this.starts = []; this._size = 0; }

  /** Write the whole new text into one buffer. */
  private rebuild(changes: Change[]) {
    let total = this._size;
    for (const c of changes) total += changeLen(c) - (c.q1 - c.q0);
    const buf = Buffer.allocUnsafe(total);
    let off = 0, pos = 0, pi = 0;
    const copy = (to: number) => {
      // Copy [pos, to) of the old text, walking the pieces in order.
      while (pos < to) {
        while (this.starts[pi] + this.pieces[pi].length <= pos) pi++;
        const p = this.pieces[pi], s = this.starts[pi];
        const n = Math.min(p.length, to - s) - (pos - s);
        p.copy(buf, off, pos - s, pos - s + n);
        off += n; pos += n;
      }
    };
    for (const c of changes) {
      copy(c.q0);
      off += typeof c.text === "string" ? buf.write(c.text, off, "utf8") : (c.text.copy(buf, off), c.text.length);
      pos = c.q1;
    }
    copy(this._size);
    this.reset();
    if (total) { this.pushPiece(buf); this._size = total; }
  }

  /** Views of [from, to) appended to out, without copying. */
  private collect(from: number, to: number, out: Buffer[]) {
    let i = this.find(from), pos = from;
    while (pos < to) {
      const p = this.pieces[i], s = this.starts[i];
      out.push(p.subarray(pos - s, Math.min(p.length, to - s)));
      pos = s + p.length; i++;
    }
  }
}

function isAsciiStr(s: string) {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function isAscii(b: Buffer) {
  for (let i = 0; i < b.length; i++) if (b[i] > 0x7f) return false;
  return true;
}

/**
 * Converts between byte offsets into UTF-8 text and UTF-16 offsets into the
 * same text as a JS string (what the edit engine works on).
 */
export class OffsetMap {
  private constructor(private readonly str: string, private readonly ascii: boolean) {}
  /** Offsets are the same in both (ASCII text). */
  get identity() { return this.ascii; }
  static of(str: string, ascii: boolean) { return new OffsetMap(str, ascii); }
  /** Cumulative byte offsets at every 1024th UTF-16 unit, built lazily. */
  private marks: number[] | null = null;
  private build() {
    const m: number[] = [0];
    let bytes = 0;
    for (let i = 0; i < this.str.length; i++) {
      bytes += unitBytes(this.str, i);
      if ((i + 1) % 1024 === 0) m.push(bytes);
    }
    this.marks = m;
  }
  toByte(u: number): number {
    if (this.ascii) return u;
    if (!this.marks) this.build();
    const k = Math.floor(u / 1024);
    let b = this.marks![k];
    for (let i = k * 1024; i < u; i++) b += unitBytes(this.str, i);
    return b;
  }
  toUnit(byte: number): number {
    if (this.ascii) return byte;
    if (!this.marks) this.build();
    const m = this.marks!;
    let lo = 0, hi = m.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (m[mid] <= byte) lo = mid; else hi = mid - 1; }
    let u = lo * 1024, b = m[lo];
    while (u < this.str.length && b < byte) { b += unitBytes(this.str, u); u++; }
    // A low surrogate has no bytes of its own: the offset lies after the whole pair.
    while (u < this.str.length && unitBytes(this.str, u) === 0) u++;
    return u;
  }
}

function unitBytes(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c <= 0xdbff) return 4; // high surrogate carries the 4 bytes
  if (c >= 0xdc00 && c <= 0xdfff) return 0; // low surrogate: counted with its pair
  return 3;
}
