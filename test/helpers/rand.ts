// A small seeded PRNG for tests that must reproduce (fuzzing, generated
// round trips). The seed comes from PI9_SEED when set, so a failing run can
// be replayed exactly.

export class Rng {
  private s: number;
  constructor(readonly seed: number) { this.s = seed >>> 0 || 0x9e3779b9; }
  /** mulberry32: a uniform 32-bit value. */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Integer in [0, n). */
  int(n: number): number { return n <= 1 ? 0 : this.u32() % n; }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  bool(p = 0.5): boolean { return this.u32() / 0x100000000 < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** A 64-bit value that a JS number carries exactly (below 2^53), biased to edges. */
  u64(): number {
    switch (this.int(6)) {
      case 0: return 0;
      case 1: return Number.MAX_SAFE_INTEGER;
      case 2: return this.u32();
      case 3: return 0x100000000 + this.u32();
      default: return this.u32() * 0x200000 + (this.u32() & 0x1fffff);
    }
  }
  /** A string with ASCII, multi-byte UTF-8 and astral characters. */
  str(max = 12): string {
    const alphabet = ["a", "z", "0", " ", "/", ".", "é", "ß", "→", "世", "界", "😀", "\n", "\\", "\u0000"];
    let s = "";
    const n = this.int(max + 1);
    for (let i = 0; i < n; i++) s += this.pick(alphabet);
    return s;
  }
}

export function seedFromEnv(): number {
  const e = process.env.PI9_SEED;
  if (e && /^\d+$/.test(e)) return Number(e) >>> 0;
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
