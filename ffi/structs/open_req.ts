/**
 * `struct vale_open_req` (c-src/include/vale.h): what to open — geometry, flags, the
 * ring to bind and the group a new switch is shared with. Passed to
 * `vale_open` and `vale_create_persistent`.
 *
 * @module
 */
import { layout, Struct } from "../layout.ts";

/** The C layout (40 bytes). */
export const OPEN_REQ = layout("vale_open_req", 40, {
  ntx: [0, "u32"],
  nrx: [4, "u32"],
  tx_slots: [8, "u32"],
  rx_slots: [12, "u32"],
  flags: [16, "u32"],
  ring_id: [20, "i32"],
  group: [24, "u32"],
  vnet_hdr_len: [28, "u32"],
  mtu: [32, "u32"],
});

/** `VO_*` flags of {@link OpenRequest.flags}. */
export const OpenFlags = {
  VO_EXCLUSIVE: 0x1,
  VO_CREATE_PERSISTENT: 0x2,
  VO_PIPE_MASTER: 0x4,
  VO_PIPE_SLAVE: 0x8,
  VO_NO_CREATE: 0x10,
  VO_RX_ONLY: 0x20,
  VO_TX_ONLY: 0x40,
  VO_GROUP: 0x80,
  VO_VNET_HDR: 0x100,
  VO_MONITOR_TX: 0x200,
  VO_MONITOR_RX: 0x400,
  VO_MONITOR_ZCOPY: 0x800,
} as const;

/** MTU limits of a port (largest Ethernet frame, virtio-net header not included). */
export const Mtu = {
  VALE_DEF_MTU: 1514,
  VALE_MIN_MTU: 64,
  VALE_MAX_MTU: 65535 + 14 + 4,
} as const;

/** The virtio-net header lengths a port may have. */
export const VNET_HDR_LENS: readonly number[] = [0, 10, 12];

/** The fields of a request; absent = 0 (the library's default), `ringId` -1. */
export interface OpenRequest {
  /** TX rings. */
  ntx?: number;
  /** RX rings. */
  nrx?: number;
  /** Slots per TX ring. */
  txSlots?: number;
  /** Slots per RX ring. */
  rxSlots?: number;
  /** `VO_*` flags (VO_GROUP is set for you when `gid` is given). */
  flags?: number;
  /** One ring pair to bind (`-N`), -1 all. */
  ringId?: number;
  /** Share a switch this call creates with this group id. */
  gid?: number;
  /** Set the port's virtio-net header length (0, 10, 12; VO_VNET_HDR is set for you). */
  vnetHdrLen?: number;
  /** Set the port's MTU (absent: keep; a new port gets 1514). */
  mtu?: number;
}

/** Encodes a request for the C library. */
export function encodeOpenRequest(r: OpenRequest): Uint8Array<ArrayBuffer> {
  const s = new Struct(OPEN_REQ)
    .set("ntx", r.ntx ?? 0)
    .set("nrx", r.nrx ?? 0)
    .set("tx_slots", r.txSlots ?? 0)
    .set("rx_slots", r.rxSlots ?? 0)
    .set(
      "flags",
      (r.flags ?? 0) | (r.gid !== undefined ? OpenFlags.VO_GROUP : 0) |
        (r.vnetHdrLen !== undefined ? OpenFlags.VO_VNET_HDR : 0),
    )
    .set("ring_id", r.ringId ?? -1)
    .set("vnet_hdr_len", r.vnetHdrLen ?? 0)
    .set("mtu", r.mtu ?? 0);
  if (r.gid !== undefined) s.set("group", r.gid);
  return s.bytes;
}
