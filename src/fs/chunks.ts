// An append-friendly byte store: a list of chunks with their start offsets.
// Appends never copy existing text; a read at any offset is a binary search
// plus at most a few subarray views.

export class ChunkStore {
  private chunks: Buffer[] = [];
  private starts: number[] = [];
  private _size = 0;
  /** Small appends are coalesced into a tail buffer to keep the chunk list short. */
  private tail: Buffer | null = null;
  private tailLen = 0;
  private static readonly TAIL = 64 * 1024;

  get size() { return this._size; }

  append(data: Buffer | string) {
    const b = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (b.length === 0) return;
    if (b.length >= ChunkStore.TAIL / 2) {
      this.sealTail();
      this.push(Buffer.from(b)); // own a copy: callers may reuse their buffer
    } else {
      if (!this.tail || this.tailLen + b.length > this.tail.length) {
        this.sealTail();
        this.tail = Buffer.allocUnsafe(ChunkStore.TAIL);
        this.tailLen = 0;
        this.push(this.tail.subarray(0, 0));
      }
      b.copy(this.tail, this.tailLen);
      this.tailLen += b.length;
      this.chunks[this.chunks.length - 1] = this.tail.subarray(0, this.tailLen);
    }
    this._size += b.length;
  }

  private push(b: Buffer) { this.starts.push(this._size); this.chunks.push(b); }
  private sealTail() { this.tail = null; this.tailLen = 0; }

  /** Up to `count` bytes from `offset`; a view when it lies in one chunk. */
  read(offset: number, count: number): Buffer {
    if (offset >= this._size || count <= 0) return Buffer.alloc(0);
    const end = Math.min(this._size, offset + count);
    let lo = 0, hi = this.starts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (this.starts[mid] <= offset) lo = mid; else hi = mid - 1; }
    const first = this.chunks[lo], fs = this.starts[lo];
    if (end <= fs + first.length) return first.subarray(offset - fs, end - fs);
    const parts: Buffer[] = [];
    let i = lo, pos = offset;
    while (pos < end) {
      const c = this.chunks[i], s = this.starts[i];
      parts.push(c.subarray(pos - s, Math.min(c.length, end - s)));
      pos = s + c.length; i++;
    }
    return Buffer.concat(parts, end - offset);
  }

  toString() { return this.read(0, this._size).toString("utf8"); }
}
