/**
 * `struct vale_port_info` (c-src/include/vale.h): where an open port's region, rings
 * and buffers are, filled by `vale_info`.
 *
 * @module
 */
import { layout, Struct } from "../layout.ts";

/** Most rings per direction (VALE_MAX_RINGS). */
export const MAX_RINGS = 16;

/** The C layout (336 bytes). */
export const PORT_INFO = layout("vale_port_info", 336, {
  region_base: [0, "u64"],
  region_size: [8, "u64"],
  ntx: [16, "u32"],
  nrx: [20, "u32"],
  tx_slots: [24, "u32"],
  rx_slots: [28, "u32"],
  nbufs: [32, "u32"],
  buf_size: [36, "u32"],
  port_idx: [40, "u32"],
  port_gen: [44, "u32"],
  first_ring: [48, "u32"],
  last_ring: [52, "u32"],
  bell_fd: [56, "i32"],
  flags: [60, "u32"],
  tx_ring_ofs: [64, "u64", MAX_RINGS],
  rx_ring_ofs: [192, "u64", MAX_RINGS],
  buf_ofs: [320, "u64"],
  vnet_hdr_len: [328, "u32"],
  mtu: [332, "u32"],
});

/** Drop reasons (`VD_*`, index into the counters' drops), as `vale_switch_json` names them. */
export const DROP_REASONS = [
  "ring_full",
  "bad_slot",
  "no_dest",
  "lookup",
  "bad_vnet",
  "too_big",
] as const;

/** A decoded `vale_port_info`. */
export interface PortLayout {
  /** Address of the region in this process. */
  regionBase: bigint;
  /** Bytes of the region. */
  regionSize: number;
  /** TX rings of the port. */
  ntx: number;
  /** RX rings of the port. */
  nrx: number;
  /** Slots of each TX ring (the library's own copy, never the shared ring header). */
  txSlots: number;
  /** Slots of each RX ring (likewise). */
  rxSlots: number;
  /** Buffers in the region. */
  nbufs: number;
  /** Index in the switch's port table. */
  index: number;
  /** Bound ring pairs: [firstRing, lastRing). */
  firstRing: number;
  /** End of the bound ring pairs. */
  lastRing: number;
  /** Doorbell FIFO. */
  bellFd: number;
  /** `VPF_*` flags of the port's entry (c-src/include/vale.h). */
  flags: number;
  /** Offsets of the TX rings in the region. */
  txRingOfs: number[];
  /** Offsets of the RX rings in the region. */
  rxRingOfs: number[];
  /** Offset of buffer 0 in the region. */
  bufOfs: number;
  /** The port's virtio-net header length (0, 10, 12) when `vale_info` ran. */
  vnetHdrLen: number;
  /** The port's MTU (largest Ethernet frame, header not included). */
  mtu: number;
}

/** Decodes what `vale_info` wrote into `bytes` (from {@link newPortInfo}). */
export function decodePortInfo(bytes: Uint8Array<ArrayBuffer>): PortLayout {
  const s = new Struct(PORT_INFO, bytes);
  const rings = (k: "tx_ring_ofs" | "rx_ring_ofs") =>
    Array.from({ length: MAX_RINGS }, (_, i) => s.get(k, i));
  return {
    regionBase: s.getBig("region_base"),
    regionSize: s.get("region_size"),
    ntx: s.get("ntx"),
    nrx: s.get("nrx"),
    txSlots: s.get("tx_slots"),
    rxSlots: s.get("rx_slots"),
    nbufs: s.get("nbufs"),
    index: s.get("port_idx"),
    firstRing: s.get("first_ring"),
    lastRing: s.get("last_ring"),
    bellFd: s.get("bell_fd"),
    flags: s.get("flags"),
    txRingOfs: rings("tx_ring_ofs"),
    rxRingOfs: rings("rx_ring_ofs"),
    bufOfs: s.get("buf_ofs"),
    vnetHdrLen: s.get("vnet_hdr_len"),
    mtu: s.get("mtu"),
  };
}

/** A zeroed buffer for `vale_info` to fill. */
export function newPortInfo(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(PORT_INFO.size);
}
