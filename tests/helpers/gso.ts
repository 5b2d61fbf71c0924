// Frames for the offload tests: Ethernet (+ one 802.1Q tag), IPv4/IPv6,
// TCP/UDP, virtio-net headers, checksums; and checks of what the switch made
// of them, field by field. Built and checked here, independently of the C code.

/** virtio-net header constants (virtio spec 5.1.6). */
export const VNET = {
  F_NEEDS_CSUM: 1,
  F_DATA_VALID: 2,
  F_RSC_INFO: 4,
  GSO_NONE: 0,
  GSO_TCPV4: 1,
  GSO_UDP: 3,
  GSO_TCPV6: 4,
  GSO_UDP_L4: 5,
  GSO_ECN: 0x80,
} as const;

/** TCP flags. */
export const TCP = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 };

export const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
export const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

/** The fields of a virtio-net header. */
export interface VnetHdr {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
  numBuffers?: number;
}

/** A header of `len` (10 or 12) bytes, little endian. */
export function vnetHdr(h: VnetHdr, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  dv.setUint16(2, h.hdrLen ?? 0, true);
  dv.setUint16(4, h.gsoSize ?? 0, true);
  dv.setUint16(6, h.csumStart ?? 0, true);
  dv.setUint16(8, h.csumOffset ?? 0, true);
  if (len >= 12) dv.setUint16(10, h.numBuffers ?? 0, true);
  return b;
}

/** Decodes a header. */
export function readVnetHdr(b: Uint8Array): Required<VnetHdr> {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  return {
    flags: b[0],
    gsoType: b[1],
    hdrLen: dv.getUint16(2, true),
    gsoSize: dv.getUint16(4, true),
    csumStart: dv.getUint16(6, true),
    csumOffset: dv.getUint16(8, true),
    numBuffers: b.length >= 12 ? dv.getUint16(10, true) : 0,
  };
}

/** The ones' complement sum of bytes (not complemented), as a number < 2^16. */
export function onesSum(b: Uint8Array, start = 0): number {
  let s = start;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A recognisable payload: byte i is a function of i and the seed. */
export function payload(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff;
  return b;
}

/** What {@link buildFrame} builds. */
export interface FrameSpec {
  v6?: boolean;
  vlan?: number;
  udp?: boolean;
  data: Uint8Array;
  flags?: number;
  seq?: number;
  ipId?: number;
  /** TCP option bytes (a multiple of 4). */
  tcpOpts?: number;
  /** Leave the L4 checksum partial (the pseudo-header sum), as a sender with NEEDS_CSUM does. */
  partial?: boolean;
  /** IPv4 flags and fragment offset field (default DF). */
  frag?: number;
  /** IPv4 total length / IPv6 payload length override. */
  ipLen?: number;
  /** IP protocol override. */
  proto?: number;
  /** TCP data offset override (words). */
  doff?: number;
}

/** A built frame and where its headers are. */
export interface Built {
  frame: Uint8Array;
  l3: number;
  l4: number;
  hlen: number;
  csumOffset: number;
}

function pseudo(ip: Uint8Array, v6: boolean, proto: number, l4len: number): number {
  const addrs = v6 ? ip.subarray(8, 40) : ip.subarray(12, 20);
  return onesSum(concat(addrs, new Uint8Array([0, proto, (l4len >> 8) & 0xff, l4len & 0xff])));
}

export function buildFrame(s: FrameSpec): Built {
  const l2 = s.vlan !== undefined ? 18 : 14;
  const eth = new Uint8Array(l2);
  eth.set(MAC_B, 0);
  eth.set(MAC_A, 6);
  const et = s.v6 ? 0x86dd : 0x0800;
  if (s.vlan !== undefined) {
    eth.set([0x81, 0x00, (s.vlan >> 8) & 0x0f, s.vlan & 0xff, et >> 8, et & 0xff], 12);
  } else eth.set([et >> 8, et & 0xff], 12);
  const proto = s.proto ?? (s.udp ? 17 : 6);
  let l4h: Uint8Array;
  if (s.udp) {
    l4h = new Uint8Array(8);
    l4h.set([0x9c, 0x40, 0x13, 0x89]); // 40000 -> 5001
    const ul = 8 + s.data.length;
    l4h[4] = (ul >> 8) & 0xff;
    l4h[5] = ul & 0xff;
  } else {
    const opts = s.tcpOpts ?? 0;
    l4h = new Uint8Array(20 + opts);
    const dv = new DataView(l4h.buffer);
    dv.setUint16(0, 40000);
    dv.setUint16(2, 5001);
    dv.setUint32(4, s.seq ?? 1000);
    dv.setUint32(8, 77);
    l4h[12] = (s.doff ?? (20 + opts) / 4) << 4;
    l4h[13] = s.flags ?? TCP.ACK;
    dv.setUint16(14, 65535);
    for (let i = 0; i < opts; i++) l4h[20 + i] = 1; // NOPs
  }
  const l4len = l4h.length + s.data.length;
  let ip: Uint8Array;
  if (s.v6) {
    ip = new Uint8Array(40);
    const dv = new DataView(ip.buffer);
    dv.setUint32(0, 0x60000000);
    dv.setUint16(4, s.ipLen ?? l4len);
    ip[6] = proto;
    ip[7] = 64;
    ip.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
    ip.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 24);
  } else {
    ip = new Uint8Array(20);
    const dv = new DataView(ip.buffer);
    ip[0] = 0x45;
    dv.setUint16(2, s.ipLen ?? 20 + l4len);
    dv.setUint16(4, s.ipId ?? 0x1234);
    dv.setUint16(6, s.frag ?? 0x4000);
    ip[8] = 64;
    ip[9] = proto;
    ip.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
    dv.setUint16(10, ~onesSum(ip) & 0xffff);
  }
  const csumOffset = s.udp ? 6 : 16;
  const ps = pseudo(ip, !!s.v6, proto, l4len);
  const sum = s.partial ? ps : ~onesSum(concat(l4h, s.data), ps) & 0xffff;
  l4h[csumOffset] = (sum >> 8) & 0xff;
  l4h[csumOffset + 1] = sum & 0xff;
  const frame = concat(eth, ip, l4h, s.data);
  return {
    frame,
    l3: l2,
    l4: l2 + ip.length,
    hlen: l2 + ip.length + l4h.length,
    csumOffset,
  };
}

/** A parsed output frame. */
export interface Parsed {
  l3: number;
  l4: number;
  v6: boolean;
  vlan?: number;
  proto: number;
  ipLen: number;
  ipId: number;
  fragField: number;
  ipCsumOk: boolean;
  /** IPv6 fragment header, if any: [offset, more, ident]. */
  frag6?: [number, boolean, number];
  l4off: number;
}

const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const be32 = (b: Uint8Array, o: number) =>
  ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];
export { be16, be32 };

export function parse(f: Uint8Array): Parsed {
  let l3 = 14, et = be16(f, 12), vlan: number | undefined;
  if (et === 0x8100) {
    vlan = be16(f, 14) & 0xfff;
    et = be16(f, 16);
    l3 = 18;
  }
  if (et === 0x0800) {
    const ihl = (f[l3] & 15) * 4;
    return {
      l3,
      l4: l3 + ihl,
      l4off: l3 + ihl,
      v6: false,
      vlan,
      proto: f[l3 + 9],
      ipLen: be16(f, l3 + 2),
      ipId: be16(f, l3 + 4),
      fragField: be16(f, l3 + 6),
      ipCsumOk: onesSum(f.subarray(l3, l3 + ihl)) === 0xffff,
    };
  }
  if (et !== 0x86dd) throw new Error(`ethertype ${et.toString(16)}`);
  let proto = f[l3 + 6], l4 = l3 + 40, frag6: [number, boolean, number] | undefined;
  if (proto === 44) {
    frag6 = [be16(f, l4 + 2) & ~7, (be16(f, l4 + 2) & 1) === 1, be32(f, l4 + 4)];
    proto = f[l4];
    l4 += 8;
  }
  return {
    l3,
    l4,
    l4off: l4,
    v6: true,
    vlan,
    proto,
    ipLen: be16(f, l3 + 4),
    ipId: 0,
    fragField: 0,
    ipCsumOk: true,
    frag6,
  };
}

/** True when the TCP/UDP checksum of a whole (unfragmented) frame verifies. */
export function l4CsumOk(f: Uint8Array, p: Parsed): boolean {
  const ip = f.subarray(p.l3, p.l3 + 40);
  const l4len = f.length - p.l4;
  return onesSum(f.subarray(p.l4), pseudo(ip, p.v6, p.proto, l4len)) === 0xffff;
}

/** The checksum of a UDP datagram given separately from its IP header. */
export function udpDatagramOk(ipHdr: Uint8Array, v6: boolean, dgram: Uint8Array): boolean {
  return onesSum(dgram, pseudo(ipHdr, v6, 17, dgram.length)) === 0xffff;
}

/** Writes frames to a pcap and asks tshark, checksum validation on: per frame [ip, tcp, udp] status. */
export async function tsharkCheck(
  path: string,
  frames: Uint8Array[],
  encode: (f: Uint8Array[]) => Uint8Array,
): Promise<{ count: number; bad: number; good: number; lines: string[] }> {
  Deno.writeFileSync(path, encode(frames));
  const out = await new Deno.Command("tshark", {
    args: [
      "-n",
      "-r",
      path,
      "-o",
      "ip.check_checksum:TRUE",
      "-o",
      "tcp.check_checksum:TRUE",
      "-o",
      "udp.check_checksum:TRUE",
      "-T",
      "fields",
      "-E",
      "separator=|",
      "-e",
      "frame.number",
      "-e",
      "ip.checksum.status",
      "-e",
      "tcp.checksum.status",
      "-e",
      "udp.checksum.status",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`tshark: ${new TextDecoder().decode(out.stderr)}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean);
  let bad = 0, good = 0;
  for (const l of lines) {
    const st = l.split("|").slice(1).flatMap((x) => x.split(",")).filter(Boolean);
    bad += st.filter((x) => x === "0").length; // 0 bad, 1 good, 2 unverified
    good += st.filter((x) => x === "1").length;
  }
  return { count: lines.length, bad, good, lines };
}

/** True when tshark is installed. */
export function haveTshark(): boolean {
  try {
    return new Deno.Command("tshark", { args: ["-v"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
