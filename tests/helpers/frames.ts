// Deterministic test frames that a receiver can verify byte for byte.
// Layout: dst(6) src(6) ethertype 0x88b5 | seq u32 | sender u32 | len u32 | payload
// where payload byte i = (seq * 31 + sender * 7 + i) & 0xff.

export const ETHERTYPE_TEST = 0x88b5;

export function mac(last: number, first = 0x02): Uint8Array {
  return new Uint8Array([first, 0, 0, 0, (last >> 8) & 0xff, last & 0xff]);
}
export const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function macStr(m: Uint8Array): string {
  return [...m].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

export function makeFrame(
  dst: Uint8Array,
  src: Uint8Array,
  seq: number,
  sender: number,
  len: number,
): Uint8Array {
  if (len < 26) throw new RangeError("test frames are at least 26 bytes");
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, ETHERTYPE_TEST);
  dv.setUint32(14, seq);
  dv.setUint32(18, sender);
  dv.setUint32(22, len);
  const base = (seq * 31 + sender * 7) & 0xff;
  for (let i = 26; i < len; i++) f[i] = (base + i) & 0xff;
  return f;
}

/** Checks a received test frame; returns its (sender, seq) or an error string. */
export function checkFrame(f: Uint8Array): { sender: number; seq: number } | string {
  if (f.length < 26) return `short frame (${f.length} bytes)`;
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (dv.getUint16(12) !== ETHERTYPE_TEST) return "not a test frame";
  const seq = dv.getUint32(14), sender = dv.getUint32(18), len = dv.getUint32(22);
  if (len !== f.length) return `length ${f.length}, header says ${len}`;
  const base = (seq * 31 + sender * 7) & 0xff;
  for (let i = 26; i < len; i++) {
    if (f[i] !== ((base + i) & 0xff)) return `byte ${i} of seq ${seq} from ${sender} differs`;
  }
  return { sender, seq };
}

/** Small deterministic PRNG (mulberry32) so runs are reproducible from a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
