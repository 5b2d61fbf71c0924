/**
 * The structs of c-src/include/io.h — `vale_io_opts` (open options), `vale_io_stats`,
 * `vale_io_info`, `vale_io_link` — with one encoder or decoder each, used by
 * lib/backends/kernel_io.ts.
 *
 * @module
 */
import { layout, Struct } from "../layout.ts";

/** Backend kinds (VIO_* in io.h). */
export const IoKind = { auto: 0, tap: 1, packet: 2, xdp: 3, vhost: 4, "vhost-client": 5 } as const;
/** Name of a backend kind. */
export type IoKindName = keyof typeof IoKind;

/** `VIO_F_*` flags of `vale_io_opts.flags`. */
export const IoFlags = {
  VIO_F_UP: 0x0001,
  VIO_F_ALLOW_DOWN: 0x0002,
  VIO_F_PROMISC: 0x0004,
  VIO_F_QDISC_BYPASS: 0x0008,
  VIO_F_SEE_OUTGOING: 0x0010,
  VIO_F_RX_V3: 0x0020,
  VIO_F_NO_CSUM_FIX: 0x0040,
  VIO_F_TAP_EXCL: 0x0100,
  VIO_F_TAP_NO_CREATE: 0x0200,
  VIO_F_TAP_PERSIST: 0x0400,
  VIO_F_TAP_VNET_HDR: 0x0800,
  VIO_F_XDP_SKB: 0x1000,
  VIO_F_XDP_DRV: 0x2000,
  VIO_F_XDP_ZEROCOPY: 0x4000,
  VIO_F_XDP_NO_SG: 0x8000,
  VIO_F_XDP_QUEUE: 0x10000,
  VIO_F_VNET_HDR: 0x20000,
  VIO_F_VHOST_OFFLOADS: 0x40000,
} as const;

/** `vale_io_opts.offloads`: set no TAP offloads (VIO_OFFLOADS_NONE). */
export const OFFLOADS_NONE = 0x80000000;
/** TUN_F_* offloads of a TAP (vale_io_info.offloads). */
export const TunOffloads = {
  csum: 0x01,
  tso4: 0x02,
  tso6: 0x04,
  tsoEcn: 0x08,
  ufo: 0x10,
  uso4: 0x20,
  uso6: 0x40,
} as const;

/** `struct vale_io_opts` (192 bytes). */
export const IO_OPTS = layout("vale_io_opts", 192, {
  flags: [0, "u32"],
  buf_size: [4, "u32"],
  rx_block_size: [8, "u32"],
  rx_blocks: [12, "u32"],
  block_tov_ms: [16, "u32"],
  tx_frames: [20, "u32"],
  xdp_frames: [24, "u32"],
  queue: [28, "u32"],
  mtu: [32, "u32"],
  vnet_hdr_len: [36, "u32"],
  offloads: [40, "u32"],
  netns: [64, "char", 128],
});

/** The numeric fields of `vale_io_opts` by C name (absent = 0), and the namespace. */
export type IoOpts = Partial<Record<Exclude<keyof typeof IO_OPTS.fields, "netns">, number>> & {
  /** Network namespace name or path (at most 127 bytes). */
  netns?: string;
};

/** Encodes open options; null if `netns` is too long. */
export function encodeIoOpts(o: IoOpts): Uint8Array<ArrayBuffer> | null {
  const s = new Struct(IO_OPTS);
  for (const [k, v] of Object.entries(o)) {
    if (k !== "netns" && v !== undefined) s.set(k as keyof typeof IO_OPTS.fields, v as number);
  }
  if (o.netns && !s.setString("netns", o.netns)) return null;
  return s.bytes;
}

/** `struct vale_io_stats` (128 bytes). */
export const IO_STATS = layout("vale_io_stats", 128, {
  rx_pkts: [0, "u64"],
  rx_bytes: [8, "u64"],
  tx_pkts: [16, "u64"],
  tx_bytes: [24, "u64"],
  rx_batches: [32, "u64"],
  tx_batches: [40, "u64"],
  rx_kernel_drops: [48, "u64"],
  rx_truncated: [56, "u64"],
  rx_oversize: [64, "u64"],
  rx_csum_fixed: [72, "u64"],
  tx_drops: [80, "u64"],
  tx_errors: [88, "u64"],
  tx_ring_full: [96, "u64"],
  kernel_freeze: [104, "u64"],
  xdp_tx_invalid: [112, "u64"],
  rx_gso: [120, "u64"],
});

/** Counters of a handle (struct vale_io_stats). */
export interface IoStats {
  /** Frames delivered to the caller. */
  rxPkts: bigint;
  /** Bytes delivered to the caller. */
  rxBytes: bigint;
  /** Frames handed to the kernel. */
  txPkts: bigint;
  /** Bytes handed to the kernel. */
  txBytes: bigint;
  /** Receive calls that returned frames (average batch = rxPkts / rxBatches). */
  rxBatches: bigint;
  /** Send calls that queued frames. */
  txBatches: bigint;
  /** The kernel could not queue to us (PACKET tp_drops; XDP rx_dropped + rx ring full). */
  rxKernelDrops: bigint;
  /** Frames the kernel cut (GSO/GRO super-frames, MTU raised after open). */
  rxTruncated: bigint;
  /** Frames needing more than 64 buffers. */
  rxOversize: bigint;
  /** Partial checksums completed in user space. */
  rxCsumFixed: bigint;
  /** Frames dropped on send: too large, bad fragment chain. */
  txDrops: bigint;
  /** Frames the kernel rejected. */
  txErrors: bigint;
  /** Send calls stopped by a full TX ring. */
  txRingFull: bigint;
  /** PACKET V3: times the kernel froze the queue (ring full). */
  kernelFreeze: bigint;
  /** XDP: TX descriptors the kernel rejected. */
  xdpTxInvalid: bigint;
  /** With a virtio-net header: frames received with a GSO type (super-frames, whole). */
  rxGso: bigint;
}

/** Decodes `vale_io_stats`. */
export function decodeIoStats(bytes: Uint8Array<ArrayBuffer>): IoStats {
  const s = new Struct(IO_STATS, bytes);
  return {
    rxPkts: s.getBig("rx_pkts"),
    rxBytes: s.getBig("rx_bytes"),
    txPkts: s.getBig("tx_pkts"),
    txBytes: s.getBig("tx_bytes"),
    rxBatches: s.getBig("rx_batches"),
    txBatches: s.getBig("tx_batches"),
    rxKernelDrops: s.getBig("rx_kernel_drops"),
    rxTruncated: s.getBig("rx_truncated"),
    rxOversize: s.getBig("rx_oversize"),
    rxCsumFixed: s.getBig("rx_csum_fixed"),
    txDrops: s.getBig("tx_drops"),
    txErrors: s.getBig("tx_errors"),
    txRingFull: s.getBig("tx_ring_full"),
    kernelFreeze: s.getBig("kernel_freeze"),
    xdpTxInvalid: s.getBig("xdp_tx_invalid"),
    rxGso: s.getBig("rx_gso"),
  };
}

/** `struct vale_io_info` (240 bytes). */
export const IO_INFO = layout("vale_io_info", 240, {
  kind: [0, "u32"],
  ifindex: [4, "u32"],
  mtu: [8, "u32"],
  max_frame: [12, "u32"],
  buf_size: [16, "u32"],
  fd: [20, "i32"],
  flags: [24, "u32"],
  vnet_hdr_len: [28, "u16"],
  offloads: [30, "u16"],
  ifname: [32, "char", 16],
  mode: [48, "char", 64],
  why: [112, "char", 128],
});

/** What a handle is (struct vale_io_info). */
export interface IoInfo {
  /** The backend in use. */
  kind: IoKindName;
  /** Interface index (in its namespace). */
  ifindex: number;
  /** MTU (at open). */
  mtu: number;
  /** Largest frame send accepts. */
  maxFrame: number;
  /** Bytes per buffer. */
  bufSize: number;
  /** fd for an event loop. */
  fd: number;
  /** Interface name (a TAP's resolved name). */
  ifname: string;
  /** e.g. "af_xdp drv copy sg queue 0", "af_packet rx v2 tx v2". */
  mode: string;
  /** With kind "auto": why this backend. */
  why: string;
  /** Bytes of virtio-net header before each frame (0: none; see KernelIoOptions.vnetHdr). */
  vnetHdrLen: number;
  /** TAP with a header: the TUN_F_* offloads the kernel accepted ({@link TunOffloads}). */
  offloads: number;
}

/** Decodes `vale_io_info`. */
export function decodeIoInfo(bytes: Uint8Array<ArrayBuffer>): IoInfo {
  const s = new Struct(IO_INFO, bytes);
  const kind = s.get("kind");
  return {
    kind: (Object.keys(IoKind) as IoKindName[]).find((k) => IoKind[k] === kind) ?? "auto",
    ifindex: s.get("ifindex"),
    mtu: s.get("mtu"),
    maxFrame: s.get("max_frame"),
    bufSize: s.get("buf_size"),
    fd: s.get("fd"),
    ifname: s.string("ifname"),
    mode: s.string("mode"),
    why: s.string("why"),
    vnetHdrLen: s.get("vnet_hdr_len"),
    offloads: s.get("offloads"),
  };
}

/** `struct vale_io_link` (64 bytes). */
export const IO_LINK = layout("vale_io_link", 64, {
  ifindex: [0, "u32"],
  flags: [4, "u32"],
  mtu: [8, "u32"],
  rx_queues: [12, "u32"],
  mac: [16, "u8", 6],
  up: [22, "u8"],
  running: [23, "u8"],
  xdp_prog_id: [24, "u32"],
});

/** Link state (struct vale_io_link). */
export interface IoLink {
  /** Interface index (in its namespace). */
  ifindex: number;
  /** IFF_* flags. */
  flags: number;
  /** MTU (at open). */
  mtu: number;
  /** RX queues in use (0: unknown). */
  rxQueues: number;
  /** MAC address, aa:bb:cc:dd:ee:ff. */
  mac: string;
  /** Administratively up. */
  up: boolean;
  /** Operationally up (carrier). */
  running: boolean;
  /** Id of an attached XDP program, 0 if none. */
  xdpProgId: number;
}

/** Decodes `vale_io_link`. */
export function decodeIoLink(bytes: Uint8Array<ArrayBuffer>): IoLink {
  const s = new Struct(IO_LINK, bytes);
  return {
    ifindex: s.get("ifindex"),
    flags: s.get("flags"),
    mtu: s.get("mtu"),
    rxQueues: s.get("rx_queues"),
    mac: [...s.field("mac")].map((x) => x.toString(16).padStart(2, "0")).join(":"),
    up: s.get("up") !== 0,
    running: s.get("running") !== 0,
    xdpProgId: s.get("xdp_prog_id"),
  };
}
