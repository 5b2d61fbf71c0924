/**
 * `struct vale_open_req` (c-src/include/vale.h): what to open — geometry, flags, the
 * ring to bind and the group a new switch is shared with. Passed to
 * `vale_open` and `vale_create_persistent`.
 *
 * @module
 */
import { layout, Struct } from "../layout.ts";

/** The C layout (32 bytes). */
export const OPEN_REQ = layout("vale_open_req", 32, {
  ntx: [0, "u32"],
  nrx: [4, "u32"],
  tx_slots: [8, "u32"],
  rx_slots: [12, "u32"],
  flags: [16, "u32"],
  ring_id: [20, "i32"],
  group: [24, "u32"],
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
  VO_MONITOR_TX: 0x100,
  VO_MONITOR_RX: 0x200,
  VO_MONITOR_ZCOPY: 0x400,
} as const;

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
}

/** Encodes a request for the C library. */
export function encodeOpenRequest(r: OpenRequest): Uint8Array<ArrayBuffer> {
  const s = new Struct(OPEN_REQ)
    .set("ntx", r.ntx ?? 0)
    .set("nrx", r.nrx ?? 0)
    .set("tx_slots", r.txSlots ?? 0)
    .set("rx_slots", r.rxSlots ?? 0)
    .set("flags", (r.flags ?? 0) | (r.gid !== undefined ? OpenFlags.VO_GROUP : 0))
    .set("ring_id", r.ringId ?? -1);
  if (r.gid !== undefined) s.set("group", r.gid);
  return s.bytes;
}
