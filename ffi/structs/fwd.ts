/**
 * The structs of c-src/fwd/fwd.h: `vale_fwd_conf` (forwarder options) and
 * `vale_fwd_stats` (its counters and state), used by lib/backends/forwarder.ts.
 *
 * @module
 */
import { layout, Struct } from "../layout.ts";

/** `VF_*` flags of `vale_fwd_conf.flags`. */
export const FwdFlags = { VF_NO_K2V: 0x1, VF_NO_V2K: 0x2 } as const;

/** `struct vale_fwd_conf` (64 bytes). */
export const FWD_CONF = layout("vale_fwd_conf", 64, {
  batch: [0, "u32"],
  flags: [4, "u32"],
  idle_ms: [8, "i32"],
});

/** `struct vale_fwd_stats` (256 bytes). */
export const FWD_STATS = layout("vale_fwd_stats", 256, {
  k2v_pkts: [0, "u64"],
  k2v_bytes: [8, "u64"],
  k2v_batches: [16, "u64"],
  v2k_pkts: [24, "u64"],
  v2k_bytes: [32, "u64"],
  v2k_batches: [40, "u64"],
  k2v_waits: [48, "u64"],
  v2k_drops: [56, "u64"],
  v2k_full: [64, "u64"],
  k_sleeps: [72, "u64"],
  v_sleeps: [80, "u64"],
  link_downs: [88, "u64"],
  io_errors: [96, "u64"],
  state: [104, "u32"],
  err: [108, "i32"],
  msg: [128, "char", 128],
});

/** State of a forwarder (VFS_* in c-src/fwd/fwd.h). */
export type FwdState = "idle" | "running" | "down" | "gone" | "stopped" | "error";
/** FwdState by its VFS_* number. */
export const FWD_STATES: FwdState[] = ["idle", "running", "down", "gone", "stopped", "error"];

/** Counters of a forwarder (struct vale_fwd_stats). Packets are frames. */
export interface FwdStats {
  /** running, down (link down: frames to it dropped), gone (interface removed), ... */
  state: FwdState;
  /** What happened last, for people. */
  message: string;
  /** -errno of the last failure, 0. */
  err: number;
  /** Frames from the kernel into the port. */
  k2vPkts: number;
  /** Bytes from the kernel into the port. */
  k2vBytes: number;
  /** Non-empty receive batches. */
  k2vBatches: number;
  /** Frames from the port handed to the kernel. */
  v2kPkts: number;
  /** Bytes from the port handed to the kernel. */
  v2kBytes: number;
  /** Non-empty send batches. */
  v2kBatches: number;
  /** Times the port's TX ring had no room (pipe back-pressure). */
  k2vWaits: number;
  /** Frames from the port dropped here (interface down, send error). */
  v2kDrops: number;
  /** Waits for room in the kernel's TX ring. */
  v2kFull: number;
  /** Times the kernel-to-port direction slept. */
  kSleeps: number;
  /** Times the port-to-kernel direction slept. */
  vSleeps: number;
  /** Times the interface was seen going down. */
  linkDowns: number;
  /** Transient errors from the kernel side. */
  ioErrors: number;
}

/** Options of a forwarder (struct vale_fwd_conf). */
export interface FwdOptions {
  /** Most slots per kernel call (default 256). */
  batch?: number;
  /** Sleep slice in ms: bounds stop latency and link checks (default 200). */
  idleMs?: number;
  /** Only kernel → port. */
  noK2v?: boolean;
  /** Only port → kernel. */
  noV2k?: boolean;
}

/** Encodes forwarder options. */
export function encodeFwdConf(o: FwdOptions): Uint8Array<ArrayBuffer> {
  return new Struct(FWD_CONF)
    .set("batch", o.batch ?? 0)
    .set("flags", (o.noK2v ? FwdFlags.VF_NO_K2V : 0) | (o.noV2k ? FwdFlags.VF_NO_V2K : 0))
    .set("idle_ms", o.idleMs ?? 0)
    .bytes;
}

/** Decodes `vale_fwd_stats`. */
export function decodeFwdStats(bytes: Uint8Array<ArrayBuffer>): FwdStats {
  const s = new Struct(FWD_STATS, bytes);
  return {
    state: FWD_STATES[s.get("state")] ?? "error",
    err: s.get("err"),
    message: s.string("msg"),
    k2vPkts: s.get("k2v_pkts"),
    k2vBytes: s.get("k2v_bytes"),
    k2vBatches: s.get("k2v_batches"),
    v2kPkts: s.get("v2k_pkts"),
    v2kBytes: s.get("v2k_bytes"),
    v2kBatches: s.get("v2k_batches"),
    k2vWaits: s.get("k2v_waits"),
    v2kDrops: s.get("v2k_drops"),
    v2kFull: s.get("v2k_full"),
    kSleeps: s.get("k_sleeps"),
    vSleeps: s.get("v_sleeps"),
    linkDowns: s.get("link_downs"),
    ioErrors: s.get("io_errors"),
  };
}
