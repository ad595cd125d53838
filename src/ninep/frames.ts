// Splitting a byte stream into 9P frames (size[4] first), shared by the
// server and the client. Whole frames that arrived in one chunk are views of
// it; only a frame spread over chunks is copied once.

export class FrameError extends Error {}

export class FrameBuffer {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(b: Buffer) {
    if (this.buffered === 0) this.chunks = [b]; else this.chunks.push(b);
    this.buffered += b.length;
  }

  /**
   * The next whole frame, or null while more bytes are needed. Throws
   * FrameError when a size field is outside 7..limit (the stream cannot be
   * resynchronised after that: close the connection).
   */
  next(limit: number): Buffer | null {
    if (this.buffered < 4) return null;
    let head = this.chunks[0];
    if (head.length < 4) { head = Buffer.concat(this.chunks); this.chunks = [head]; }
    const size = head.readUInt32LE(0);
    if (size < 7 || size > limit) throw new FrameError(`frame of ${size} bytes is outside 7..${limit}`);
    if (this.buffered < size) return null;
    let frame: Buffer;
    if (head.length >= size) {
      frame = head.subarray(0, size);
      if (head.length === size) this.chunks.shift(); else this.chunks[0] = head.subarray(size);
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      frame = all.subarray(0, size);
      this.chunks = all.length > size ? [all.subarray(size)] : [];
    }
    this.buffered -= size;
    return frame;
  }

  clear() { this.chunks = []; this.buffered = 0; }
}
