/**
 * pcap capture files: read and write.
 *
 * Written: classic pcap (libpcap "savefile", version 2.4), microsecond
 * (magic 0xa1b2c3d4) or nanosecond (0xa1b23c4d) timestamps, little or big
 * endian, any link type (default LINKTYPE_ETHERNET = 1), with a snap length.
 *
 * Read: the same four classic variants, plus pcapng (Section Header,
 * Interface Description with `if_tsresol`/`if_tsoffset`, Enhanced, Simple and
 * obsolete Packet blocks; other blocks are skipped), from bytes (sync
 * iterator) or a stream (async iterator).
 *
 * Damage never costs a good record: every complete record before the damage
 * is delivered first, then a {@link PcapError} says what was wrong and at
 * which byte offset (cut file header, cut record header, cut record body, bad
 * magic, unsupported version, caplen > snaplen, absurd lengths, bad pcapng
 * block). {@link readPcap} collects everything without throwing.
 *
 * File layout (pcap-savefile(5)): a 24-byte header {magic u32, version_major
 * u16 = 2, version_minor u16 = 4, thiszone i32, sigfigs u32, snaplen u32,
 * linktype u32 (low 16 bits the LINKTYPE_ value; bit 26 "FCS length present",
 * bits 28..31 FCS length in 16-bit words)}, then per packet a 16-byte header
 * {ts_sec u32, ts_usec-or-nsec u32, caplen u32, len u32} and caplen bytes;
 * every field in the writer's byte order, told by the magic.
 *
 * @module
 */
import {
  FileGuardError,
  openGuarded,
  openGuardedSync,
  pathText,
  readChunk,
  readChunkSync,
  tooLarge,
} from "./file_guard.ts";

/** pcap magic, microsecond timestamps. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** pcap magic, nanosecond timestamps. */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** pcapng Section Header Block type (also its first 4 bytes). */
export const PCAPNG_SHB = 0x0a0d0d0a;
/** LINKTYPE_ETHERNET */
export const LINKTYPE_ETHERNET = 1;
/** Snap length written by default (libpcap's maximum, 256 KiB). */
export const DEFAULT_SNAPLEN = 262144;
/** A record longer than this is considered corruption whatever the snaplen says (64 MiB). */
export const MAX_RECORD_LEN = 64 * 1024 * 1024;
/** pcap file header length. */
export const PCAP_HEADER_LEN = 24;
/** pcap record header length. */
export const PCAP_RECORD_HEADER_LEN = 16;

/** What went wrong, for programs; the message says it for people. */
export type PcapErrorKind =
  | "empty"
  | "bad-magic"
  | "bad-version"
  | "truncated-header"
  | "truncated-record-header"
  | "truncated-record"
  | "caplen-exceeds-snaplen"
  | "absurd-length"
  | "bad-block"
  // the file itself, before any byte is parsed (file readers only)
  | "not-a-file"
  | "unreadable"
  | "too-large";

/**
 * A damaged or unsupported capture. `offset` is the byte offset in the file
 * of the structure that is wrong (the file header, a record header, a pcapng
 * block); `records` is how many complete records came before it.
 *
 * The file readers also throw it, with `path` set, for a file that cannot be
 * read at all (`not-a-file`, `unreadable`, `too-large`; offset and records 0).
 */
export class PcapError extends Error {
  /** Machine-readable reason. */
  readonly kind: PcapErrorKind;
  /** Byte offset in the file of the damaged structure. */
  readonly offset: number;
  /** Number of complete records read before the damage. */
  readonly records: number;
  /** What and where, without the `pcap: ` prefix (and without the path): for tools' own prefix. */
  readonly detail: string;
  /** The file, when a file reader raised the error about the file itself. */
  readonly path: string | undefined;
  /**
   * Create the error; `what` describes the damage. With `file`, the error is
   * about the file itself: the message names the path and no offset.
   */
  constructor(
    kind: PcapErrorKind,
    offset: number,
    records: number,
    what: string,
    file?: { path: string; cause?: unknown },
  ) {
    const detail = file
      ? what
      : `${what} at byte offset ${offset} (after ${records} complete records)`;
    super(file ? `pcap: ${file.path}: ${detail}` : `pcap: ${detail}`, { cause: file?.cause });
    this.name = "PcapError";
    this.kind = kind;
    this.offset = offset;
    this.records = records;
    this.detail = detail;
    this.path = file?.path;
  }
}

/** The file-level facts. For pcapng, snaplen/linkType/nanosecond are those of interface 0. */
export interface PcapHeader {
  /** Classic pcap or pcapng. */
  format: "pcap" | "pcapng";
  /** Byte order of the file. */
  littleEndian: boolean;
  /** Timestamps in the file have nanosecond resolution (pcap: the 0xa1b23c4d magic). */
  nanosecond: boolean;
  /** Major version (pcap 2, pcapng 1). */
  versionMajor: number;
  /** Minor version (pcap 4, pcapng 0). */
  versionMinor: number;
  /** Snap length (0 = unknown/unlimited). */
  snaplen: number;
  /** LINKTYPE_ value (low 16 bits of the header field). */
  linkType: number;
  /** FCS bytes at the end of each packet when the header says so, else null. */
  fcsLength: number | null;
}

/** One captured packet. */
export interface PcapRecord {
  /** 0-based position in the file. */
  index: number;
  /** Byte offset of the record header (pcapng: the block) in the file. */
  offset: number;
  /** Seconds since the epoch. */
  tsSec: number;
  /** Nanoseconds within the second (microsecond files: a multiple of 1000). */
  tsNsec: number;
  /** Bytes captured (= data.length). */
  capLen: number;
  /** Length of the packet on the wire. */
  origLen: number;
  /** The captured bytes. */
  data: Uint8Array;
  /** LINKTYPE_ value of the packet's interface (1 = Ethernet). */
  linkType: number;
  /** pcapng interface id (0 for pcap). */
  interfaceId: number;
}

/** Options of the readers. */
export interface PcapReadOptions {
  /**
   * Copy each record's data out of the input (default: false for
   * {@link PcapReader} — records are views into the bytes given — and true
   * for the stream readers, whose chunks may be reused).
   */
  copy?: boolean;
  /**
   * Longest record accepted, in bytes (default and maximum {@link MAX_RECORD_LEN}).
   * A longer caplen (pcapng: a longer block, less {@link PCAPNG_BLOCK_SLACK}) is
   * reported as damage as soon as its header is read, before any of its bytes
   * are buffered: this bounds the memory a reader uses whatever the file says.
   */
  maxRecordLen?: number;
}

/** Bytes a pcapng block may have beyond its packet data (headers, options) under maxRecordLen. */
export const PCAPNG_BLOCK_SLACK = 65536;

interface Iface {
  linkType: number;
  snaplen: number;
  /** units per second of the timestamps */
  unitsPerSec: bigint;
  tsOffset: bigint;
}

const BOM = 0x1a2b3c4d;

/**
 * Incremental parser: feed it chunks, it yields complete records and throws
 * {@link PcapError} at the first damage (after yielding everything before it).
 * Call {@link PcapParser.finish} at end of input to detect truncation.
 */
export class PcapParser {
  /** Set once the file header (pcapng: section header) has been read. */
  header: PcapHeader | null = null;
  private buf: Uint8Array = new Uint8Array(0);
  private pending: Uint8Array[] = [];
  private pendingLen = 0;
  /** bytes needed (from the start of buf) before the next parse attempt */
  private want = 0;
  /** file offset of buf[0] */
  private base = 0;
  private count = 0;
  private failed: PcapError | null = null;
  private readonly copy: boolean;
  private readonly maxLen: number;
  // pcap
  private le = true;
  private nano = false;
  private snaplen = 0;
  private linkType = 0;
  // pcapng
  private ifaces: Iface[] = [];

  /** Create a parser; `copy` defaults to true here. */
  constructor(opts: PcapReadOptions = {}) {
    this.copy = opts.copy ?? true;
    const m = opts.maxRecordLen ?? MAX_RECORD_LEN;
    if (!Number.isInteger(m) || m < 0 || m > MAX_RECORD_LEN) {
      throw new RangeError(`maxRecordLen ${m} not in [0..${MAX_RECORD_LEN}]`);
    }
    this.maxLen = m;
  }

  /** Number of complete records produced so far. */
  get recordCount(): number {
    return this.count;
  }

  /** Record and throw the error. */
  private fail(kind: PcapErrorKind, offset: number, what: string): never {
    this.failed = new PcapError(kind, offset, this.count, what);
    throw this.failed;
  }

  /** Feed the next chunk; yields the records it completes. */
  *feed(chunk: Uint8Array): Generator<PcapRecord, void, undefined> {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    // not enough for the structure we wait for: just queue the chunk (no re-copying
    // of a big partial record on every small chunk)
    if (this.buf.length + this.pendingLen + chunk.length < this.want) {
      this.pending.push(this.copy ? chunk.slice() : chunk);
      this.pendingLen += chunk.length;
      return;
    }
    this.merge(chunk);
    let pos = 0;
    this.want = 0;
    try {
      for (;;) {
        const r = this.header === null || this.header.format === "pcap"
          ? this.step(pos)
          : this.stepNg(pos);
        if (r === null) break;
        pos = r.next;
        if (r.rec) {
          this.count++;
          yield r.rec;
        }
      }
    } finally {
      // keep what is not consumed; copy it so the caller may reuse its chunk
      // (views are kept when records are views anyway, i.e. copy: false)
      const rest = this.buf.subarray(pos);
      this.base += pos;
      this.buf = rest.length ? (this.copy ? rest.slice() : rest) : new Uint8Array(0);
    }
  }

  /** buf = buf + pending chunks + chunk */
  private merge(chunk?: Uint8Array): void {
    const parts = [this.buf, ...this.pending];
    if (chunk) parts.push(chunk);
    this.pending = [];
    this.pendingLen = 0;
    const nonEmpty = parts.filter((p) => p.length > 0);
    if (nonEmpty.length === 1) {
      this.buf = nonEmpty[0];
      return;
    }
    const b = new Uint8Array(nonEmpty.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of nonEmpty) {
      b.set(p, o);
      o += p.length;
    }
    this.buf = b;
  }

  /** remember that `n` bytes from `pos` are needed before parsing can go on */
  private wait(n: number): null {
    this.want = n;
    return null;
  }

  /** End of input: throws {@link PcapError} when a header, record or block was cut short. */
  finish(): void {
    if (this.failed) throw this.failed;
    this.merge();
    const have = this.buf.length;
    if (this.header === null) {
      if (have === 0 && this.base === 0) this.fail("empty", 0, "empty file (no pcap header)");
      this.fail(
        "truncated-header",
        0,
        `file header cut short: ${have} of ${
          this.sniffNg() ? "at least 28" : PCAP_HEADER_LEN
        } bytes present`,
      );
    }
    if (have === 0) return;
    if (this.header.format === "pcapng") {
      this.fail("truncated-record", this.base, `pcapng block cut short: ${have} bytes present`);
    }
    if (have < PCAP_RECORD_HEADER_LEN) {
      this.fail(
        "truncated-record-header",
        this.base,
        `record header cut short: ${have} of ${PCAP_RECORD_HEADER_LEN} bytes present`,
      );
    }
    const caplen = this.u32(this.buf, 8);
    this.fail(
      "truncated-record",
      this.base,
      `record body cut short: caplen ${caplen} but only ${
        have - PCAP_RECORD_HEADER_LEN
      } bytes of packet data present`,
    );
  }

  /** Do the pending bytes start like a pcapng file? */
  private sniffNg(): boolean {
    const b = this.buf;
    return b.length >= 4 && b[0] === 0x0a && b[1] === 0x0d && b[2] === 0x0d && b[3] === 0x0a;
  }

  /** Read a u32 in the file's byte order. */
  private u32(b: Uint8Array, o: number, le: boolean = this.le): number {
    return le
      ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
      : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }
  /** Read a u16 in the file's byte order. */
  private u16(b: Uint8Array, o: number, le: boolean = this.le): number {
    return le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1];
  }

  /** A record's bytes: a view, or a copy when asked. */
  private data(start: number, len: number): Uint8Array {
    const v = this.buf.subarray(start, start + len);
    return this.copy ? v.slice() : v;
  }

  /** classic pcap: parse the header or one record at pos; null = need more bytes */
  private step(pos: number): { next: number; rec: PcapRecord | null } | null {
    const b = this.buf;
    const avail = b.length - pos;
    if (this.header === null) {
      if (avail >= 4) {
        const be = this.u32(b, pos, false);
        if (be === PCAPNG_SHB) return this.stepNg(pos);
        let le: boolean;
        if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) le = false;
        else if (
          this.u32(b, pos, true) === PCAP_MAGIC_US || this.u32(b, pos, true) === PCAP_MAGIC_NS
        ) {
          le = true;
        } else {
          this.fail(
            "bad-magic",
            this.base + pos,
            `bad magic 0x${be.toString(16).padStart(8, "0")} (not a pcap or pcapng file)`,
          );
        }
        const nano = this.u32(b, pos, le) === PCAP_MAGIC_NS;
        if (avail < PCAP_HEADER_LEN) return this.wait(PCAP_HEADER_LEN);
        this.le = le;
        this.nano = nano;
        const major = this.u16(b, pos + 4), minor = this.u16(b, pos + 6);
        if (major !== 2) {
          this.fail("bad-version", this.base + pos, `unsupported pcap version ${major}.${minor}`);
        }
        this.snaplen = this.u32(b, pos + 16);
        const lt = this.u32(b, pos + 20);
        this.linkType = lt & 0xffff;
        this.header = {
          format: "pcap",
          littleEndian: le,
          nanosecond: nano,
          versionMajor: major,
          versionMinor: minor,
          snaplen: this.snaplen,
          linkType: this.linkType,
          fcsLength: lt & 0x04000000 ? ((lt >>> 28) & 0xf) * 2 : null,
        };
        return { next: pos + PCAP_HEADER_LEN, rec: null };
      }
      return null;
    }
    if (avail < PCAP_RECORD_HEADER_LEN) return this.wait(PCAP_RECORD_HEADER_LEN);
    const off = this.base + pos;
    const tsSec = this.u32(b, pos);
    const frac = this.u32(b, pos + 4);
    const caplen = this.u32(b, pos + 8);
    const origLen = this.u32(b, pos + 12);
    if (caplen > this.maxLen) this.tooLong(caplen, off);
    if (this.snaplen !== 0 && caplen > this.snaplen) {
      this.fail(
        "caplen-exceeds-snaplen",
        off,
        `record caplen ${caplen} exceeds the file's snaplen ${this.snaplen}`,
      );
    }
    if (caplen > origLen) {
      this.fail(
        "absurd-length",
        off,
        `absurd record lengths: caplen ${caplen} > original length ${origLen}`,
      );
    }
    const limit = this.nano ? 1e9 : 1e6;
    if (frac >= limit) {
      this.fail(
        "absurd-length",
        off,
        `absurd timestamp fraction ${frac} (>= ${limit} ${this.nano ? "ns" : "us"})`,
      );
    }
    if (avail < PCAP_RECORD_HEADER_LEN + caplen) return this.wait(PCAP_RECORD_HEADER_LEN + caplen);
    const rec: PcapRecord = {
      index: this.count,
      offset: off,
      tsSec,
      tsNsec: this.nano ? frac : frac * 1000,
      capLen: caplen,
      origLen,
      data: this.data(pos + PCAP_RECORD_HEADER_LEN, caplen),
      linkType: this.linkType,
      interfaceId: 0,
    };
    return { next: pos + PCAP_RECORD_HEADER_LEN + caplen, rec };
  }

  /** pcapng: one block at pos */
  private stepNg(pos: number): { next: number; rec: PcapRecord | null } | null {
    const b = this.buf;
    const avail = b.length - pos;
    const off = this.base + pos;
    if (avail < 12) {
      if (this.header === null && avail >= 4 && this.u32(b, pos, false) !== PCAPNG_SHB) {
        this.fail("bad-magic", off, "bad magic (not a pcap or pcapng file)");
      }
      return null;
    }
    let type = this.u32(b, pos);
    if (this.u32(b, pos, false) === PCAPNG_SHB) {
      // (re)establish byte order from the byte-order magic
      const bomLe = this.u32(b, pos + 8, true);
      if (bomLe === BOM) this.le = true;
      else if (this.u32(b, pos + 8, false) === BOM) this.le = false;
      else this.fail("bad-magic", off + 8, "pcapng section header with a bad byte-order magic");
      type = PCAPNG_SHB;
    } else if (this.header === null) {
      this.fail("bad-magic", off, "bad magic (not a pcap or pcapng file)");
    }
    const total = this.u32(b, pos + 4);
    if (total < 12 || total % 4 !== 0) {
      this.fail(
        "bad-block",
        off,
        `pcapng block of type 0x${type.toString(16)} with bad length ${total}`,
      );
    }
    if (total > this.maxLen + PCAPNG_BLOCK_SLACK) {
      this.fail(
        "bad-block",
        off,
        `pcapng block of type 0x${type.toString(16)} with absurd length ${total} ` +
          `(over the ${this.maxLen + PCAPNG_BLOCK_SLACK}-byte limit)`,
      );
    }
    if (avail < total) return this.wait(total);
    if (this.u32(b, pos + total - 4) !== total) {
      this.fail("bad-block", off, `pcapng block length ${total} not repeated at its end`);
    }
    const body = pos + 8, end = pos + total - 4;
    switch (type) {
      case PCAPNG_SHB: {
        if (total < 28) this.fail("bad-block", off, `pcapng section header too short (${total})`);
        const major = this.u16(b, body + 4), minor = this.u16(b, body + 6);
        if (major !== 1) {
          this.fail("bad-version", off, `unsupported pcapng version ${major}.${minor}`);
        }
        this.ifaces = [];
        if (this.header === null) {
          this.header = {
            format: "pcapng",
            littleEndian: this.le,
            nanosecond: false,
            versionMajor: major,
            versionMinor: minor,
            snaplen: 0,
            linkType: -1,
            fcsLength: null,
          };
        }
        return { next: pos + total, rec: null };
      }
      case 1: { // Interface Description Block
        if (total < 20) this.fail("bad-block", off, `pcapng interface block too short (${total})`);
        const iface: Iface = {
          linkType: this.u16(b, body),
          snaplen: this.u32(b, body + 4),
          unitsPerSec: 1000000n,
          tsOffset: 0n,
        };
        this.options(body + 8, end, off, (code, o, len) => {
          if (code === 9 && len >= 1) {
            const v = b[o];
            iface.unitsPerSec = v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
          } else if (code === 14 && len >= 8) {
            iface.tsOffset = BigInt.asIntN(64, this.u64(b, o));
          }
        });
        this.ifaces.push(iface);
        if (this.ifaces.length === 1 && this.header) {
          this.header.snaplen = iface.snaplen;
          this.header.linkType = iface.linkType;
          this.header.nanosecond = iface.unitsPerSec >= 1000000000n;
        }
        return { next: pos + total, rec: null };
      }
      case 6: // Enhanced Packet Block
      case 2: { // obsolete Packet Block
        if (total < 32) this.fail("bad-block", off, `pcapng packet block too short (${total})`);
        const id = type === 6 ? this.u32(b, body) : this.u16(b, body);
        const iface = this.iface(id, off);
        const ts = (BigInt(this.u32(b, body + 4)) << 32n) | BigInt(this.u32(b, body + 8));
        const caplen = this.u32(b, body + 12);
        const origLen = this.u32(b, body + 16);
        this.checkLens(caplen, origLen, iface.snaplen, off);
        if (body + 20 + caplen > end) {
          this.fail("bad-block", off, `pcapng packet block: caplen ${caplen} overruns the block`);
        }
        return {
          next: pos + total,
          rec: this.ngRecord(off, iface, id, ts, caplen, origLen, body + 20),
        };
      }
      case 3: { // Simple Packet Block
        if (total < 16) {
          this.fail("bad-block", off, `pcapng simple packet block too short (${total})`);
        }
        const iface = this.iface(0, off);
        const origLen = this.u32(b, body);
        let caplen = Math.min(origLen, end - (body + 4));
        if (iface.snaplen) caplen = Math.min(caplen, iface.snaplen);
        // the block bounds the data, but it may be up to PCAPNG_BLOCK_SLACK over the limit
        if (caplen > this.maxLen) this.tooLong(caplen, off);
        return {
          next: pos + total,
          rec: this.ngRecord(off, iface, 0, null, caplen, origLen, body + 4),
        };
      }
      default:
        return { next: pos + total, rec: null };
    }
  }

  /** Read a u64 in the file's byte order. */
  private u64(b: Uint8Array, o: number): bigint {
    const lo = BigInt(this.u32(b, this.le ? o : o + 4));
    const hi = BigInt(this.u32(b, this.le ? o + 4 : o));
    return (hi << 32n) | lo;
  }

  /** Interface `id` or a bad-block error. */
  private iface(id: number, off: number): Iface {
    const i = this.ifaces[id];
    if (!i) this.fail("bad-block", off, `pcapng packet for undeclared interface ${id}`);
    return i;
  }

  /** A caplen over the limit: say which limit. */
  private tooLong(caplen: number, off: number): never {
    this.fail(
      "absurd-length",
      off,
      `absurd record length: caplen ${caplen} is over the ${this.maxLen}-byte limit`,
    );
  }

  /** Validate a pcapng packet's lengths. */
  private checkLens(caplen: number, origLen: number, snaplen: number, off: number): void {
    if (caplen > this.maxLen) this.tooLong(caplen, off);
    if (snaplen !== 0 && caplen > snaplen) {
      this.fail(
        "caplen-exceeds-snaplen",
        off,
        `record caplen ${caplen} exceeds the snaplen ${snaplen}`,
      );
    }
    if (caplen > origLen) {
      this.fail(
        "absurd-length",
        off,
        `absurd record lengths: caplen ${caplen} > original length ${origLen}`,
      );
    }
  }

  /** Walk the options of a pcapng block. */
  private options(
    o: number,
    end: number,
    off: number,
    each: (code: number, at: number, len: number) => void,
  ): void {
    const b = this.buf;
    while (o + 4 <= end) {
      const code = this.u16(b, o), len = this.u16(b, o + 2);
      if (code === 0) return;
      if (o + 4 + len > end) {
        this.fail("bad-block", off, `pcapng option ${code} overruns its block`);
      }
      each(code, o + 4, len);
      o += 4 + ((len + 3) & ~3);
    }
  }

  /** Build a record from a pcapng packet block. */
  private ngRecord(
    off: number,
    iface: Iface,
    id: number,
    ts: bigint | null,
    caplen: number,
    origLen: number,
    at: number,
  ): PcapRecord {
    let tsSec = 0, tsNsec = 0;
    if (ts !== null) {
      const u = iface.unitsPerSec;
      const sec = ts / u + iface.tsOffset;
      const ns = ((ts % u) * 1000000000n) / u;
      tsSec = Number(sec);
      tsNsec = Number(ns);
    }
    return {
      index: this.count,
      offset: off,
      tsSec,
      tsNsec,
      capLen: caplen,
      origLen,
      data: this.data(at, caplen),
      linkType: iface.linkType,
      interfaceId: id,
    };
  }
}

/**
 * Sync reader over a whole file in memory. The constructor reads the header
 * (throws {@link PcapError} on bad magic / cut header); iterating yields every
 * complete record, then throws {@link PcapError} if the file is damaged.
 * Records are views into `bytes` unless `copy: true`.
 */
export class PcapReader implements Iterable<PcapRecord> {
  /** The file header (pcapng: section + first interface, once read). */
  readonly header: PcapHeader;
  private readonly bytes: Uint8Array;
  private readonly opts: PcapReadOptions;

  /** Read the header of `bytes` (throws PcapError when it is bad or cut). */
  constructor(bytes: Uint8Array, opts: PcapReadOptions = {}) {
    this.bytes = bytes;
    this.opts = opts;
    const p = new PcapParser({ copy: false, maxRecordLen: opts.maxRecordLen });
    // parse up to the first record; damage after the header is reported by the iterator
    try {
      for (const _ of p.feed(bytes)) break;
    } catch (e) {
      if (!(e instanceof PcapError) || p.header === null) throw e;
    }
    if (p.header === null) p.finish();
    this.header = p.header!;
  }

  /** Records in file order; throws {@link PcapError} after the last good one if damaged. */
  *[Symbol.iterator](): Generator<PcapRecord, void, undefined> {
    const p = new PcapParser({ ...this.opts, copy: this.opts.copy ?? false });
    yield* p.feed(this.bytes);
    p.finish();
  }
}

/** Result of {@link readPcap}: every good record, and the damage if any. */
export interface PcapReadResult {
  /** The file header, null if it could not be read. */
  header: PcapHeader | null;
  /** Every complete record before the end or the damage. */
  records: PcapRecord[];
  /** What was wrong, or null for an intact file. */
  error: PcapError | null;
}

/** Read a whole capture without throwing: the complete records and the error (if any). */
export function readPcap(bytes: Uint8Array, opts: PcapReadOptions = {}): PcapReadResult {
  const p = new PcapParser({ ...opts, copy: opts.copy ?? false });
  const records: PcapRecord[] = [];
  try {
    for (const r of p.feed(bytes)) records.push(r);
    p.finish();
  } catch (e) {
    if (!(e instanceof PcapError)) throw e;
    return { header: p.header, records, error: e };
  }
  return { header: p.header, records, error: null };
}

/** Options of the file readers. */
export interface PcapFileOptions extends PcapReadOptions {
  /**
   * Most bytes read from the file (default {@link MAX_PCAP_FILE_BYTES}). A
   * larger file is refused up front (kind `too-large`); one that turns out
   * larger than its size said is refused when the limit is passed.
   */
  maxBytes?: number;
  /** Stop after this many records and read no further (default: all). */
  maxRecords?: number;
  /**
   * Most records a whole-file read keeps (default {@link MAX_PCAP_FILE_RECORDS});
   * more is refused (kind `too-large`). Each record costs some 300 bytes of
   * memory besides its data, so a file of empty records would otherwise cost
   * twenty times its size.
   */
  recordLimit?: number;
}

/** Default limit of the whole-file readers: 256 MiB (stream bigger files with {@link openPcap}). */
export const MAX_PCAP_FILE_BYTES = 256 * 1024 * 1024;
/** Default record limit of the whole-file readers (about 300 MB of record objects). */
export const MAX_PCAP_FILE_RECORDS = 1_000_000;
const FILE_CHUNK = 256 * 1024;

/** A FileGuardError (or anything thrown while opening) as a PcapError about the file. */
function fileError(e: unknown, path: string | URL): PcapError {
  if (e instanceof PcapError) return e;
  const p = pathText(path);
  if (e instanceof FileGuardError) {
    const kind = e.reason === "not-regular"
      ? "not-a-file"
      : e.reason === "too-large"
      ? "too-large"
      : "unreadable";
    return new PcapError(kind, 0, 0, e.message, { path: p, cause: e });
  }
  return new PcapError("unreadable", 0, 0, `cannot read: ${e}`, { path: p, cause: e });
}

/** Shared loop of the whole-file readers: feed chunks until the end or maxRecords. */
class FileLoad {
  readonly records: PcapRecord[] = [];
  readonly parser: PcapParser;
  private total = 0;
  private readonly max: number;
  private readonly maxRecords: number;
  private readonly recordLimit: number;

  constructor(readonly path: string, opts: PcapFileOptions) {
    this.max = opts.maxBytes ?? MAX_PCAP_FILE_BYTES;
    this.maxRecords = opts.maxRecords ?? Infinity;
    this.recordLimit = opts.recordLimit ?? MAX_PCAP_FILE_RECORDS;
    if (!(this.max >= 0) || !(this.maxRecords >= 0)) {
      throw new RangeError(`bad maxBytes ${opts.maxBytes} or maxRecords ${opts.maxRecords}`);
    }
    this.parser = new PcapParser({ ...opts, copy: opts.copy ?? false });
  }

  /** Refuse a file whose size is already over the limit (unless only a few records are wanted). */
  checkSize(size: number): void {
    if (this.maxRecords === Infinity && size > this.max) {
      throw fileError(tooLarge(this.path, this.max, size), this.path);
    }
  }

  /** The next chunk buffer: fresh each time, since records may be views into it. */
  buffer(): Uint8Array {
    return new Uint8Array(Math.min(FILE_CHUNK, this.max - this.total + 1));
  }

  /** Feed `n` bytes of `buf`; true when no more are needed. */
  feed(buf: Uint8Array, n: number): boolean {
    this.total += n;
    if (this.total > this.max) throw fileError(tooLarge(this.path, this.max), this.path);
    for (const r of this.parser.feed(buf.subarray(0, n))) {
      if (this.records.length >= this.recordLimit) {
        throw new PcapError(
          "too-large",
          0,
          0,
          `file too large: more than ${this.recordLimit} records, the limit for reading it whole`,
          { path: this.path },
        );
      }
      this.records.push(r);
      if (this.records.length >= this.maxRecords) return true;
    }
    return false;
  }

  /** The result after the last chunk (`done`: stopped early, no truncation check). */
  result(done: boolean, e?: unknown): PcapReadResult {
    if (e === undefined && !done) {
      try {
        this.parser.finish();
      } catch (f) {
        e = f;
      }
    }
    if (e !== undefined && !(e instanceof PcapError && e.path === undefined)) throw e;
    return { header: this.parser.header, records: this.records, error: (e as PcapError) ?? null };
  }
}

/**
 * {@link readPcap} on a file, read with care: only a regular file is read
 * (a FIFO, device or directory is refused before it is opened), at most
 * `maxBytes` of it, and with `maxRecords` no more than needed. Throws
 * {@link PcapError} (kind `not-a-file`, `unreadable`, `too-large`; `path`
 * set) when the file cannot be read; damage inside it is returned in `error`.
 */
export function readPcapFileSync(path: string | URL, opts: PcapFileOptions = {}): PcapReadResult {
  const load = new FileLoad(pathText(path), opts);
  let f: Deno.FsFile;
  try {
    f = openGuardedSync(path);
    load.checkSize(f.statSync().size);
  } catch (e) {
    throw fileError(e, path);
  }
  try {
    for (;;) {
      const buf = load.buffer();
      const n = readChunkSync(f, load.path, buf);
      if (n === null) return load.result(false);
      if (load.feed(buf, n)) return load.result(true);
    }
  } catch (e) {
    return load.result(false, e instanceof FileGuardError ? fileError(e, path) : e);
  } finally {
    f.close();
  }
}

/** Async {@link readPcapFileSync}. */
export async function readPcapFile(
  path: string | URL,
  opts: PcapFileOptions = {},
): Promise<PcapReadResult> {
  const load = new FileLoad(pathText(path), opts);
  let f: Deno.FsFile;
  try {
    f = await openGuarded(path);
    load.checkSize((await f.stat()).size);
  } catch (e) {
    throw fileError(e, path);
  }
  try {
    for (;;) {
      const buf = load.buffer();
      const n = await readChunk(f, load.path, buf);
      if (n === null) return load.result(false);
      if (load.feed(buf, n)) return load.result(true);
    }
  } catch (e) {
    return load.result(false, e instanceof FileGuardError ? fileError(e, path) : e);
  } finally {
    f.close();
  }
}

/**
 * Async reader over a stream of chunks (e.g. `file.readable`, a socket, a
 * pipe): yields records as they complete, then throws {@link PcapError} if the
 * stream is damaged or ends in the middle of something.
 */
export async function* readPcapStream(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  opts: PcapReadOptions = {},
): AsyncGenerator<PcapRecord, void, undefined> {
  const p = new PcapParser({ ...opts, copy: opts.copy ?? true });
  for await (const chunk of source as AsyncIterable<Uint8Array>) yield* p.feed(chunk);
  p.finish();
}

/**
 * {@link readPcapStream} over a file, closed when the iteration ends. A
 * regular file or a FIFO (e.g. `tcpdump -w` into a named pipe: opening it
 * waits for the writer); anything else is refused with a {@link PcapError}
 * (kind `not-a-file`). Memory stays bounded by `maxRecordLen` whatever the
 * file's size.
 */
export async function* openPcap(
  path: string | URL,
  opts: PcapReadOptions = {},
): AsyncGenerator<PcapRecord, void, undefined> {
  let f: Deno.FsFile;
  try {
    f = await openGuarded(path, { allowFifo: true });
  } catch (e) {
    throw fileError(e, path);
  }
  try {
    // our own chunks are fresh buffers: records need no copy unless asked
    yield* readPcapStream(readFileChunks(f, pathText(path)), { ...opts, copy: opts.copy ?? false });
  } finally {
    f.close();
  }
}

/** A file's chunks; read errors as PcapErrors. */
async function* readFileChunks(f: Deno.FsFile, path: string): AsyncGenerator<Uint8Array> {
  for (;;) {
    const buf = new Uint8Array(FILE_CHUNK);
    let n: number | null;
    try {
      n = await readChunk(f, path, buf);
    } catch (e) {
      throw fileError(e, path);
    }
    if (n === null) return;
    yield buf.subarray(0, n);
  }
}

// ---------------------------------------------------------------------------
// writing

/** A pcap timestamp. */
export interface PcapTimestamp {
  /** Seconds since the epoch. */
  sec: number;
  /** Nanoseconds within the second. */
  nsec: number;
}

/** Options of {@link PcapWriter} and {@link encodePcap}. */
export interface PcapWriterOptions {
  /** Longer packets are truncated (caplen = snaplen, len = full length). Default 262144. */
  snaplen?: number;
  /** Default {@link LINKTYPE_ETHERNET}. */
  linkType?: number;
  /** Nanosecond timestamps (magic 0xa1b23c4d); default microseconds. */
  nanosecond?: boolean;
  /** Write big endian (default: little endian, the host order everywhere we run). */
  bigEndian?: boolean;
  /** Bytes buffered before a write to the sink (default 64 KiB). */
  bufferSize?: number;
  /** Close the sink in close() (default true). */
  closeSink?: boolean;
}

/** Per-packet options of {@link PcapWriter.write}. */
export interface PcapWriteOptions {
  /** Default: now. A number is milliseconds since the epoch. */
  ts?: PcapTimestamp | Date | number;
  /** Length on the wire (default data.length; must be >= the bytes kept). */
  origLen?: number;
}

/** Something a {@link PcapWriter} can write to: a Deno.FsFile, a Writer, a WritableStream. */
export type PcapSink =
  | WritableStream<Uint8Array>
  | {
    write(p: Uint8Array): Promise<number>;
    writeSync?(p: Uint8Array): number;
    close?(): void;
  };

/** The current time with sub-millisecond precision. */
export function pcapNow(): PcapTimestamp {
  const ms = performance.timeOrigin + performance.now();
  const sec = Math.floor(ms / 1000);
  let nsec = Math.round((ms - sec * 1000) * 1e6);
  if (nsec > 999999999) nsec = 999999999;
  return { sec, nsec };
}

function toTimestamp(ts: PcapTimestamp | Date | number | undefined): PcapTimestamp {
  if (ts === undefined) return pcapNow();
  if (ts instanceof Date) ts = ts.getTime();
  if (typeof ts === "number") {
    const sec = Math.floor(ts / 1000);
    return { sec, nsec: Math.round((ts - sec * 1000) * 1e6) };
  }
  return ts;
}

/** Encode the 24-byte pcap file header. */
export function encodePcapHeader(opts: PcapWriterOptions = {}): Uint8Array {
  const snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0x7fffffff) {
    throw new RangeError(`bad snaplen ${snaplen}`);
  }
  const h = new Uint8Array(PCAP_HEADER_LEN);
  const dv = new DataView(h.buffer);
  const le = !opts.bigEndian;
  dv.setUint32(0, opts.nanosecond ? PCAP_MAGIC_NS : PCAP_MAGIC_US, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setInt32(8, 0, le);
  dv.setUint32(12, 0, le);
  dv.setUint32(16, snaplen, le);
  dv.setUint32(20, opts.linkType ?? LINKTYPE_ETHERNET, le);
  return h;
}

/**
 * Streaming pcap writer. Records are buffered and written to the sink when
 * the buffer fills, on flush() and on close(). Use write()/flush()/close()
 * with any sink, or the *Sync variants with a sink that has writeSync
 * (Deno.FsFile).
 */
export class PcapWriter {
  /** The snap length in the file header. */
  readonly snaplen: number;
  /** Records written so far. */
  count = 0;
  private readonly sink: PcapSink;
  private readonly le: boolean;
  private readonly nano: boolean;
  private readonly closeSink: boolean;
  private buf: Uint8Array;
  private dv: DataView;
  private len = 0;
  private streamWriter: WritableStreamDefaultWriter<Uint8Array> | null = null;
  private closed = false;

  /** Write to `sink`; the file header is buffered at once. */
  constructor(sink: PcapSink, opts: PcapWriterOptions = {}) {
    const header = encodePcapHeader(opts);
    this.sink = sink;
    this.snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    this.le = !opts.bigEndian;
    this.nano = opts.nanosecond ?? false;
    this.closeSink = opts.closeSink ?? true;
    this.buf = new Uint8Array(Math.max(opts.bufferSize ?? 65536, 64));
    this.dv = new DataView(this.buf.buffer);
    this.buf.set(header, 0);
    this.len = header.length;
  }

  /** Create (truncate) a file and write to it. */
  static async create(path: string | URL, opts: PcapWriterOptions = {}): Promise<PcapWriter> {
    const f = await Deno.open(path, { write: true, create: true, truncate: true });
    return new PcapWriter(f, opts);
  }

  /** Sync {@link PcapWriter.create}. */
  static createSync(path: string | URL, opts: PcapWriterOptions = {}): PcapWriter {
    const f = Deno.openSync(path, { write: true, create: true, truncate: true });
    return new PcapWriter(f, opts);
  }

  /** Append a record to the buffer; returns true when the buffer should be flushed. */
  private append(data: Uint8Array, opts: PcapWriteOptions): boolean {
    if (this.closed) throw new Error("PcapWriter is closed");
    const caplen = Math.min(data.length, this.snaplen);
    const origLen = opts.origLen ?? data.length;
    if (!Number.isInteger(origLen) || origLen < caplen || origLen > 0xffffffff) {
      throw new RangeError(`bad origLen ${origLen} for ${caplen} captured bytes`);
    }
    const ts = toTimestamp(opts.ts);
    if (!Number.isInteger(ts.sec) || ts.sec < 0 || ts.sec > 0xffffffff) {
      throw new RangeError(`timestamp seconds ${ts.sec} out of range`);
    }
    const nsec = Math.min(Math.max(Math.floor(ts.nsec), 0), 999999999);
    const need = PCAP_RECORD_HEADER_LEN + caplen;
    if (this.len + need > this.buf.length) this.grow(this.len + need);
    const o = this.len, dv = this.dv, le = this.le;
    dv.setUint32(o, ts.sec, le);
    dv.setUint32(o + 4, this.nano ? nsec : Math.floor(nsec / 1000), le);
    dv.setUint32(o + 8, caplen, le);
    dv.setUint32(o + 12, origLen, le);
    this.buf.set(caplen === data.length ? data : data.subarray(0, caplen), o + 16);
    this.len += need;
    this.count++;
    return this.len >= this.buf.length / 2;
  }

  /** Grow the buffer to hold at least `min` bytes. */
  private grow(min: number): void {
    let n = this.buf.length;
    while (n < min) n *= 2;
    const b = new Uint8Array(n);
    b.set(this.buf.subarray(0, this.len), 0);
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }

  /** Write one packet (async sink or sync sink). */
  async write(data: Uint8Array, opts: PcapWriteOptions = {}): Promise<void> {
    if (this.append(data, opts)) await this.flush();
  }

  /** Write one packet; the sink must have writeSync. */
  writeSync(data: Uint8Array, opts: PcapWriteOptions = {}): void {
    if (this.append(data, opts)) this.flushSync();
  }

  /** Write everything buffered to the sink. */
  async flush(): Promise<void> {
    if (this.len === 0) return;
    const chunk = this.buf.slice(0, this.len);
    this.len = 0;
    const s = this.sink;
    if (s instanceof WritableStream) {
      this.streamWriter ??= s.getWriter();
      await this.streamWriter.write(chunk);
      return;
    }
    let o = 0;
    while (o < chunk.length) {
      const n = await s.write(chunk.subarray(o));
      if (n <= 0) throw new Error("PcapWriter: sink accepted no bytes");
      o += n;
    }
  }

  /** Sync {@link PcapWriter.flush}; the sink must have writeSync. */
  flushSync(): void {
    if (this.len === 0) return;
    const s = this.sink;
    if (s instanceof WritableStream || typeof s.writeSync !== "function") {
      throw new TypeError("PcapWriter: this sink has no writeSync; use write()/flush()");
    }
    let o = 0;
    while (o < this.len) {
      const n = s.writeSync(this.buf.subarray(o, this.len));
      if (n <= 0) throw new Error("PcapWriter: sink accepted no bytes");
      o += n;
    }
    this.len = 0;
  }

  /** Flush, then close the sink (unless closeSink: false). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    const s = this.sink;
    if (s instanceof WritableStream) {
      const w = this.streamWriter ?? s.getWriter();
      if (this.closeSink) await w.close();
      else w.releaseLock();
    } else if (this.closeSink) s.close?.();
  }

  /** Sync {@link PcapWriter.close}. */
  closeSync(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    const s = this.sink;
    if (!(s instanceof WritableStream) && this.closeSink) s.close?.();
  }

  /** `await using w = await PcapWriter.create(...)` */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A record for {@link encodePcap}. */
export interface PcapInputRecord {
  /** The packet bytes (truncated to the snaplen). */
  data: Uint8Array;
  /** Timestamp (default now). */
  ts?: PcapTimestamp | Date | number;
  /** Length on the wire (default data.length). */
  origLen?: number;
}

/** Encode a whole pcap file in memory. */
export function encodePcap(
  records: Iterable<PcapInputRecord | Uint8Array>,
  opts: PcapWriterOptions = {},
): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const sink = {
    write(p: Uint8Array): Promise<number> {
      return Promise.resolve(this.writeSync(p));
    },
    writeSync(p: Uint8Array): number {
      parts.push(p.slice());
      total += p.length;
      return p.length;
    },
  };
  const w = new PcapWriter(sink, opts);
  for (const r of records) {
    if (r instanceof Uint8Array) w.writeSync(r);
    else w.writeSync(r.data, { ts: r.ts, origLen: r.origLen });
  }
  w.closeSync();
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
