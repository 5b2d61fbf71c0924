import assert from "node:assert/strict";
import {
  encodePcap,
  encodePcapHeader,
  LINKTYPE_ETHERNET,
  openPcap,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_US,
  PcapError,
  type PcapErrorKind,
  PcapParser,
  PcapReader,
  type PcapRecord,
  PcapWriter,
  readPcap,
  readPcapFile,
  readPcapFileSync,
  readPcapStream,
} from "../lib/formats/pcap.ts";
import {
  advanceFrame,
  buildUdpFrame,
  encodePing,
  makeCycle,
  parseIPv4,
  parseUDP,
  swapForPong,
} from "../lib/tools/packet.ts";
import { END, frames, LENS, OFF, sample, samplePcapng } from "./helpers/pcap_samples.ts";

// ---------------------------------------------------------------------------
// helpers (the sample files live in helpers/pcap_samples.ts, shared with tests/fuzz/)

function chunks(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= bytes.length) return c.close();
      c.enqueue(bytes.slice(o, o + size));
      o += size;
    },
  });
}

async function collectStream(
  s: AsyncIterable<PcapRecord>,
): Promise<{ records: PcapRecord[]; error: unknown }> {
  const records: PcapRecord[] = [];
  try {
    for await (const r of s) records.push(r);
  } catch (e) {
    return { records, error: e };
  }
  return { records, error: null };
}

function collectSync(it: Iterable<PcapRecord>): { records: PcapRecord[]; error: unknown } {
  const records: PcapRecord[] = [];
  try {
    for (const r of it) records.push(r);
  } catch (e) {
    return { records, error: e };
  }
  return { records, error: null };
}

function patch32(b: Uint8Array, at: number, v: number, le = true): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setUint32(at, v, le);
  return c;
}

async function tmp(suffix = ".pcap"): Promise<string> {
  return await Deno.makeTempFile({ prefix: "vale-pcap-test-", suffix });
}

/** every way of reading must agree: complete records, then the same error */
async function expectDamage(
  bytes: Uint8Array,
  kind: PcapErrorKind,
  offset: number,
  goodRecords: number,
  message?: RegExp,
): Promise<void> {
  const check = (how: string, records: PcapRecord[], error: unknown) => {
    assert.ok(error instanceof PcapError, `${how}: expected PcapError, got ${error}`);
    assert.equal(error.kind, kind, `${how}: ${error.message}`);
    assert.equal(error.offset, offset, `${how}: ${error.message}`);
    assert.equal(error.records, goodRecords, how);
    assert.match(error.message, new RegExp(`byte offset ${offset}\\b`));
    if (message) assert.match(error.message, message);
    assert.equal(records.length, goodRecords, `${how}: records before the damage`);
    const f = frames();
    records.forEach((r, i) => assert.deepEqual(r.data, f[i], `${how}: record ${i} intact`));
  };
  const r = readPcap(bytes);
  check("readPcap", r.records, r.error);
  let reader: PcapReader | null = null;
  try {
    reader = new PcapReader(bytes);
  } catch (e) {
    check("PcapReader constructor", [], e);
  }
  if (reader) {
    const s = collectSync(reader);
    check("PcapReader", s.records, s.error);
  }
  for (const size of [1, 7, 64, 100000]) {
    const a = await collectStream(readPcapStream(chunks(bytes, size)));
    check(`readPcapStream chunk ${size}`, a.records, a.error);
  }
}

// ---------------------------------------------------------------------------

Deno.test("pcap round trip: µs/ns x little/big endian", async (t) => {
  for (const nanosecond of [false, true]) {
    for (const bigEndian of [false, true]) {
      await t.step(`${nanosecond ? "ns" : "µs"} ${bigEndian ? "BE" : "LE"}`, async () => {
        const bytes = sample({ nanosecond, bigEndian });
        assert.equal(bytes.length, END);
        const magic = new DataView(bytes.buffer).getUint32(0, !bigEndian);
        assert.equal(magic, nanosecond ? PCAP_MAGIC_NS : PCAP_MAGIC_US);
        const reader = new PcapReader(bytes);
        assert.deepEqual(reader.header, {
          format: "pcap",
          littleEndian: !bigEndian,
          nanosecond,
          versionMajor: 2,
          versionMinor: 4,
          snaplen: 262144,
          linkType: LINKTYPE_ETHERNET,
          fcsLength: null,
        });
        const recs = [...reader];
        const f = frames();
        assert.equal(recs.length, 3);
        recs.forEach((r, i) => {
          assert.deepEqual(r.data, f[i]);
          assert.equal(r.index, i);
          assert.equal(r.offset, OFF[i]);
          assert.equal(r.capLen, LENS[i]);
          assert.equal(r.origLen, LENS[i]);
          assert.equal(r.tsSec, 1_700_000_000 + i);
          assert.equal(r.tsNsec, nanosecond ? 123_456_789 + i : 123_456_000);
          assert.equal(r.linkType, 1);
        });
        const s = await collectStream(readPcapStream(chunks(bytes, 3)));
        assert.equal(s.error, null);
        assert.deepEqual(s.records, recs);
      });
    }
  }
});

Deno.test("PcapWriter", async (t) => {
  const recs = frames().map((data, i) => ({ data, ts: { sec: 10 + i, nsec: 5000 * i } }));
  const want = encodePcap(recs);

  await t.step("create/write/close a file = encodePcap bytes", async () => {
    const path = await tmp();
    try {
      const w = await PcapWriter.create(path);
      for (const r of recs) await w.write(r.data, { ts: r.ts });
      assert.equal(w.count, 3);
      await w.close();
      await w.close(); // idempotent
      assert.deepEqual(await Deno.readFile(path), want);
      const rr = await readPcapFile(path);
      assert.equal(rr.error, null);
      assert.equal(rr.records.length, 3);
    } finally {
      await Deno.remove(path);
    }
  });

  await t.step("sync file writer, `await using`", async () => {
    const path = await tmp();
    try {
      const w = PcapWriter.createSync(path);
      for (const r of recs) w.writeSync(r.data, { ts: r.ts });
      w.closeSync();
      assert.deepEqual(Deno.readFileSync(path), want);
      {
        await using w2 = await PcapWriter.create(path);
        for (const r of recs) await w2.write(r.data, { ts: r.ts });
      }
      assert.deepEqual(readPcapFileSync(path).records.length, 3);
      assert.deepEqual(Deno.readFileSync(path), want);
    } finally {
      await Deno.remove(path);
    }
  });

  await t.step("WritableStream sink (file.writable)", async () => {
    const path = await tmp();
    try {
      const f = await Deno.open(path, { write: true, create: true, truncate: true });
      const w = new PcapWriter(f.writable);
      for (const r of recs) await w.write(r.data, { ts: r.ts });
      await w.close();
      assert.deepEqual(await Deno.readFile(path), want);
    } finally {
      await Deno.remove(path);
    }
  });

  await t.step("Writer with partial writes, tiny buffer (records larger than it)", async () => {
    const parts: number[] = [];
    const out: number[] = [];
    const sink = {
      write(p: Uint8Array): Promise<number> {
        const n = Math.min(7, p.length);
        parts.push(n);
        out.push(...p.subarray(0, n));
        return Promise.resolve(n);
      },
    };
    const w = new PcapWriter(sink, { bufferSize: 64 });
    for (const r of recs) await w.write(r.data, { ts: r.ts });
    await w.close();
    assert.deepEqual(new Uint8Array(out), want);
    assert.ok(parts.every((n) => n <= 7));
    assert.throws(() => w.writeSync(recs[0].data), /closed/);
  });

  await t.step("writeSync on an async-only sink is refused", () => {
    const w = new PcapWriter({ write: (p) => Promise.resolve(p.length) }, { bufferSize: 64 });
    assert.throws(() => w.writeSync(new Uint8Array(1000)), /writeSync/);
  });

  await t.step("snaplen truncates: caplen = snaplen, origLen = full length", () => {
    const bytes = encodePcap([{ data: recs[2].data, ts: 0 }, recs[0].data], { snaplen: 96 });
    const r = readPcap(bytes);
    assert.equal(r.error, null);
    assert.equal(r.header?.snaplen, 96);
    assert.equal(r.records[0].capLen, 96);
    assert.equal(r.records[0].origLen, 1514);
    assert.deepEqual(r.records[0].data, recs[2].data.subarray(0, 96));
    assert.equal(r.records[1].capLen, 60);
  });

  await t.step("timestamps: Date, ms number, default now; origLen; bad values", () => {
    const before = Math.floor(Date.now() / 1000);
    const bytes = encodePcap([
      { data: recs[0].data, ts: new Date(1_000_123) },
      { data: recs[0].data, ts: 2_000_000.5 },
      { data: recs[0].data, origLen: 9000 },
    ], { nanosecond: true });
    const r = readPcap(bytes).records;
    assert.deepEqual([r[0].tsSec, r[0].tsNsec], [1000, 123_000_000]);
    assert.deepEqual([r[1].tsSec, r[1].tsNsec], [2000, 500_000]);
    assert.ok(r[2].tsSec >= before && r[2].tsSec <= before + 5);
    assert.equal(r[2].origLen, 9000);
    assert.throws(() => encodePcap([{ data: recs[0].data, origLen: 10 }]), RangeError);
    assert.throws(() => encodePcap([{ data: recs[0].data, ts: { sec: -1, nsec: 0 } }]), RangeError);
    assert.throws(() => encodePcapHeader({ snaplen: 0 }), RangeError);
  });
});

Deno.test("damaged files: complete records first, then PcapError with the offset", async (t) => {
  const good = sample();
  await t.step("intact file has no error", async () => {
    const r = readPcap(good);
    assert.equal(r.error, null);
    assert.equal(r.records.length, 3);
    const s = await collectStream(readPcapStream(chunks(good, 1)));
    assert.equal(s.error, null);
  });
  await t.step("empty file", () => expectDamage(new Uint8Array(0), "empty", 0, 0, /empty/));
  await t.step("file header cut", async () => {
    for (const n of [1, 3, 4, 10, 23]) {
      await expectDamage(good.subarray(0, n), "truncated-header", 0, 0, /file header cut/);
    }
  });
  await t.step("bad magic", async () => {
    await expectDamage(
      new TextEncoder().encode("GIF89a" + "x".repeat(40)),
      "bad-magic",
      0,
      0,
      /0x47494638/,
    );
    await expectDamage(patch32(good, 0, 0xa1b2cd34), "bad-magic", 0, 0, /bad magic/);
  });
  await t.step("unsupported version", async () => {
    const b = good.slice();
    b[4] = 3;
    await expectDamage(b, "bad-version", 0, 0, /version 3\.4/);
  });
  await t.step("record header cut", async () => {
    for (const n of [1, 8, 15]) {
      await expectDamage(
        good.subarray(0, OFF[2] + n),
        "truncated-record-header",
        OFF[2],
        2,
        /record header cut/,
      );
    }
    await expectDamage(good.subarray(0, OFF[0] + 5), "truncated-record-header", OFF[0], 0);
  });
  await t.step("record body cut", async () => {
    await expectDamage(
      good.subarray(0, OFF[2] + 16),
      "truncated-record",
      OFF[2],
      2,
      /caplen 1514 but only 0 bytes/,
    );
    await expectDamage(good.subarray(0, END - 1), "truncated-record", OFF[2], 2, /only 1513 bytes/);
    await expectDamage(good.subarray(0, OFF[1] + 16 + 50), "truncated-record", OFF[1], 1);
  });
  await t.step("caplen > snaplen", async () => {
    const b = patch32(good, 16, 200); // header snaplen 200: the 1514-byte record is wrong
    await expectDamage(
      b,
      "caplen-exceeds-snaplen",
      OFF[2],
      2,
      /caplen 1514 exceeds the file's snaplen 200/,
    );
  });
  await t.step("absurd lengths", async () => {
    await expectDamage(
      patch32(good, OFF[1] + 8, 0xffffffff),
      "absurd-length",
      OFF[1],
      1,
      /caplen 4294967295/,
    );
    await expectDamage(
      patch32(good, OFF[1] + 12, 50),
      "absurd-length",
      OFF[1],
      1,
      /caplen 100 > original length 50/,
    );
    await expectDamage(
      patch32(good, OFF[2] + 4, 1_000_000),
      "absurd-length",
      OFF[2],
      2,
      /timestamp fraction/,
    );
  });
  await t.step("big-endian and nanosecond files report the same", async () => {
    await expectDamage(
      sample({ bigEndian: true }).subarray(0, OFF[2] + 3),
      "truncated-record-header",
      OFF[2],
      2,
    );
    await expectDamage(
      sample({ nanosecond: true, bigEndian: true }).subarray(0, END - 10),
      "truncated-record",
      OFF[2],
      2,
    );
  });
  await t.step("a parser that failed keeps failing", () => {
    const p = new PcapParser();
    assert.throws(() => [...p.feed(new Uint8Array([1, 2, 3, 4, 5]))], PcapError);
    assert.throws(() => [...p.feed(good)], PcapError);
    assert.throws(() => p.finish(), PcapError);
  });
});

Deno.test("stream: a 3 MB record in 4 KiB chunks, among small ones", async () => {
  const big = new Uint8Array(3 << 20).map((_, i) => i * 7);
  const small = frames()[0];
  const bytes = encodePcap([small, big, small], { snaplen: 4 << 20 });
  const s = await collectStream(readPcapStream(chunks(bytes, 4096)));
  assert.equal(s.error, null);
  assert.equal(s.records.length, 3);
  assert.deepEqual(s.records[1].data, big);
  assert.deepEqual(s.records[2].data, small);
  const cut = await collectStream(
    readPcapStream(chunks(bytes.subarray(0, bytes.length - 10), 4096)),
  );
  assert.equal(cut.records.length, 2);
  assert.ok(cut.error instanceof PcapError && cut.error.kind === "truncated-record");
});

Deno.test("openPcap streams a file and closes it", async () => {
  const path = await tmp();
  try {
    await Deno.writeFile(path, sample());
    const a = await collectStream(openPcap(path));
    assert.equal(a.error, null);
    assert.equal(a.records.length, 3);
    for await (const _ of openPcap(path)) break; // early exit closes the file too
    await Deno.writeFile(path, sample().subarray(0, END - 1));
    const b = await collectStream(openPcap(path));
    assert.equal(b.records.length, 2);
    assert.ok(b.error instanceof PcapError && b.error.kind === "truncated-record");
  } finally {
    await Deno.remove(path);
  }
});

// ---------------------------------------------------------------------------
// pcapng

Deno.test("pcapng reading (a plus)", async (t) => {
  for (const le of [true, false]) {
    await t.step(
      `hand-built ${le ? "little" : "big"} endian: EPB, SPB, skipped ISB, tsresol`,
      async () => {
        const bytes = samplePcapng(le);
        const reader = new PcapReader(bytes);
        assert.equal(reader.header.format, "pcapng");
        assert.equal(reader.header.littleEndian, le);
        assert.equal(reader.header.linkType, 1);
        assert.equal(reader.header.nanosecond, true);
        const recs = [...reader];
        const f = frames();
        assert.equal(recs.length, 3);
        assert.deepEqual([recs[0].tsSec, recs[0].tsNsec, recs[0].interfaceId], [
          1_700_000_000,
          42,
          0,
        ]);
        assert.deepEqual(recs[0].data, f[0]);
        assert.deepEqual([recs[1].tsSec, recs[1].tsNsec, recs[1].interfaceId], [
          1_700_000_001,
          7000,
          1,
        ]);
        assert.deepEqual([recs[1].capLen, recs[1].origLen], [99, 100]);
        assert.deepEqual(recs[2].data, f[2]);
        assert.equal(recs[2].origLen, 1514);
        const s = await collectStream(readPcapStream(chunks(bytes, 5)));
        assert.equal(s.error, null);
        assert.deepEqual(s.records, recs);
      },
    );
  }
  await t.step("cut and corrupt blocks", () => {
    const bytes = samplePcapng(true);
    const cut = readPcap(bytes.subarray(0, bytes.length - 3));
    assert.equal(cut.records.length, 2);
    assert.ok(cut.error?.kind === "truncated-record");
    const lastOff = bytes.length - (12 + 4 + 1516);
    assert.equal(cut.error?.offset, lastOff);
    const bad = patch32(bytes, lastOff + 4, 13);
    const r = readPcap(bad);
    assert.equal(r.records.length, 2);
    assert.equal(r.error?.kind, "bad-block");
    const mismatch = patch32(bytes, bytes.length - 4, 16);
    assert.equal(readPcap(mismatch).error?.kind, "bad-block");
    assert.match(readPcap(mismatch).error!.message, /not repeated/);
    assert.equal(readPcap(bytes.subarray(0, 20)).error?.kind, "truncated-header");
  });
});

// ---------------------------------------------------------------------------
// interop with tcpdump / tshark

async function have(tool: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(tool, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** Frames exercising everything that touches checksums: ranges, random, ping, pong, odd sizes. */
function interopFrames(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (
    const c of [
      makeCycle("10.0.0.1:1000-10.0.0.3:1002", "10.1.0.250:7-10.1.1.2:9"),
      makeCycle("10.0.0.1", "10.1.0.1:1-10.1.0.1:3", { randomSrc: true, seed: 77 }),
      makeCycle("192.168.1.1", "172.16.0.1", { randomSrc: true, randomDst: true, seed: 1 }),
    ]
  ) {
    const f = buildUdpFrame({
      length: 61,
      srcIp: c.src.start,
      dstIp: c.dst.start,
      srcPort: c.src.port0,
      dstPort: c.dst.port0,
    });
    out.push(f.slice());
    for (let i = 1; i < 40; i++) {
      advanceFrame(f, c, i);
      out.push(f.slice());
    }
  }
  for (const length of [60, 99, 1514, 9000]) {
    const p = buildUdpFrame({ length, srcMac: "02:00:00:00:00:01", dstMac: "02:00:00:00:00:02" });
    encodePing(p, 12345, 1_700_000_000, 999);
    out.push(p.slice());
    out.push(swapForPong(p).slice());
  }
  return out;
}

const hasTcpdump = await have("tcpdump");
const hasTshark = await have("tshark");
if (!hasTcpdump) console.log("pcap_test: tcpdump not installed: interop test skipped");
if (!hasTshark) console.log("pcap_test: tshark not installed: interop tests skipped");

Deno.test({
  name: "interop: tcpdump -nn -r reads our files" +
    (hasTcpdump ? "" : " (skipped: tcpdump not installed)"),
  ignore: !hasTcpdump,
  fn: async () => {
    const f = interopFrames();
    for (
      const opts of [{}, { nanosecond: true }, { bigEndian: true }, {
        nanosecond: true,
        bigEndian: true,
      }]
    ) {
      const path = await tmp();
      try {
        const w = await PcapWriter.create(path, opts);
        for (const x of f) await w.write(x, { ts: { sec: 1_700_000_000, nsec: 1 } });
        await w.close();
        const lines = (await run("tcpdump", ["-nn", "-r", path])).trim().split("\n");
        assert.equal(lines.length, f.length, JSON.stringify(opts));
        assert.match(lines[0], /IP 10\.0\.0\.1\.1000 > 10\.1\.0\.250\.7: UDP, length 19/);
      } finally {
        await Deno.remove(path);
      }
    }
  },
});

Deno.test({
  name: "interop: tshark reads our files, no IP/UDP checksum errors" +
    (hasTshark ? "" : " (skipped: tshark not installed)"),
  ignore: !hasTshark,
  fn: async () => {
    const f = interopFrames();
    for (const opts of [{ snaplen: 65535 }, { nanosecond: true, bigEndian: true }]) {
      const path = await tmp();
      try {
        const w = await PcapWriter.create(path, opts);
        for (const [i, x] of f.entries()) {
          await w.write(x, { ts: { sec: 1_700_000_000 + i, nsec: 0 } });
        }
        await w.close();
        const out = await run("tshark", [
          "-r",
          path,
          "-o",
          "udp.check_checksum:TRUE",
          "-o",
          "ip.check_checksum:TRUE",
          "-T",
          "fields",
          "-e",
          "ip.checksum.status",
          "-e",
          "udp.checksum.status",
          "-e",
          "ip.src",
          "-e",
          "udp.srcport",
          "-e",
          "frame.len",
        ]);
        const rows = out.trim().split("\n").map((l) => l.split("\t"));
        assert.equal(rows.length, f.length);
        rows.forEach((row, i) => {
          // status 1 = Good, 0 = Bad, 2 = Unverified
          assert.deepEqual(row.slice(0, 2), ["1", "1"], `frame ${i + 1}: ${row.join(" ")}`);
          const ip = parseIPv4(f[i]), u = parseUDP(f[i]);
          assert.deepEqual(row.slice(2), [ip.src, String(u.srcPort), String(f[i].length)]);
        });
      } finally {
        await Deno.remove(path);
      }
    }
  },
});

Deno.test({
  name: "interop: tshark -F pcapng output reads back with our pcapng reader" +
    (hasTshark ? "" : " (skipped: tshark not installed)"),
  ignore: !hasTshark,
  fn: async () => {
    const f = interopFrames();
    const src = await tmp();
    const dst = await tmp(".pcapng");
    try {
      await Deno.writeFile(
        src,
        encodePcap(
          f.map((data, i) => ({ data, ts: { sec: 1_700_000_000 + i, nsec: 123456789 } })),
          {
            nanosecond: true,
          },
        ),
      );
      await run("tshark", ["-r", src, "-F", "pcapng", "-w", dst]);
      const r = readPcapFileSync(dst);
      assert.equal(r.error, null);
      assert.equal(r.header?.format, "pcapng");
      assert.equal(r.records.length, f.length);
      r.records.forEach((rec, i) => {
        assert.deepEqual(rec.data, f[i]);
        assert.equal(rec.tsSec, 1_700_000_000 + i);
        assert.equal(rec.tsNsec, 123456789);
      });
    } finally {
      await Deno.remove(src);
      await Deno.remove(dst);
    }
  },
});

// ---------------------------------------------------------------------------
// the file readers take user paths: open with care, bounded memory

Deno.test("file readers: non-files refused before opening, sizes capped, reads bounded", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vale-pcap-files-" });
  const fifo = `${dir}/fifo`;
  new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
  const good = `${dir}/good.pcap`;
  Deno.writeFileSync(good, sample());
  /** every whole-file reader throws the same file-level PcapError */
  const refused = async (path: string, kind: PcapErrorKind, re: RegExp, opts = {}) => {
    for (
      const [how, f] of [
        ["readPcapFileSync", () => readPcapFileSync(path, opts)],
        ["readPcapFile", () => readPcapFile(path, opts)],
      ] as const
    ) {
      const t0 = Date.now();
      const e = await (async () => {
        try {
          await f();
        } catch (e) {
          return e;
        }
      })();
      assert.ok(e instanceof PcapError, `${how} ${path}: ${e}`);
      assert.equal(e.kind, kind, `${how}: ${e.message}`);
      assert.equal(e.path, path);
      assert.match(e.message, re, how);
      assert.equal(e.message, `pcap: ${path}: ${e.detail}`);
      assert.ok(Date.now() - t0 < 2000, `${how} ${path} answers at once`);
    }
  };
  try {
    await t.step("a directory, a FIFO, /dev/zero, a missing file", async () => {
      await refused(dir, "not-a-file", /is a directory, not a regular file/);
      await refused(fifo, "not-a-file", /is a FIFO \(named pipe\), not a regular file/);
      await refused("/dev/zero", "not-a-file", /is a character device, not a regular file/);
      await refused(`${dir}/nope`, "unreadable", /cannot open: no such file/);
    });
    await t.step("too large: refused from its size, or when the limit is passed", async () => {
      await refused(good, "too-large", /\d+ bytes, the limit for reading it whole is 100 bytes/, {
        maxBytes: 100,
      });
      // with maxRecords the size is not checked up front (a few records of a big file are
      // fine), but reading still stops at the limit: a file's size may lie (/proc) or grow
      await refused(good, "too-large", /more than 100 bytes/, { maxBytes: 100, maxRecords: 10 });
      // records cost memory beyond their bytes (a file of empty records): capped too
      await refused(good, "too-large", /more than 2 records, the limit/, { recordLimit: 2 });
    });
    await t.step("maxRecords reads no further; maxRecordLen refuses from the header", () => {
      const big = `${dir}/big.pcap`;
      using f = Deno.openSync(big, { write: true, create: true });
      f.writeSync(sample());
      f.truncateSync(8 * 1024 * 1024 * 1024); // sparse 8 GiB: over any limit, but one record is enough
      const r = readPcapFileSync(big, { maxRecords: 1 });
      assert.equal(r.error, null);
      assert.equal(r.records.length, 1);
      assert.deepEqual(r.records[0].data, frames()[0]);
      const cut = readPcapFileSync(good, { maxRecordLen: 1000 });
      assert.equal(cut.records.length, 2);
      assert.equal(cut.error?.kind, "absurd-length");
      assert.match(cut.error!.message, /caplen 1514 is over the 1000-byte limit at byte offset/);
      assert.throws(() => readPcapFileSync(big), /too large: 8589934592 bytes/);
    });
    await t.step("openPcap: a directory or device refused; a FIFO streams", async () => {
      for (const [p, re] of [[dir, /directory/], ["/dev/zero", /character device/]] as const) {
        const s = await collectStream(openPcap(p));
        assert.ok(s.error instanceof PcapError && s.error.kind === "not-a-file", `${p}`);
        assert.match(s.error.message, re);
      }
      const writer = (async () => {
        const w = await Deno.open(fifo, { write: true });
        await w.write(sample());
        w.close();
      })();
      const s = await collectStream(openPcap(fifo));
      await writer;
      assert.equal(s.error, null);
      assert.equal(s.records.length, 3);
    });
    await t.step("a pcapng block longer than the limit is refused before it is buffered", () => {
      const bytes = samplePcapng(true);
      // every packet block honours the limit, the simple packet block too (whose data the
      // block length bounds: the fuzzer found it let 1514 bytes through a limit of 100)
      const r = readPcap(bytes, { maxRecordLen: 100 });
      assert.equal(r.records.length, 2);
      assert.equal(r.error?.kind, "absurd-length");
      assert.match(r.error!.message, /caplen 1514 is over the 100-byte limit/);
      const huge = patch32(bytes, bytes.length - (12 + 4 + 1516) + 4, 0x7ffffff0);
      const h = readPcap(huge);
      assert.equal(h.error?.kind, "bad-block");
      assert.match(h.error!.message, /absurd length 2147483632 \(over the \d+-byte limit\)/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
