// What is fuzzed and which properties must hold. A check throws (anything) when a property
// fails; the runner reports the input, the seed and the error.
import assert from "node:assert/strict";
import { formatPortName, isSwitchName, parsePortName, PortNameError } from "../../lib/names.ts";
import {
  encodePcap,
  MAX_RECORD_LEN,
  PcapError,
  PcapParser,
  PcapReader,
  type PcapReadResult,
  type PcapRecord,
  readPcap,
} from "../../lib/formats/pcap.ts";
import { INVALID, VALID } from "../helpers/names_table.ts";
import { sample, samplePcapng } from "../helpers/pcap_samples.ts";
import { mutateBytes, type Rng } from "./mutate.ts";

/** A fuzz target. */
export interface Target {
  name: string;
  /** Longest input generated. */
  maxLen: number;
  /** The valid (and interesting invalid) inputs mutation starts from. */
  seeds(): Uint8Array[];
  /** One mutation of `input` (`other`: another corpus entry, for splicing). */
  mutate(rng: Rng, input: Uint8Array, other: Uint8Array): Uint8Array;
  /** Throws when a property does not hold for `input`. */
  check(input: Uint8Array): void;
}

const enc = new TextEncoder();
const dec = new TextDecoder(); // lossy: invalid UTF-8 becomes U+FFFD, still a string to parse

// ---------------------------------------------------------------------------
// port names

/** Pieces of the grammar, spliced in whole: mutation of single bytes rarely builds them. */
const NAME_TOKENS = [
  "vale",
  "vale0:",
  "vale-",
  "vale-a:",
  "/rt",
  "netmap:",
  "xdp:",
  "packet:",
  "tap:",
  "memif:",
  "pcap:",
  "@conf:",
  "@share=",
  "rings=",
  "tx-rings=",
  "host-rings=",
  "slots=",
  "rx-slots=",
  "#id=",
  ",role=server",
  ",secret=",
  "buffer-size=",
  "#mode=append",
  ",loop=0",
  ",snaplen=",
  "{",
  "}",
  "^",
  "*",
  "-",
  "/",
  "@",
  ":",
  "#",
  "=",
  ",",
  "/xztrRT",
  "0",
  "4094",
  "4095",
  "4096",
  "4097",
  "65535",
  "65536",
  "99999999999999999999",
  "-1",
  "0x10",
  "1e3",
  " ",
  "\u0000",
  "\t",
  "\u00e9",
  "\u{1F600}",
  "\ud800",
  "a".repeat(16),
  "a".repeat(64),
];

const names: Target = {
  name: "port names",
  maxLen: 512,
  seeds: () =>
    [...VALID.map((v) => v.input), ...INVALID.map((v) => v.input)].map((s) => enc.encode(s)),
  mutate(rng, input, other) {
    if (rng.below(3) === 0) {
      // a grammar token inserted or substituted at a random place
      const s = dec.decode(input), at = rng.below(s.length + 1);
      const cut = rng.below(2) ? rng.below(4) : 0;
      return enc.encode(s.slice(0, at) + rng.pick(NAME_TOKENS) + s.slice(at + cut)).subarray(
        0,
        512,
      );
    }
    return mutateBytes(rng, input, other, 512);
  },
  check(input) {
    const s = dec.decode(input);
    let spec;
    try {
      spec = parsePortName(s);
    } catch (e) {
      // the only documented failure, with the promised shape
      if (!(e instanceof PortNameError)) throw e;
      assert.equal(e.input, s);
      assert.ok(e.message.startsWith("invalid port name '"), e.message);
      assert.ok(e.message.endsWith(e.reason), e.message);
      for (const ch of e.message) {
        const cp = ch.codePointAt(0)!;
        assert.ok(cp >= 0x20 && !(cp >= 0x7f && cp < 0xa0), `raw control code in ${e.message}`);
      }
      if (e.position !== undefined) assert.ok(e.position >= 0 && e.position <= s.length);
      return;
    }
    // formatPortName's promise: parse(format(spec)) equals spec, and the canonical form is a
    // fixed point; the identity `name` is itself a valid name of the same port
    const canonical = formatPortName(spec);
    let again;
    try {
      again = parsePortName(canonical);
    } catch (e) {
      throw new Error(`canonical form ${JSON.stringify(canonical)} does not parse: ${e}`);
    }
    assert.deepStrictEqual(again, spec, `round trip through ${JSON.stringify(canonical)}`);
    assert.equal(formatPortName(again), canonical);
    assert.equal(parsePortName(spec.name).name, spec.name);
    // the switch of any parsed name is one that listings and vale-ctl take as a switch
    if (spec.kind === "vale") assert.ok(isSwitchName(spec.switchName!), spec.switchName);
  },
};

// ---------------------------------------------------------------------------
// pcap readers

/** The readers must agree: same records (bytes, lengths, times), same error kind and offset. */
function same(a: PcapReadResult, b: PcapReadResult, how: string): void {
  assert.equal(b.records.length, a.records.length, `${how}: record count`);
  for (let i = 0; i < a.records.length; i++) {
    const x = a.records[i], y = b.records[i];
    assert.deepEqual(
      [y.offset, y.capLen, y.origLen, y.tsSec, y.tsNsec, y.linkType, y.interfaceId],
      [x.offset, x.capLen, x.origLen, x.tsSec, x.tsNsec, x.linkType, x.interfaceId],
      `${how}: record ${i}`,
    );
    assert.deepEqual(y.data, x.data, `${how}: record ${i} data`);
  }
  assert.equal(b.error?.kind, a.error?.kind, `${how}: error kind`);
  assert.equal(b.error?.offset, a.error?.offset, `${how}: error offset`);
}

/** Only PcapError may come out of a reader. */
function only<T>(f: () => T): T | PcapError {
  try {
    return f();
  } catch (e) {
    if (e instanceof PcapError) return e;
    throw e;
  }
}

function recordSane(r: PcapRecord, size: number, maxLen: number): void {
  assert.equal(r.data.length, r.capLen);
  assert.ok(r.capLen <= r.origLen, "capLen <= origLen");
  assert.ok(r.capLen <= maxLen, "capLen <= maxRecordLen");
  assert.ok(r.offset >= 0 && r.offset + r.capLen <= size, "record inside the file");
  assert.ok(Number.isInteger(r.tsNsec) && r.tsNsec >= 0 && r.tsNsec < 1e9, `tsNsec ${r.tsNsec}`);
  assert.ok(Number.isFinite(r.tsSec), `tsSec ${r.tsSec}`);
}

/** Chunk sizes for the stream reader, fixed per input so a failure replays. */
const CHUNKS = [1, 3, 7, 16, 64, 1000];

const pcap: Target = {
  name: "pcap readers",
  maxLen: 16384,
  seeds() {
    const small = sample().subarray(0, 24 + 16 + 60 + 16 + 100); // two records
    return [
      sample(),
      sample({ nanosecond: true, bigEndian: true }),
      sample({ snaplen: 100 }),
      small,
      samplePcapng(true),
      samplePcapng(false),
    ];
  },
  mutate: (rng, input, other) => mutateBytes(rng, input, other, 16384),
  check(input) {
    // readPcap never throws
    const whole = readPcap(input);
    for (const r of whole.records) recordSane(r, input.length, MAX_RECORD_LEN);
    assert.ok(whole.error === null || whole.error instanceof PcapError);
    // a small limit: nothing longer gets through, and what does is the same as without it
    const lim = readPcap(input, { maxRecordLen: 64 });
    for (const r of lim.records) recordSane(r, input.length, 64);
    for (let i = 0; i < lim.records.length; i++) {
      assert.deepEqual(lim.records[i].data, whole.records[i].data, "maxRecordLen: same records");
    }
    // the sync reader: constructor and iteration throw PcapError only, and agree
    const reader = only(() => new PcapReader(input));
    if (reader instanceof PcapReader) {
      const records: PcapRecord[] = [];
      const err = only(() => {
        for (const r of reader) records.push(r);
      });
      same(whole, { header: reader.header, records, error: err ?? null }, "PcapReader");
    } else {
      assert.equal(whole.records.length, 0, "constructor failed but records were read");
    }
    // the incremental parser, in chunks
    const size = CHUNKS[input.length % CHUNKS.length];
    const p = new PcapParser({ copy: true });
    const records: PcapRecord[] = [];
    const err = only(() => {
      for (let o = 0; o < input.length; o += size) {
        for (const r of p.feed(input.subarray(o, o + size))) records.push(r);
      }
      p.finish();
    });
    same(whole, { header: p.header, records, error: err ?? null }, `chunks of ${size}`);
    // write what was read and read it back: a classic pcap's records survive the round trip
    const h = whole.header;
    if (h?.format === "pcap" && h.snaplen >= 1 && h.snaplen <= 0x7fffffff && whole.records.length) {
      const again = readPcap(
        encodePcap(
          whole.records.map((r) => ({
            data: r.data,
            origLen: r.origLen,
            ts: { sec: r.tsSec, nsec: r.tsNsec },
          })),
          {
            snaplen: h.snaplen,
            nanosecond: h.nanosecond,
            bigEndian: !h.littleEndian,
            linkType: h.linkType,
          },
        ),
      );
      assert.equal(again.error, null, `round trip: ${again.error?.message}`);
      assert.equal(again.records.length, whole.records.length);
      again.records.forEach((r, i) => {
        const o = whole.records[i];
        assert.deepEqual([r.tsSec, r.tsNsec, r.origLen, r.data], [
          o.tsSec,
          o.tsNsec,
          o.origLen,
          o.data,
        ]);
      });
    }
  },
};

/** Every target, by name. */
export const TARGETS: Record<string, Target> = { names, pcap };
