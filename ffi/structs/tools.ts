/**
 * The structs of the tools' C loops: `vale_pg_conf` / `vale_pg_stats`
 * (c-src/apps/pktgen.h, used by lib/tools/pktgen.ts) and `vale_br_conf` /
 * `vale_br_stats` (c-src/apps/bridge.h, used by lib/tools/bridge.ts).
 *
 * @module
 */
import { layout } from "../layout.ts";

/** `PG_*` functions of `vale_pg_conf.func`, `PG_VERSION`, `PGF_*` flags. */
export const PgConsts = {
  PG_VERSION: 1,
  PG_TX: 0,
  PG_RX: 1,
  PG_PING: 2,
  PG_PONG: 3,
  PG_TXSEQ: 4,
  PG_RXSEQ: 5,
  PGF_RAW: 0x1,
} as const;

/** `BR_VERSION` of `vale_br_conf.version`. */
export const BrConsts = { BR_VERSION: 1 } as const;

/** `struct vale_pg_conf` (152 bytes): what pkt-gen's C threads do. */
export const PG_CONF = layout("vale_pg_conf", 152, {
  version: [0, "u32"],
  func: [4, "u32"],
  nthreads: [8, "u32"],
  burst: [12, "u32"],
  npackets: [16, "u64"],
  size: [24, "u32"],
  min_size: [28, "u32"],
  frags: [32, "u32"],
  frag_size: [36, "u32"],
  rate: [40, "u32"],
  affinity: [44, "i32"],
  cpus: [48, "u32"],
  forever: [52, "u32"],
  dump: [56, "u32"],
  hdr_len: [60, "u32"],
  spin_us: [64, "u32"],
  flags: [68, "u32"],
  frame_len: [72, "u32"],
  seed: [80, "u64"],
  cycle: [88, "u32", 16], /* struct pg_cycle: encodeCycle() of lib/tools/packet.ts */
});

/** `struct vale_pg_stats` (1024 bytes): one thread's counters, read while it runs. */
export const PG_STATS = layout("vale_pg_stats", 1024, {
  pkts: [0, "u64"],
  bytes: [8, "u64"],
  events: [16, "u64"],
  min_space: [24, "u64"],
  stop: [32, "u32"],
  done: [36, "u32"],
  error: [40, "i32"],
  timeouts: [44, "u32"],
  tic_ns: [48, "u64"],
  toc_ns: [56, "u64"],
  rep_seq: [64, "u32"],
  rep_count: [68, "u32"],
  rep_min: [72, "u64"],
  rep_sum: [80, "u64"],
  rep_buckets: [88, "u64", 64],
  rtt_count: [600, "u64"],
  rtt_min: [608, "u64"],
  rtt_sum: [616, "u64"],
  seq_gaps: [624, "u64"],
  seq_lost: [632, "u64"],
  seq_ooo: [640, "u64"],
  seq_events: [648, "u32"],
  seq_last_exp: [652, "u32"],
  seq_last_found: [656, "u32"],
  seq_last_kind: [660, "u32"],
  frag_mismatch: [664, "u64"],
  unparsed: [672, "u64"],
  seq_log: [680, "u32", 32],
  sleeps: [808, "u64"],
});

/** `struct vale_br_conf` (16 bytes). */
export const BR_CONF = layout("vale_br_conf", 16, {
  version: [0, "u32"],
  burst: [4, "u32"],
  zerocopy: [8, "u32"],
  spin_us: [12, "u32"],
});

/** `struct vale_br_stats` (128 bytes); arrays are [A -> B, B -> A]. */
export const BR_STATS = layout("vale_br_stats", 128, {
  pkts: [0, "u64", 2],
  bytes: [16, "u64", 2],
  bad_len: [32, "u64", 2],
  empty: [48, "u64", 2],
  stop: [64, "u32"],
  done: [68, "u32"],
  error: [72, "i32"],
  sleeps: [76, "u32"],
});
