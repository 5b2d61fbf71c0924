// Capture files the pcap tests build, shared with the fuzzer (tests/fuzz/) as its seed corpus.
import { encodePcap } from "../../lib/formats/pcap.ts";
import { buildUdpFrame } from "../../lib/tools/packet.ts";

export const LENS = [60, 100, 1514];
/** byte offsets of the three records of sample(): header is 24 bytes */
export const OFF = [24, 24 + 16 + 60, 24 + 16 + 60 + 16 + 100];
export const END = OFF[2] + 16 + 1514;

export function frames(): Uint8Array[] {
  return LENS.map((length, i) => buildUdpFrame({ length, srcPort: 1000 + i }));
}

export function sample(
  opts: { nanosecond?: boolean; bigEndian?: boolean; snaplen?: number } = {},
): Uint8Array {
  return encodePcap(
    frames().map((data, i) => ({ data, ts: { sec: 1_700_000_000 + i, nsec: 123_456_789 + i } })),
    opts,
  );
}

export function ngBlock(type: number, body: Uint8Array, le: boolean): Uint8Array {
  const padded = (body.length + 3) & ~3;
  const total = 12 + padded;
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, le);
  dv.setUint32(4, total, le);
  b.set(body, 8);
  dv.setUint32(total - 4, total, le);
  return b;
}

export function bytesOf(le: boolean, ...fields: [number, 1 | 2 | 4][]): Uint8Array {
  const n = fields.reduce((a, [, s]) => a + s, 0);
  const b = new Uint8Array(n);
  const dv = new DataView(b.buffer);
  let o = 0;
  for (const [v, s] of fields) {
    if (s === 1) dv.setUint8(o, v);
    else if (s === 2) dv.setUint16(o, v, le);
    else dv.setUint32(o, v, le);
    o += s;
  }
  return b;
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function samplePcapng(le: boolean): Uint8Array {
  const f = frames();
  const shb = ngBlock(
    0x0a0d0d0a,
    bytesOf(le, [0x1a2b3c4d, 4], [1, 2], [0, 2], [0xffffffff, 4], [0xffffffff, 4]),
    le,
  );
  // interface 0: ethernet, tsresol 10^-9; interface 1: ethernet, default µs
  const idb0 = ngBlock(
    1,
    bytesOf(le, [1, 2], [0, 2], [0, 4], [9, 2], [1, 2], [9, 1], [0, 1], [0, 1], [0, 1], [0, 2], [
      0,
      2,
    ]),
    le,
  );
  const idb1 = ngBlock(1, bytesOf(le, [1, 2], [0, 2], [65535, 4]), le);
  const ts = 1_700_000_000n * 1_000_000_000n + 42n;
  const epb0 = ngBlock(
    6,
    cat(
      bytesOf(le, [0, 4], [Number(ts >> 32n), 4], [Number(ts & 0xffffffffn), 4], [60, 4], [60, 4]),
      f[0],
    ),
    le,
  );
  const isb = ngBlock(5, bytesOf(le, [0, 4], [0, 4], [0, 4]), le); // skipped
  const tsUs = 1_700_000_001n * 1_000_000n + 7n;
  const epb1 = ngBlock(
    6,
    cat(
      bytesOf(le, [1, 4], [Number(tsUs >> 32n), 4], [Number(tsUs & 0xffffffffn), 4], [99, 4], [
        100,
        4,
      ]),
      f[1].subarray(0, 99),
    ),
    le,
  );
  const spb = ngBlock(3, cat(bytesOf(le, [1514, 4]), f[2]), le);
  return cat(shb, idb0, idb1, epb0, isb, epb1, spb);
}
