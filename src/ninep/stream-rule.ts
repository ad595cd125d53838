// When a Tread on a stream fid is answered with 0 at once: a fact about 9P
// clients, so it lives here and not in the file tree (DESIGN.md 2.2).
//
// The Linux kernel client keeps issuing Treads inside one read(2) until its
// buffer is full or a Tread returns 0, while plan9port, 9pfuse, diod's tools
// and pi9's own client take any 0 as end of file. So after a reply of
// 0 < n < count bytes, the next Tread on the same fid is answered with 0 at
// once when it continues that read (offset = previous offset + n and a
// smaller count), or when it repeats a count of msize-24 on a connection
// with msize > 8216 (a kernel reader with a buffer of at least msize); every
// other read goes to the file, which blocks until a whole line is ready.
// Never a 0 after a reply that filled the count: Linux sends no follow-up.

import { IOHDRSZ } from "./constants.js";

/** The largest msize of the clients that send one Tread per read(2) (plan9port's 8192 + IOHDRSZ). */
const ONE_TREAD_MSIZE = 8216;

/** The read history of one stream fid. */
export class StreamReadRule {
  private last: { offset: number; count: number; n: number } | null = null;

  /** True when this Tread (count already clamped to msize-IOHDRSZ) continues the previous read: answer 0 now. */
  continues(offset: number, count: number, msize: number): boolean {
    const l = this.last;
    if (!l || l.n <= 0 || l.n >= l.count) return false;
    const follows = offset === l.offset + l.n && count < l.count;
    const kernelFull = count === l.count && count === msize - IOHDRSZ && msize > ONE_TREAD_MSIZE;
    return follows || kernelFull;
  }

  /** A reply of n bytes went out for this Tread. */
  answered(offset: number, count: number, n: number) { this.last = { offset, count, n }; }

  /** The read failed or was flushed: the next one starts afresh. */
  forget() { this.last = null; }
}
