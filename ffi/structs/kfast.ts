/**
 * The struct of c-src/include/kfast.h: `vale_kfast_stats`, the counters of
 * an attachment's kernel fast path (lib/backends/kfast.ts).
 *
 * @module
 */
import { layout, Struct } from "../layout.ts";

/** `struct vale_kfast_stats` (128 bytes). */
export const KFAST_STATS = layout("vale_kfast_stats", 128, {
  fast_pkts: [0, "u64"],
  fast_bytes: [8, "u64"],
  macs: [16, "u64"],
  dests: [24, "u64"],
  syncs: [32, "u64"],
  map_errors: [40, "u64"],
  active: [48, "u32"],
  why_off: [52, "u32"],
  refreshed: [56, "u64"],
});

/** Why the fast path is off for the port (VKF_OFF_*), or "on". */
export type KfastWhy = "on" | "monitor" | "lookup";
const WHY: KfastWhy[] = ["on", "monitor", "lookup"];

/** Counters of a kernel fast path (struct vale_kfast_stats). */
export interface KfastStats {
  /** The fast path is on for the port now. */
  active: boolean;
  /** Why not: a monitor on the port, or the switch runs another lookup module. */
  why: KfastWhy;
  /** Frames the kernel redirected from this port to other ports. */
  fastPkts: number;
  /** Their bytes (Ethernet frames, without virtio-net headers). */
  fastBytes: number;
  /** MACs in the program's map (this port's and other fast-path ports'). */
  macs: number;
  /** MACs of other ports frames may be redirected to. */
  dests: number;
  /** Synchronisations with the switch's learning table. */
  syncs: number;
  /** Map updates the kernel refused (those MACs take the normal path). */
  mapErrors: number;
  /** Learning-table entries kept from ageing for fast-path senders. */
  refreshed: number;
}

/** Decodes `vale_kfast_stats`. */
export function decodeKfastStats(bytes: Uint8Array<ArrayBuffer>): KfastStats {
  const s = new Struct(KFAST_STATS, bytes);
  return {
    active: s.get("active") === 1,
    why: WHY[s.get("why_off")] ?? "on",
    fastPkts: s.get("fast_pkts"),
    fastBytes: s.get("fast_bytes"),
    macs: s.get("macs"),
    dests: s.get("dests"),
    syncs: s.get("syncs"),
    mapErrors: s.get("map_errors"),
    refreshed: s.get("refreshed"),
  };
}
