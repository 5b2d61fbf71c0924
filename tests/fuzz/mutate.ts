// A seeded, coverage-agnostic mutator: the same seed gives the same inputs, so a failure
// printed with its seed can be replayed (VALE_FUZZ_SEED).

/** mulberry32: small, fast, good enough to pick mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** A uint32. */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  /** One element of `a`. */
  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)];
  }
}

/** Values that break length checks: zero, one, sign bits, all ones, powers of two and neighbours. */
export const BOUNDARY_U32 = [
  0,
  1,
  2,
  3,
  4,
  7,
  8,
  11,
  12,
  16,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  0x10000,
  0x10001,
  0x3ffffff,
  0x4000000, // 64 MiB: MAX_RECORD_LEN
  0x4000001,
  0x7ffffffc,
  0x7fffffff,
  0x80000000,
  0xfffffffc,
  0xffffffff,
];

/** Write `v` as a u16 or u32 at `at`, either byte order. */
function putInt(b: Uint8Array, at: number, v: number, size: 2 | 4, le: boolean): void {
  for (let i = 0; i < size; i++) {
    const shift = 8 * (le ? i : size - 1 - i);
    b[at + i] = (v >>> shift) & 0xff;
  }
}

/** One random mutation of `b` (a new array; `b` is not changed). `other` is for splicing. */
export function mutateBytes(
  rng: Rng,
  b: Uint8Array,
  other: Uint8Array,
  maxLen: number,
): Uint8Array {
  const n = b.length;
  switch (rng.below(9)) {
    case 0: { // bit flips
      const c = b.slice();
      for (let k = 1 + rng.below(4); k > 0 && n; k--) c[rng.below(n)] ^= 1 << rng.below(8);
      return c;
    }
    case 1: { // random bytes
      const c = b.slice();
      for (let k = 1 + rng.below(4); k > 0 && n; k--) c[rng.below(n)] = rng.below(256);
      return c;
    }
    case 2: { // insert bytes
      const at = rng.below(n + 1), k = 1 + rng.below(16);
      const c = new Uint8Array(n + k);
      c.set(b.subarray(0, at));
      for (let i = 0; i < k; i++) c[at + i] = rng.below(256);
      c.set(b.subarray(at), at + k);
      return c.subarray(0, maxLen);
    }
    case 3: { // delete bytes
      if (!n) return b;
      const at = rng.below(n), k = 1 + rng.below(Math.min(16, n - at));
      const c = new Uint8Array(n - k);
      c.set(b.subarray(0, at));
      c.set(b.subarray(at + k), at);
      return c;
    }
    case 4: { // splice: a head of this input, a tail of another
      const head = rng.below(n + 1), from = rng.below(other.length + 1);
      const tail = other.subarray(from, from + Math.max(0, maxLen - head));
      const c = new Uint8Array(head + tail.length);
      c.set(b.subarray(0, head));
      c.set(tail, head);
      return c;
    }
    case 5: // truncate
      return b.subarray(0, rng.below(n + 1));
    case 6: { // duplicate a chunk (repeated records, nested blocks)
      if (!n) return b;
      const at = rng.below(n), k = 1 + rng.below(Math.min(256, n - at));
      const c = new Uint8Array(Math.min(maxLen, n + k));
      c.set(b.subarray(0, at + k));
      c.set(b.subarray(at, n).subarray(0, c.length - at - k), at + k);
      return c;
    }
    default: { // a boundary integer in a length-ish field, usually 4-aligned
      if (n < 4) return b;
      const c = b.slice();
      const size = rng.below(3) ? 4 : 2;
      let at = rng.below(n - size + 1);
      if (rng.below(4)) at &= ~3;
      let v = rng.pick(BOUNDARY_U32);
      if (rng.below(4) === 0) v = (v + n + rng.below(3) - 1) >>> 0; // about the input's length
      putInt(c, at, size === 2 ? v & 0xffff : v, size, rng.below(2) === 0);
      return c;
    }
  }
}

/** The input as hex, 32 bytes a line, for a failure report. */
export function hex(b: Uint8Array): string {
  const lines: string[] = [];
  for (let o = 0; o < b.length; o += 32) {
    lines.push(
      [...b.subarray(o, o + 32)].map((x) => x.toString(16).padStart(2, "0")).join(""),
    );
  }
  return lines.join("\n");
}
