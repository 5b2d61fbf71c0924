/**
 * Frame building and parsing for pkt-gen (Ethernet + IPv4 + UDP), following
 * netmap's `apps/pkt-gen/pkt-gen.c`:
 *
 * - {@link buildUdpFrame} builds the frame pkt-gen sends: Ethernet, IPv4
 *   (TOS 0x10, DF, TTL 64, id 0, valid header checksum), UDP (valid checksum over
 *   the pseudo-header) and netmap's payload text repeated.
 * - {@link parseIpRange} / {@link parseMacArg} parse `-s`/`-d`/`-S`/`-D` as
 *   netmap does; {@link AddressCycle} describes how addresses cycle from one
 *   packet to the next (netmap's `update_addresses()`), {@link addressesAt}
 *   gives packet i's addresses, {@link writeAddresses} rewrites only the
 *   changed fields and fixes both checksums incrementally (RFC 1624).
 * - {@link encodeCycle} flattens a cycle into 16 little-endian u32 words for
 *   the C hot loop (layout below).
 * - ping/pong: {@link encodePing}, {@link decodePing}, {@link swapForPong};
 *   txseq/rxseq: {@link encodeTxSeq}, {@link decodeTxSeq}.
 *
 * ## How netmap cycles addresses (update_ip)
 *
 * Packet 0 is the template (every field at the start of its range). After each
 * packet, the four fields advance like an odometer whose least significant
 * digit is the source port:
 *
 *     src port -> src IP -> dst port -> dst IP
 *
 * A digit below its end is incremented and the update stops; a digit at its
 * end wraps to its start and the carry moves on to the next digit. When the
 * destination IP wraps, everything is back at the start, so the sequence is
 * periodic with period `nSrcPorts * nSrcIps * nDstPorts * nDstIps`. With `-z`
 * (random source) the source IP and port are random on every packet and the
 * carry *always* moves on to the destination, so the destination keeps
 * cycling one step per packet; `-Z` makes the destination random. netmap uses
 * a time-seeded `nrand48()`; we use a counter-based hash (see
 * {@link cycleRandom32}) so that packet i's addresses are a pure function of
 * (seed, i) and C and TypeScript agree bit for bit.
 *
 * ## Flat cycle structure for C (`encodeCycle`, 16 x uint32, host = little endian)
 *
 * ```c
 * #define VALE_CYCLE_VERSION    1u
 * #define VALE_CYCLE_RANDOM_SRC 0x1u  // -z: src IP/port random, dst advances every packet
 * #define VALE_CYCLE_RANDOM_DST 0x2u  // -Z: dst IP/port random
 * #define VALE_CYCLE_UDP_CSUM   0x4u  // template's UDP checksum is in use: keep it valid
 * #define VALE_CYCLE_ACTIVE     0x8u  // some field changes between packets (else send the
 *                                     // template unchanged; netmap's !OPT_COPY case)
 * struct vale_addr_cycle {            // 64 bytes
 *     uint32_t version;               // [0]  VALE_CYCLE_VERSION
 *     uint32_t flags;                 // [1]  VALE_CYCLE_*
 *     uint32_t l3_off;                // [2]  offset of the IPv4 header in the frame (14)
 *     uint32_t l4_off;                // [3]  offset of the UDP header (34)
 *     uint32_t src_ip0, src_ip1;      // [4,5]   source IP range, inclusive, host order
 *     uint32_t src_port0, src_port1;  // [6,7]   source port range, inclusive
 *     uint32_t dst_ip0, dst_ip1;      // [8,9]   destination IP range
 *     uint32_t dst_port0, dst_port1;  // [10,11] destination port range
 *     uint32_t seed_lo, seed_hi;      // [12,13] seed of the counter-based random generator
 *     uint32_t reserved[2];           // [14,15] zero
 * };
 * ```
 *
 * Per packet (i = 1, 2, ... ; packet 0 is the template) C either steps the
 * odometer from the values currently in its private copy of the frame (exactly
 * netmap's `update_ip`, see {@link nextAddresses}) or computes packet i
 * directly ({@link addressesAt}); then it stores the new values big-endian
 * (IPs at l3_off+12 / +16, ports at l4_off / +2) and adjusts the IPv4 header
 * checksum (l3_off+10) over the changed IP words and the UDP checksum
 * (l4_off+6) over the changed IP and port words with RFC 1624 eqn. 3,
 * `HC' = ~(~HC + ~m + m')`, storing 0xffff instead of 0 in the UDP field and
 * leaving a 0 UDP checksum (unused) alone. Random values, for lane
 * L (0 src IP, 1 src port, 2 dst IP, 3 dst port; ports take the low 16 bits):
 *
 * ```c
 * static inline uint32_t lowbias32(uint32_t x) {
 *     x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
 *     return x;
 * }
 * static inline uint32_t cycle_rand32(const struct vale_addr_cycle *c, uint64_t i, uint32_t lane) {
 *     return lowbias32(c->seed_lo ^ lowbias32((uint32_t)i ^
 *            lowbias32((uint32_t)(i >> 32) ^ c->seed_hi ^ ((lane + 1) * 0x9e3779b9u))));
 * }
 * ```
 *
 * @module
 */

// ---------------------------------------------------------------------------
// constants

/** Ethernet header length. */
export const ETH_HLEN = 14;
/** IPv4 header length without options (what pkt-gen sends). */
export const IPV4_HLEN = 20;
/** UDP header length. */
export const UDP_HLEN = 8;
/** Offset of the IPv4 header in a pkt-gen frame. */
export const L3_OFFSET = 14;
/** Offset of the UDP header in a pkt-gen frame. */
export const L4_OFFSET = 34;
/** Offset of the UDP payload in a pkt-gen frame. */
export const PAYLOAD_OFFSET = 42;
/** EtherType IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType 802.1Q VLAN tag. */
export const ETHERTYPE_VLAN = 0x8100;
/** EtherType 802.1ad service VLAN tag. */
export const ETHERTYPE_QINQ = 0x88a8;
/** IP protocol number of UDP. */
export const IPPROTO_UDP = 17;
/** Smallest Ethernet frame without FCS, pkt-gen's default `-l`. */
export const MIN_FRAME_LEN = 60;
/** pkt-gen's default frame length (`-l`). */
export const DEFAULT_FRAME_LEN = 60;
/** Largest frame {@link buildUdpFrame} builds (without FCS). */
export const MAX_FRAME_LEN = 65535;
/** Shortest frame that holds the three headers (needs `allowRunt`). */
export const MIN_HEADERS_LEN = 42;
/** netmap pkt-gen's payload text (`default_payload`), repeated to fill the frame. */
export const NETMAP_PAYLOAD =
  "netmap pkt-gen DIRECT payload\nhttp://info.iet.unipi.it/~luigi/netmap/ ";
/** Default `-s` of pkt-gen. */
export const DEFAULT_SRC_RANGE = "10.0.0.1";
/** Default `-d` of pkt-gen. */
export const DEFAULT_DST_RANGE = "10.1.0.1";
/** Default UDP port of pkt-gen (both ends). */
export const DEFAULT_PORT = 1234;
/** Default `-D` of pkt-gen (broadcast). */
export const DEFAULT_DST_MAC = "ff:ff:ff:ff:ff:ff";
/** `-S` default of pkt-gen when the port has no hardware address (VALE ports). */
export const DEFAULT_SRC_MAC = "00:00:00:00:00:00";

/** Thrown for malformed arguments and frames too short for the header asked for. */
export class PacketError extends Error {
  /** Create the error with its message. */
  constructor(message: string) {
    super(message);
    this.name = "PacketError";
  }
}

// ---------------------------------------------------------------------------
// MAC and IPv4 address strings

/**
 * Parse a MAC address as glibc's `ether_aton` (which netmap uses): six groups
 * of one or two hex digits separated by ':'. Throws {@link PacketError}.
 */
export function macFromString(s: string): Uint8Array {
  const m =
    /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})$/
      .exec(s.trim());
  if (!m) throw new PacketError(`invalid MAC address '${s}'`);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(m[i + 1], 16);
  return out;
}

/** Format 6 bytes at `offset` as `aa:bb:cc:dd:ee:ff`. */
export function macToString(b: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 6 > b.length) throw new PacketError("MAC address out of bounds");
  let s = "";
  for (let i = 0; i < 6; i++) {
    if (i) s += ":";
    s += b[offset + i].toString(16).padStart(2, "0");
  }
  return s;
}

/**
 * Parse a dotted-quad IPv4 address (as glibc's `inet_pton(AF_INET)`: four
 * decimal parts 0..255, no leading zeros) into a host-order u32.
 */
export function ipFromString(s: string): number {
  const parts = s.split(".");
  if (parts.length !== 4) throw new PacketError(`invalid IPv4 address '${s}'`);
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) throw new PacketError(`invalid IPv4 address '${s}'`);
    const v = Number(p);
    if (v > 255) throw new PacketError(`invalid IPv4 address '${s}'`);
    n = n * 256 + v;
  }
  return n >>> 0;
}

/** Format a host-order u32 as a dotted quad. */
export function ipToString(n: number): string {
  n = n >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function macBytes(mac: string | Uint8Array): Uint8Array {
  if (typeof mac === "string") return macFromString(mac);
  if (mac.length !== 6) throw new PacketError(`a MAC address has 6 bytes, got ${mac.length}`);
  return mac;
}

function ipNumber(ip: string | number): number {
  if (typeof ip === "string") return ipFromString(ip);
  if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) {
    throw new PacketError(`invalid IPv4 address ${ip}`);
  }
  return ip >>> 0;
}

/** True for ff:ff:ff:ff:ff:ff (a string, or 6 bytes at `offset`, e.g. a frame's destination). */
export function isBroadcast(mac: string | Uint8Array, offset = 0): boolean {
  const b = typeof mac === "string" ? macFromString(mac) : mac;
  if (offset < 0 || offset + 6 > b.length) return false;
  for (let i = 0; i < 6; i++) if (b[offset + i] !== 0xff) return false;
  return true;
}

/** True when the group bit (lowest bit of the first byte) is set; broadcast included. */
export function isMulticast(mac: string | Uint8Array, offset = 0): boolean {
  const b = typeof mac === "string" ? macFromString(mac) : mac;
  if (offset < 0 || offset + 6 > b.length) return false;
  return (b[offset] & 1) === 1;
}

// ---------------------------------------------------------------------------
// checksums

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * One's-complement sum (folded to 16 bits) of `data[start, end)` read as
 * big-endian 16-bit words, an odd last byte padded with zero; `initial` is
 * added (e.g. a pseudo-header sum). The Internet checksum is `~sum & 0xffff`.
 */
export function onesSum(
  data: Uint8Array,
  start = 0,
  end: number = data.length,
  initial = 0,
): number {
  let sum = initial;
  let i = start;
  const even = start + ((end - start) & ~1);
  let n = 0;
  for (; i < even; i += 2) {
    sum += (data[i] << 8) | data[i + 1];
    if (++n === 0x8000) { // keep the sum well inside 2^53 for any length
      sum = fold(sum);
      n = 0;
    }
  }
  if (i < end) sum += data[i] << 8;
  return fold(sum);
}

/** RFC 1071 Internet checksum of `data[start, end)`: `~onesSum & 0xffff`. */
export function internetChecksum(data: Uint8Array, start = 0, end: number = data.length): number {
  return ~onesSum(data, start, end) & 0xffff;
}

function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

function need(frame: Uint8Array, end: number, what: string): void {
  if (end > frame.length) {
    throw new PacketError(`${what}: frame has ${frame.length} bytes, need ${end}`);
  }
}

/**
 * The IPv4 header checksum the header at `ipOffset` should carry (computed
 * with the checksum field taken as zero; header length from IHL).
 */
export function ipChecksum(frame: Uint8Array, ipOffset: number = L3_OFFSET): number {
  need(frame, ipOffset + IPV4_HLEN, "IPv4 header");
  const hl = (frame[ipOffset] & 0x0f) * 4;
  if (hl < IPV4_HLEN) throw new PacketError(`IPv4 header length ${hl} < 20`);
  need(frame, ipOffset + hl, "IPv4 header");
  const sum = onesSum(frame, ipOffset, ipOffset + hl) + (~rd16(frame, ipOffset + 10) & 0xffff);
  return ~fold(sum) & 0xffff;
}

/**
 * The UDP checksum the UDP datagram after the IPv4 header at `ipOffset`
 * should carry: pseudo-header (source, destination, protocol 17, UDP length
 * from the UDP header) + UDP header (checksum field as zero) + payload. A
 * computed 0 is returned as 0xffff (RFC 768).
 */
export function udpChecksum(frame: Uint8Array, ipOffset: number = L3_OFFSET): number {
  need(frame, ipOffset + IPV4_HLEN, "IPv4 header");
  const l4 = ipOffset + (frame[ipOffset] & 0x0f) * 4;
  need(frame, l4 + UDP_HLEN, "UDP header");
  const ulen = rd16(frame, l4 + 4);
  if (ulen < UDP_HLEN) throw new PacketError(`UDP length ${ulen} < 8`);
  need(frame, l4 + ulen, "UDP datagram");
  let sum = onesSum(frame, ipOffset + 12, ipOffset + 20, IPPROTO_UDP + ulen);
  sum = onesSum(frame, l4, l4 + ulen, sum) + (~rd16(frame, l4 + 6) & 0xffff);
  const c = ~fold(sum) & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** True when the IPv4 header checksum at `ipOffset` is right. */
export function verifyIpChecksum(frame: Uint8Array, ipOffset: number = L3_OFFSET): boolean {
  return ipChecksum(frame, ipOffset) === rd16(frame, ipOffset + 10);
}

/** True when the UDP checksum is right, or 0 (not used). */
export function verifyUdpChecksum(frame: Uint8Array, ipOffset: number = L3_OFFSET): boolean {
  const l4 = ipOffset + (frame[ipOffset] & 0x0f) * 4;
  need(frame, l4 + UDP_HLEN, "UDP header");
  const cur = rd16(frame, l4 + 6);
  if (cur === 0) return true;
  const want = udpChecksum(frame, ipOffset);
  // 0x0000 and 0xffff are the same one's-complement number
  return cur === want || (want === 0xffff && cur === 0);
}

/** Recompute the IPv4 and (if not 0 / unused) UDP checksums in place. */
export function fixChecksums(frame: Uint8Array, ipOffset: number = L3_OFFSET): void {
  wr16(frame, ipOffset + 10, ipChecksum(frame, ipOffset));
  if (frame[ipOffset + 9] === IPPROTO_UDP) {
    const l4 = ipOffset + (frame[ipOffset] & 0x0f) * 4;
    if (rd16(frame, l4 + 6) !== 0) wr16(frame, l4 + 6, udpChecksum(frame, ipOffset));
  }
}

/**
 * RFC 1624 eqn. 3 incremental update: the checksum `hc` after a 16-bit word of
 * the covered data changed from `oldWord` to `newWord`: `~(~hc + ~m + m')`.
 */
export function checksumAdjust(hc: number, oldWord: number, newWord: number): number {
  return ~fold((~hc & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** {@link checksumAdjust} for a 32-bit field (two words), e.g. an IPv4 address. */
export function checksumAdjust32(hc: number, oldValue: number, newValue: number): number {
  return ~fold(
    (~hc & 0xffff) + (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) +
      ((newValue >>> 16) & 0xffff) + (newValue & 0xffff),
  ) & 0xffff;
}

// ---------------------------------------------------------------------------
// building

/** What {@link buildUdpFrame} puts in the frame. Defaults are pkt-gen's. */
export interface UdpFrameOptions {
  /** Total frame length without FCS, 60..65535 (default 60). */
  length?: number;
  /** Allow 42..59 bytes (a runt: headers and a short payload). */
  allowRunt?: boolean;
  /** Default 00:00:00:00:00:00 (pkt-gen on a VALE port). */
  srcMac?: string | Uint8Array;
  /** Default ff:ff:ff:ff:ff:ff. */
  dstMac?: string | Uint8Array;
  /** Dotted quad or host-order u32; default 10.0.0.1. */
  srcIp?: string | number;
  /** Default 10.1.0.1. */
  dstIp?: string | number;
  /** Default 1234. */
  srcPort?: number;
  /** Default 1234. */
  dstPort?: number;
  /** Pattern repeated over the UDP payload; default {@link NETMAP_PAYLOAD}. */
  payload?: string | Uint8Array;
  /** Default 0x10 (IPTOS_LOWDELAY). */
  tos?: number;
  /** Default 64. */
  ttl?: number;
  /** Default 0. */
  id?: number;
  /** Set DF (default true). */
  dontFragment?: boolean;
  /** Compute the UDP checksum (default true); false leaves 0 ("no checksum"). */
  udpChecksum?: boolean;
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new PacketError(`invalid ${what} ${p}`);
  return p;
}

/**
 * Build pkt-gen's frame: Ethernet (type 0x0800) + IPv4 + UDP + payload text,
 * with both checksums valid. Throws {@link PacketError} on bad options.
 */
export function buildUdpFrame(opts: UdpFrameOptions = {}): Uint8Array {
  const len = opts.length ?? DEFAULT_FRAME_LEN;
  const min = opts.allowRunt ? MIN_HEADERS_LEN : MIN_FRAME_LEN;
  if (!Number.isInteger(len) || len < min || len > MAX_FRAME_LEN) {
    throw new PacketError(`frame length ${len} out of range [${min}..${MAX_FRAME_LEN}]`);
  }
  const f = new Uint8Array(len);
  f.set(macBytes(opts.dstMac ?? DEFAULT_DST_MAC), 0);
  f.set(macBytes(opts.srcMac ?? DEFAULT_SRC_MAC), 6);
  wr16(f, 12, ETHERTYPE_IPV4);

  const ip = L3_OFFSET;
  f[ip] = 0x45;
  f[ip + 1] = (opts.tos ?? 0x10) & 0xff;
  wr16(f, ip + 2, len - ETH_HLEN);
  wr16(f, ip + 4, (opts.id ?? 0) & 0xffff);
  wr16(f, ip + 6, (opts.dontFragment ?? true) ? 0x4000 : 0);
  f[ip + 8] = (opts.ttl ?? 64) & 0xff;
  f[ip + 9] = IPPROTO_UDP;
  wr32(f, ip + 12, ipNumber(opts.srcIp ?? DEFAULT_SRC_RANGE));
  wr32(f, ip + 16, ipNumber(opts.dstIp ?? DEFAULT_DST_RANGE));
  wr16(f, ip + 10, ipChecksum(f, ip));

  const u = L4_OFFSET;
  wr16(f, u, checkPort(opts.srcPort ?? DEFAULT_PORT, "source port"));
  wr16(f, u + 2, checkPort(opts.dstPort ?? DEFAULT_PORT, "destination port"));
  wr16(f, u + 4, len - L4_OFFSET);

  const p = opts.payload ?? NETMAP_PAYLOAD;
  const pat = typeof p === "string" ? new TextEncoder().encode(p) : p;
  if (pat.length > 0) {
    for (let o = PAYLOAD_OFFSET; o < len; o += pat.length) {
      f.set(pat.subarray(0, Math.min(pat.length, len - o)), o);
    }
  }
  if (opts.udpChecksum ?? true) wr16(f, u + 6, udpChecksum(f, ip));
  return f;
}

// ---------------------------------------------------------------------------
// parsing frames

/** Fields of an Ethernet header (802.1Q / 802.1ad tags are skipped). */
export interface EthernetHeader {
  /** Destination MAC, aa:bb:cc:dd:ee:ff. */
  dst: string;
  /** Source MAC. */
  src: string;
  /** EtherType after any VLAN tags. */
  etherType: number;
  /** VLAN id of the outermost tag, or null. */
  vlan: number | null;
  /** Offset of the L3 header. */
  payloadOffset: number;
}

/** Parse the Ethernet header at the start of `frame`. */
export function parseEthernet(frame: Uint8Array): EthernetHeader {
  need(frame, ETH_HLEN, "Ethernet header");
  let type = rd16(frame, 12);
  let off = ETH_HLEN;
  let vlan: number | null = null;
  while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) {
    need(frame, off + 4, "VLAN tag");
    if (vlan === null) vlan = rd16(frame, off) & 0x0fff;
    type = rd16(frame, off + 2);
    off += 4;
  }
  return {
    dst: macToString(frame, 0),
    src: macToString(frame, 6),
    etherType: type,
    vlan,
    payloadOffset: off,
  };
}

/** Fields of an IPv4 header. */
export interface IPv4Header {
  /** IP version (4). */
  version: number;
  /** Header length in bytes (IHL * 4). */
  headerLength: number;
  /** Type of service byte. */
  tos: number;
  /** Total length field. */
  totalLength: number;
  /** Identification field. */
  id: number;
  /** The 3 flag bits (0b010 = DF). */
  flags: number;
  /** Fragment offset in 8-byte units. */
  fragmentOffset: number;
  /** Time to live. */
  ttl: number;
  /** Protocol number (17 = UDP). */
  protocol: number;
  /** Header checksum field. */
  checksum: number;
  /** The header checksum is right. */
  checksumValid: boolean;
  /** Source, dotted quad. */
  src: string;
  /** Destination, dotted quad. */
  dst: string;
  /** Source as a host-order u32. */
  srcNum: number;
  /** Destination as a host-order u32. */
  dstNum: number;
  /** Offset of the L4 header. */
  payloadOffset: number;
}

/** Parse the IPv4 header at `offset` (default 14). */
export function parseIPv4(frame: Uint8Array, offset: number = L3_OFFSET): IPv4Header {
  need(frame, offset + IPV4_HLEN, "IPv4 header");
  const version = frame[offset] >>> 4;
  if (version !== 4) throw new PacketError(`not IPv4 (version ${version})`);
  const hl = (frame[offset] & 0x0f) * 4;
  if (hl < IPV4_HLEN) throw new PacketError(`IPv4 header length ${hl} < 20`);
  need(frame, offset + hl, "IPv4 header");
  const fo = rd16(frame, offset + 6);
  const srcNum = rd32(frame, offset + 12);
  const dstNum = rd32(frame, offset + 16);
  return {
    version,
    headerLength: hl,
    tos: frame[offset + 1],
    totalLength: rd16(frame, offset + 2),
    id: rd16(frame, offset + 4),
    flags: fo >>> 13,
    fragmentOffset: fo & 0x1fff,
    ttl: frame[offset + 8],
    protocol: frame[offset + 9],
    checksum: rd16(frame, offset + 10),
    checksumValid: verifyIpChecksum(frame, offset),
    src: ipToString(srcNum),
    dst: ipToString(dstNum),
    srcNum,
    dstNum,
    payloadOffset: offset + hl,
  };
}

/** Fields of a UDP header. */
export interface UdpHeader {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** UDP length field (header + payload). */
  length: number;
  /** Checksum field (0 = unused). */
  checksum: number;
  /** True when right or 0 (unused); false also when the datagram is cut short. */
  checksumValid: boolean;
  /** Offset of the UDP payload. */
  payloadOffset: number;
}

/** Parse the UDP header following the IPv4 header at `ipOffset` (default 14). */
export function parseUDP(frame: Uint8Array, ipOffset: number = L3_OFFSET): UdpHeader {
  const ip = parseIPv4(frame, ipOffset);
  if (ip.protocol !== IPPROTO_UDP) throw new PacketError(`not UDP (protocol ${ip.protocol})`);
  const u = ip.payloadOffset;
  need(frame, u + UDP_HLEN, "UDP header");
  const length = rd16(frame, u + 4);
  let ok = false;
  if (length >= UDP_HLEN && u + length <= frame.length) ok = verifyUdpChecksum(frame, ipOffset);
  return {
    srcPort: rd16(frame, u),
    dstPort: rd16(frame, u + 2),
    length,
    checksum: rd16(frame, u + 6),
    checksumValid: ok,
    payloadOffset: u + UDP_HLEN,
  };
}

// ---------------------------------------------------------------------------
// pkt-gen address arguments

/** An IPv4 address and port range as netmap's `struct ip_range` (host order, inclusive). */
export interface IpRange {
  /** First address, host-order u32. */
  start: number;
  /** Last address (inclusive). */
  end: number;
  /** First port. */
  port0: number;
  /** Last port (inclusive). */
  port1: number;
}

/** strtol(s, NULL, 0) on a whole string: decimal, 0x hex or leading-0 octal. */
function parsePortNumber(s: string, arg: string): number {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s.slice(2), 16);
  else if (/^0[0-7]*$/.test(s)) v = s.length > 1 ? parseInt(s.slice(1), 8) : 0;
  else if (/^[1-9][0-9]*$/.test(s)) v = parseInt(s, 10);
  else throw new PacketError(`invalid port '${s}' in '${arg}'`);
  if (v > 0xffff) throw new PacketError(`port ${s} out of range in '${arg}'`);
  return v;
}

function parseIpPort(s: string, arg: string): { ip: number; port: number | null } {
  const c = s.indexOf(":");
  const ipPart = c < 0 ? s : s.slice(0, c);
  const ip = (() => {
    try {
      return ipFromString(ipPart);
    } catch {
      throw new PacketError(`invalid IPv4 address '${ipPart}' in '${arg}'`);
    }
  })();
  return { ip, port: c < 0 ? null : parsePortNumber(s.slice(c + 1), arg) };
}

/**
 * Parse pkt-gen's `-s` / `-d` argument `ip[:port][-ip[:port]]` exactly as
 * netmap's `extract_ip_range()`: the first '-' splits start and end; the start
 * port defaults to 1234, the end port to the start port, the end address to the
 * start address; reversed address or port bounds are swapped. Ports accept
 * strtol base-0 forms (decimal, 0x.., 0..). Unlike netmap (which sends garbage
 * or truncates) an invalid address or a port above 65535 throws {@link PacketError}.
 */
export function parseIpRange(arg: string): IpRange {
  const dash = arg.indexOf("-");
  const a = parseIpPort(dash < 0 ? arg : arg.slice(0, dash), arg);
  const port0 = a.port ?? DEFAULT_PORT;
  let start = a.ip, end = a.ip, p0 = port0, p1 = port0;
  if (dash >= 0) {
    const b = parseIpPort(arg.slice(dash + 1), arg);
    end = b.ip;
    p1 = b.port ?? port0;
    if (start > end) [start, end] = [end, start];
  }
  if (p0 > p1) [p0, p1] = [p1, p0];
  return { start, end, port0: p0, port1: p1 };
}

/**
 * Parse pkt-gen's `-S` / `-D` argument. netmap accepts a single MAC address
 * (its MAC range code is compiled out), so ranges are rejected.
 */
export function parseMacArg(arg: string): Uint8Array {
  if (arg.includes("-")) {
    throw new PacketError(`invalid MAC address '${arg}' (pkt-gen takes no MAC ranges)`);
  }
  return macFromString(arg);
}

/** The address fields pkt-gen varies, host order. */
export interface Addresses {
  /** Source IPv4, host-order u32. */
  srcIp: number;
  /** Source UDP port. */
  srcPort: number;
  /** Destination IPv4, host-order u32. */
  dstIp: number;
  /** Destination UDP port. */
  dstPort: number;
}

/** How addresses change from packet to packet; see the module doc. */
export interface AddressCycle {
  /** Source address/port range (`-s`). */
  src: IpRange;
  /** Destination address/port range (`-d`). */
  dst: IpRange;
  /** `-z` */
  randomSrc: boolean;
  /** `-Z` */
  randomDst: boolean;
  /** Seed of the counter-based random generator (u64). */
  seed: bigint;
  /** Offset of the IPv4 header (14). */
  l3Offset: number;
  /** Offset of the UDP header (34). */
  l4Offset: number;
  /** Keep the UDP checksum valid (false when the template carries 0). */
  udpChecksum: boolean;
}

/** Options of {@link makeCycle}. */
export interface CycleOptions {
  /** `-z`: random source IP and port. */
  randomSrc?: boolean;
  /** `-Z`: random destination IP and port. */
  randomDst?: boolean;
  /** Seed of the counter-based generator (default 0). */
  seed?: bigint | number;
  /** Offset of the IPv4 header (default 14). */
  l3Offset?: number;
  /** Offset of the UDP header (default 34). */
  l4Offset?: number;
  /** Keep the UDP checksum valid (default true). */
  udpChecksum?: boolean;
}

function checkRange(r: IpRange, what: string): IpRange {
  const u32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  const u16 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffff;
  if (!u32(r.start) || !u32(r.end) || r.start > r.end) {
    throw new PacketError(`invalid ${what} address range`);
  }
  if (!u16(r.port0) || !u16(r.port1) || r.port0 > r.port1) {
    throw new PacketError(`invalid ${what} port range`);
  }
  return { start: r.start, end: r.end, port0: r.port0, port1: r.port1 };
}

/** Build an {@link AddressCycle} from parsed ranges (strings are parsed with {@link parseIpRange}). */
export function makeCycle(
  src: IpRange | string = DEFAULT_SRC_RANGE,
  dst: IpRange | string = DEFAULT_DST_RANGE,
  opts: CycleOptions = {},
): AddressCycle {
  return {
    src: checkRange(typeof src === "string" ? parseIpRange(src) : src, "source"),
    dst: checkRange(typeof dst === "string" ? parseIpRange(dst) : dst, "destination"),
    randomSrc: opts.randomSrc ?? false,
    randomDst: opts.randomDst ?? false,
    seed: BigInt.asUintN(64, BigInt(opts.seed ?? 0)),
    l3Offset: opts.l3Offset ?? L3_OFFSET,
    l4Offset: opts.l4Offset ?? L4_OFFSET,
    udpChecksum: opts.udpChecksum ?? true,
  };
}

/** Number of distinct packets before the sequence repeats (1 when nothing varies; random fields count 1). */
export function cycleLength(c: AddressCycle): bigint {
  let n = 1n;
  if (!c.randomSrc) {
    n *= BigInt(c.src.port1 - c.src.port0 + 1) * BigInt(c.src.end - c.src.start + 1);
  }
  if (!c.randomDst) {
    n *= BigInt(c.dst.port1 - c.dst.port0 + 1) * BigInt(c.dst.end - c.dst.start + 1);
  }
  return n;
}

/** True when some field changes between packets (the C flag VALE_CYCLE_ACTIVE). */
export function cycleIsActive(c: AddressCycle): boolean {
  return c.randomSrc || c.randomDst || cycleLength(c) > 1n;
}

/** The template's addresses: every field at the start of its range (packet 0). */
export function cycleStart(c: AddressCycle): Addresses {
  return { srcIp: c.src.start, srcPort: c.src.port0, dstIp: c.dst.start, dstPort: c.dst.port0 };
}

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * The counter-based random value for packet `i` and `lane` (0 src IP, 1 src
 * port, 2 dst IP, 3 dst port), identical to `cycle_rand32()` in the module doc.
 */
export function cycleRandom32(seed: bigint, i: bigint | number, lane: number): number {
  const ii = BigInt.asUintN(64, BigInt(i));
  const s = BigInt.asUintN(64, seed);
  const iLo = Number(ii & 0xffffffffn), iHi = Number(ii >> 32n);
  const sLo = Number(s & 0xffffffffn), sHi = Number(s >> 32n);
  const k = Math.imul(lane + 1, 0x9e3779b9);
  return lowbias32((sLo ^ lowbias32((iLo ^ lowbias32((iHi ^ sHi ^ k) >>> 0)) >>> 0)) >>> 0);
}

/**
 * netmap's `update_ip()`: the addresses of the packet after `cur`.
 * `nextIndex` (the number of the packet being produced) feeds the random
 * generator for `-z` / `-Z` and is ignored otherwise.
 */
export function nextAddresses(
  c: AddressCycle,
  cur: Addresses,
  nextIndex: bigint | number = 0,
): Addresses {
  const n = { ...cur };
  if (c.randomSrc) {
    n.srcIp = cycleRandom32(c.seed, nextIndex, 0);
    n.srcPort = cycleRandom32(c.seed, nextIndex, 1) & 0xffff;
  } else {
    if (n.srcPort < c.src.port1) {
      n.srcPort++;
      return n;
    }
    n.srcPort = c.src.port0;
    if (n.srcIp < c.src.end) {
      n.srcIp++;
      return n;
    }
    n.srcIp = c.src.start;
  }
  if (c.randomDst) {
    n.dstIp = cycleRandom32(c.seed, nextIndex, 2);
    n.dstPort = cycleRandom32(c.seed, nextIndex, 3) & 0xffff;
  } else {
    if (n.dstPort < c.dst.port1) {
      n.dstPort++;
      return n;
    }
    n.dstPort = c.dst.port0;
    if (n.dstIp < c.dst.end) {
      n.dstIp++;
      return n;
    }
    n.dstIp = c.dst.start;
  }
  return n;
}

/**
 * Addresses of packet `i` (0 = the template), equal to applying
 * {@link nextAddresses} i times from {@link cycleStart}.
 */
export function addressesAt(c: AddressCycle, i: bigint | number): Addresses {
  let k = BigInt(i);
  if (k < 0n) throw new PacketError(`negative packet index ${i}`);
  const a = cycleStart(c);
  if (k === 0n) return a;
  const idx = k;
  const digit = (lo: number, hi: number): number => {
    const n = BigInt(hi - lo + 1);
    const d = Number(k % n);
    k /= n;
    return lo + d;
  };
  if (c.randomSrc) {
    a.srcIp = cycleRandom32(c.seed, idx, 0);
    a.srcPort = cycleRandom32(c.seed, idx, 1) & 0xffff;
  } else {
    a.srcPort = digit(c.src.port0, c.src.port1);
    a.srcIp = digit(c.src.start, c.src.end);
  }
  if (c.randomDst) {
    a.dstIp = cycleRandom32(c.seed, idx, 2);
    a.dstPort = cycleRandom32(c.seed, idx, 3) & 0xffff;
  } else {
    a.dstPort = digit(c.dst.port0, c.dst.port1);
    a.dstIp = digit(c.dst.start, c.dst.end);
  }
  return a;
}

/** Iterate the addresses of packets `from`, `from+1`, ... (stepping, no BigInt per packet when not random). */
export function* cycleAddresses(
  c: AddressCycle,
  from: bigint | number = 0,
): Generator<Addresses, never, undefined> {
  let i = BigInt(from);
  let cur = addressesAt(c, i);
  for (;;) {
    yield cur;
    i++;
    cur = nextAddresses(c, cur, i);
  }
}

/** Read the four varying fields from a frame (IPv4 at `l3Offset`, UDP at `l4Offset`). */
export function readAddresses(
  frame: Uint8Array,
  l3Offset: number = L3_OFFSET,
  l4Offset: number = L4_OFFSET,
): Addresses {
  need(frame, Math.max(l3Offset + IPV4_HLEN, l4Offset + UDP_HLEN), "IPv4/UDP headers");
  return {
    srcIp: rd32(frame, l3Offset + 12),
    dstIp: rd32(frame, l3Offset + 16),
    srcPort: rd16(frame, l4Offset),
    dstPort: rd16(frame, l4Offset + 2),
  };
}

/**
 * Store `next` into the frame, touching only fields that differ, and adjust
 * the IPv4 and UDP checksums incrementally (RFC 1624); a UDP checksum of 0
 * (unused) stays 0 unless `udpChecksum` is false, in which case it is not
 * touched at all. Returns a bitmask of changed fields
 * (1 src IP, 2 src port, 4 dst IP, 8 dst port).
 */
export function writeAddresses(
  frame: Uint8Array,
  next: Addresses,
  l3Offset: number = L3_OFFSET,
  l4Offset: number = L4_OFFSET,
  udpChecksum = true,
): number {
  const old = readAddresses(frame, l3Offset, l4Offset);
  let ipDelta = 0, udpDelta = 0, changed = 0;
  const d32 = (o: number, n: number) =>
    (~(o >>> 16) & 0xffff) + (~o & 0xffff) + ((n >>> 16) & 0xffff) + (n & 0xffff);
  if (old.srcIp !== next.srcIp) {
    const d = d32(old.srcIp, next.srcIp >>> 0);
    ipDelta += d;
    udpDelta += d;
    wr32(frame, l3Offset + 12, next.srcIp);
    changed |= 1;
  }
  if (old.dstIp !== next.dstIp) {
    const d = d32(old.dstIp, next.dstIp >>> 0);
    ipDelta += d;
    udpDelta += d;
    wr32(frame, l3Offset + 16, next.dstIp);
    changed |= 4;
  }
  if (old.srcPort !== next.srcPort) {
    udpDelta += (~old.srcPort & 0xffff) + (next.srcPort & 0xffff);
    wr16(frame, l4Offset, next.srcPort);
    changed |= 2;
  }
  if (old.dstPort !== next.dstPort) {
    udpDelta += (~old.dstPort & 0xffff) + (next.dstPort & 0xffff);
    wr16(frame, l4Offset + 2, next.dstPort);
    changed |= 8;
  }
  if (ipDelta) {
    const hc = rd16(frame, l3Offset + 10);
    wr16(frame, l3Offset + 10, ~fold((~hc & 0xffff) + ipDelta) & 0xffff);
  }
  if (udpDelta && udpChecksum) {
    const hc = rd16(frame, l4Offset + 6);
    if (hc !== 0) {
      const v = ~fold((~hc & 0xffff) + udpDelta) & 0xffff;
      wr16(frame, l4Offset + 6, v === 0 ? 0xffff : v);
    }
  }
  return changed;
}

/**
 * netmap's `update_addresses()` on a frame: read its current addresses,
 * compute packet `nextIndex`'s with {@link nextAddresses}, store them with
 * {@link writeAddresses}. Returns the new addresses.
 */
export function advanceFrame(
  frame: Uint8Array,
  c: AddressCycle,
  nextIndex: bigint | number = 0,
): Addresses {
  const next = nextAddresses(c, readAddresses(frame, c.l3Offset, c.l4Offset), nextIndex);
  writeAddresses(frame, next, c.l3Offset, c.l4Offset, c.udpChecksum);
  return next;
}

/** Version word of the flat cycle structure. */
export const CYCLE_VERSION = 1;
/** Number of u32 words of the flat cycle structure (64 bytes). */
export const CYCLE_WORDS = 16;
/** Flag: `-z`, random source IP/port. */
export const CYCLE_RANDOM_SRC = 0x1;
/** Flag: `-Z`, random destination IP/port. */
export const CYCLE_RANDOM_DST = 0x2;
/** Flag: the template's UDP checksum is in use and must be kept valid. */
export const CYCLE_UDP_CSUM = 0x4;
/** Flag: some field changes between packets. */
export const CYCLE_ACTIVE = 0x8;

/** Word indices of the flat cycle structure (`struct vale_addr_cycle`). */
export const CycleWord: {
  readonly version: 0;
  readonly flags: 1;
  readonly l3Off: 2;
  readonly l4Off: 3;
  readonly srcIp0: 4;
  readonly srcIp1: 5;
  readonly srcPort0: 6;
  readonly srcPort1: 7;
  readonly dstIp0: 8;
  readonly dstIp1: 9;
  readonly dstPort0: 10;
  readonly dstPort1: 11;
  readonly seedLo: 12;
  readonly seedHi: 13;
} = {
  version: 0,
  flags: 1,
  l3Off: 2,
  l4Off: 3,
  srcIp0: 4,
  srcIp1: 5,
  srcPort0: 6,
  srcPort1: 7,
  dstIp0: 8,
  dstIp1: 9,
  dstPort0: 10,
  dstPort1: 11,
  seedLo: 12,
  seedHi: 13,
} as const;

/**
 * Flatten a cycle into `struct vale_addr_cycle` (16 u32 words, host byte
 * order; pass the array to C as a `buffer` argument).
 */
export function encodeCycle(c: AddressCycle): Uint32Array<ArrayBuffer> {
  const w = new Uint32Array(CYCLE_WORDS);
  w[CycleWord.version] = CYCLE_VERSION;
  w[CycleWord.flags] = (c.randomSrc ? CYCLE_RANDOM_SRC : 0) |
    (c.randomDst ? CYCLE_RANDOM_DST : 0) |
    (c.udpChecksum ? CYCLE_UDP_CSUM : 0) |
    (cycleIsActive(c) ? CYCLE_ACTIVE : 0);
  w[CycleWord.l3Off] = c.l3Offset;
  w[CycleWord.l4Off] = c.l4Offset;
  w[CycleWord.srcIp0] = c.src.start;
  w[CycleWord.srcIp1] = c.src.end;
  w[CycleWord.srcPort0] = c.src.port0;
  w[CycleWord.srcPort1] = c.src.port1;
  w[CycleWord.dstIp0] = c.dst.start;
  w[CycleWord.dstIp1] = c.dst.end;
  w[CycleWord.dstPort0] = c.dst.port0;
  w[CycleWord.dstPort1] = c.dst.port1;
  w[CycleWord.seedLo] = Number(c.seed & 0xffffffffn);
  w[CycleWord.seedHi] = Number((c.seed >> 32n) & 0xffffffffn);
  return w;
}

/** Inverse of {@link encodeCycle}; throws {@link PacketError} on a wrong version or bad ranges. */
export function decodeCycle(w: Uint32Array): AddressCycle {
  if (w.length < CYCLE_WORDS || w[CycleWord.version] !== CYCLE_VERSION) {
    throw new PacketError("not a version 1 address cycle structure");
  }
  const f = w[CycleWord.flags];
  return {
    src: checkRange({
      start: w[CycleWord.srcIp0],
      end: w[CycleWord.srcIp1],
      port0: w[CycleWord.srcPort0],
      port1: w[CycleWord.srcPort1],
    }, "source"),
    dst: checkRange({
      start: w[CycleWord.dstIp0],
      end: w[CycleWord.dstIp1],
      port0: w[CycleWord.dstPort0],
      port1: w[CycleWord.dstPort1],
    }, "destination"),
    randomSrc: (f & CYCLE_RANDOM_SRC) !== 0,
    randomDst: (f & CYCLE_RANDOM_DST) !== 0,
    udpChecksum: (f & CYCLE_UDP_CSUM) !== 0,
    seed: (BigInt(w[CycleWord.seedHi]) << 32n) | BigInt(w[CycleWord.seedLo]),
    l3Offset: w[CycleWord.l3Off],
    l4Offset: w[CycleWord.l4Off],
  };
}

/** pkt-gen's address-related options, as given on its command line. */
export interface PktGenAddressOptions {
  /** `-s`, default "10.0.0.1" (port 1234). */
  src?: string;
  /** `-d`, default "10.1.0.1" (port 1234). */
  dst?: string;
  /** `-S`, default 00:00:00:00:00:00. */
  srcMac?: string;
  /** `-D`, default ff:ff:ff:ff:ff:ff. */
  dstMac?: string;
  /** `-z` */
  randomSrc?: boolean;
  /** `-Z` */
  randomDst?: boolean;
  /** `-l`, default 60. */
  length?: number;
  /** Seed for `-z`/`-Z` (netmap seeds from the time; pass e.g. Date.now()). */
  seed?: bigint | number;
  /** Payload pattern, default {@link NETMAP_PAYLOAD}. */
  payload?: string | Uint8Array;
}

/** Everything the pkt-gen hot loop needs. */
export interface PktGenTemplate {
  /** Packet 0. */
  frame: Uint8Array;
  /** How the addresses cycle. */
  cycle: AddressCycle;
  /** `encodeCycle(cycle)` for C. */
  flat: Uint32Array<ArrayBuffer>;
  /** `-S` as bytes. */
  srcMac: Uint8Array;
  /** `-D` as bytes. */
  dstMac: Uint8Array;
}

/** Parse pkt-gen's address options and build the template frame and cycle. */
export function pktgenTemplate(opts: PktGenAddressOptions = {}): PktGenTemplate {
  const srcMac = parseMacArg(opts.srcMac ?? DEFAULT_SRC_MAC);
  const dstMac = parseMacArg(opts.dstMac ?? DEFAULT_DST_MAC);
  const cycle = makeCycle(opts.src ?? DEFAULT_SRC_RANGE, opts.dst ?? DEFAULT_DST_RANGE, {
    randomSrc: opts.randomSrc,
    randomDst: opts.randomDst,
    seed: opts.seed,
  });
  const a = cycleStart(cycle);
  const frame = buildUdpFrame({
    length: opts.length,
    srcMac,
    dstMac,
    srcIp: a.srcIp,
    dstIp: a.dstIp,
    srcPort: a.srcPort,
    dstPort: a.dstPort,
    payload: opts.payload,
  });
  return { frame, cycle, flat: encodeCycle(cycle), srcMac, dstMac };
}

// ---------------------------------------------------------------------------
// payload patches, ping/pong, txseq

/**
 * Write `bytes` at `offset` inside the UDP datagram that follows the IPv4
 * header at `ipOffset`, adjusting the UDP checksum incrementally (left alone
 * when 0 / unused).
 */
export function patchUdpPayload(
  frame: Uint8Array,
  offset: number,
  bytes: Uint8Array,
  ipOffset: number = L3_OFFSET,
): void {
  const l4 = ipOffset + (frame[ipOffset] & 0x0f) * 4;
  need(frame, offset + bytes.length, "payload patch");
  if (offset < l4 + UDP_HLEN) throw new PacketError("payload patch overlaps the UDP header");
  const hc = rd16(frame, l4 + 6);
  // even-aligned span relative to the UDP header so words line up
  const s = l4 + ((offset - l4) & ~1);
  const e = Math.min(l4 + ((offset + bytes.length - l4 + 1) & ~1), frame.length);
  const before = onesSum(frame, s, e);
  frame.set(bytes, offset);
  if (hc === 0) return;
  const after = onesSum(frame, s, e);
  const v = ~fold((~hc & 0xffff) + (~before & 0xffff) + after) & 0xffff;
  wr16(frame, l4 + 6, v === 0 ? 0xffff : v);
}

/** Offset of ping's sequence number (u32, little endian = netmap's host order). */
export const PING_SEQ_OFFSET = 42;
/** Offset of ping's timestamp seconds (u32, little endian). */
export const PING_SEC_OFFSET = 46;
/** Offset of ping's timestamp nanoseconds (u32, little endian). */
export const PING_NSEC_OFFSET = 50;
/** Bytes of the frame ping needs (14 + 20 + 8 + 12). */
export const PING_MIN_LEN = 54;

/** What ping writes into the UDP payload. */
export interface PingStamp {
  /** Low 32 bits of the packet count. */
  seq: number;
  /** CLOCK_REALTIME seconds, truncated to 32 bits. */
  sec: number;
  /** Nanoseconds. */
  nsec: number;
}

/**
 * Stamp a ping frame as netmap's `ping_body()`: at UDP payload offset 0 the
 * sequence number, at 4 `struct tstamp { u32 sec; u32 nsec; }`, all in host
 * byte order (little endian on every platform we run on). netmap leaves the
 * UDP checksum stale; we fix it incrementally unless `updateChecksum` is false.
 */
export function encodePing(
  frame: Uint8Array,
  seq: number,
  sec: number,
  nsec: number,
  updateChecksum = true,
): void {
  need(frame, PING_MIN_LEN, "ping payload");
  const b = new Uint8Array(12);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, seq >>> 0, true);
  dv.setUint32(4, sec >>> 0, true);
  dv.setUint32(8, nsec >>> 0, true);
  if (updateChecksum) patchUdpPayload(frame, PING_SEQ_OFFSET, b);
  else frame.set(b, PING_SEQ_OFFSET);
}

/** Read what {@link encodePing} wrote. */
export function decodePing(frame: Uint8Array): PingStamp {
  need(frame, PING_MIN_LEN, "ping payload");
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return {
    seq: dv.getUint32(PING_SEQ_OFFSET, true),
    sec: dv.getUint32(PING_SEC_OFFSET, true),
    nsec: dv.getUint32(PING_NSEC_OFFSET, true),
  };
}

/** Round-trip time in ns of a returned ping, as netmap computes it (seconds modulo 2^32). */
export function pingRttNs(stamp: PingStamp, nowSec: number, nowNsec: number): number {
  const ds = ((nowSec >>> 0) - stamp.sec) >>> 0;
  return ds * 1e9 + (nowNsec - stamp.nsec);
}

/**
 * Write txseq's sequence number (u32 big endian at UDP payload offset 0) and
 * fix the UDP checksum incrementally, as netmap's `txseq_body()`.
 */
export function encodeTxSeq(frame: Uint8Array, seq: number): void {
  need(frame, PAYLOAD_OFFSET + 4, "txseq payload");
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, seq >>> 0, false);
  patchUdpPayload(frame, PAYLOAD_OFFSET, b);
}

/** Read txseq's sequence number (as netmap's `rxseq_body()`). */
export function decodeTxSeq(frame: Uint8Array): number {
  need(frame, PAYLOAD_OFFSET + 4, "txseq payload");
  return rd32(frame, PAYLOAD_OFFSET);
}

/** Options of {@link swapForPong}. */
export interface PongOptions {
  /** Also swap the UDP ports (default true; netmap's pong keeps them). */
  swapPorts?: boolean;
  /** Recompute both checksums from scratch (e.g. to repair netmap ping's stale UDP checksum). */
  recomputeChecksums?: boolean;
}

/**
 * Turn a received ping into its pong, in place, and return it: swap the
 * MACs, and for IPv4 the addresses (and the UDP ports unless
 * `swapPorts: false`). Swapping leaves both checksums valid (one's-complement
 * sums commute), so they are only recomputed on request.
 */
export function swapForPong(frame: Uint8Array, opts: PongOptions = {}): Uint8Array {
  need(frame, ETH_HLEN, "Ethernet header");
  for (let i = 0; i < 6; i++) {
    const t = frame[i];
    frame[i] = frame[6 + i];
    frame[6 + i] = t;
  }
  if (rd16(frame, 12) !== ETHERTYPE_IPV4 || frame.length < L3_OFFSET + IPV4_HLEN) return frame;
  const ip = L3_OFFSET;
  for (let i = 0; i < 4; i++) {
    const t = frame[ip + 12 + i];
    frame[ip + 12 + i] = frame[ip + 16 + i];
    frame[ip + 16 + i] = t;
  }
  const l4 = ip + (frame[ip] & 0x0f) * 4;
  const isUdp = frame[ip + 9] === IPPROTO_UDP && frame.length >= l4 + UDP_HLEN;
  if (isUdp && (opts.swapPorts ?? true)) {
    for (let i = 0; i < 2; i++) {
      const t = frame[l4 + i];
      frame[l4 + i] = frame[l4 + 2 + i];
      frame[l4 + 2 + i] = t;
    }
  }
  if (opts.recomputeChecksums) {
    wr16(frame, ip + 10, ipChecksum(frame, ip));
    if (isUdp && rd16(frame, l4 + 6) !== 0) {
      const ulen = rd16(frame, l4 + 4);
      if (ulen >= UDP_HLEN && l4 + ulen <= frame.length) {
        wr16(frame, l4 + 6, udpChecksum(frame, ip));
      }
    }
  }
  return frame;
}
