/**
 * pkt-gen's packet loops (c-src/apps/pktgen.c) driven from TypeScript: build the
 * configuration, hand the C side one open port per thread, run all threads
 * as one nonblocking FFI call, and read each thread's live counters while it
 * runs. `cli/pkt-gen.ts` is built on this; programs can use it directly.
 *
 * ```ts
 * using port = openPort("vale0:tx");
 * const gen = new PktGen({ func: "tx", burst: 512, npackets: 1_000_000, size: 60 },
 *                        pktgenTemplate().frame, [port]);
 * await gen.run();
 * console.log(gen.totals().pkts); // 1000000
 * gen.close();
 * ```
 *
 * @module
 */
import { vale } from "../../ffi/lib.ts";
import { Struct } from "../../ffi/layout.ts";
import { PG_CONF, PG_STATS, PgConsts } from "../../ffi/structs/tools.ts";
import { Errno, ValeError } from "../errors.ts";
import type { Port } from "../switch/port.ts";

/** pkt-gen's functions (`-f`). */
export const PKTGEN_FUNCTIONS = ["tx", "rx", "ping", "pong", "txseq", "rxseq"] as const;
/** One of {@link PKTGEN_FUNCTIONS}. */
export type PktGenFunction = typeof PKTGEN_FUNCTIONS[number];

/** What the C loops need to know (struct vale_pg_conf). */
export interface PktGenConf {
  /** `-f` */
  func: PktGenFunction;
  /** `-b`: packets per batch (per txsync on TX, per ring pass on RX). */
  burst: number;
  /** `-n`: packets in total over all threads, 0 = forever. */
  npackets?: number | bigint;
  /** `-l`: frame length (the larger one when given twice), vnet header excluded. */
  size: number;
  /** `-l` given twice: lengths are drawn from [minSize, size). */
  minSize?: number;
  /** `-F`: fragments (slots) per packet. */
  frags?: number;
  /** `-M`: largest fragment (default: the buffer size). */
  fragSize?: number;
  /** `-R`: packets per second over all threads, 0 = as fast as possible. */
  rate?: number;
  /** `-a`: CPU of the first thread (then the next ones), -1 = no pinning. */
  affinity?: number;
  /** CPUs the threads are spread over with `-a` (default: all). */
  cpus?: number;
  /** false with `-W`: rx stops after one second without traffic. */
  forever?: boolean;
  /** `-X`: hex dump every packet to stdout. */
  dump?: boolean;
  /** `-H`: virtio-net header bytes before each frame. */
  hdrLen?: number;
  /** Busy-poll this many microseconds before sleeping (rx, ping, pong; default 100). */
  spinUs?: number;
  /** `-P`: send the frame exactly as given (no address cycling, no header rewrite). */
  raw?: boolean;
  /** Seed of the random lengths. */
  seed?: bigint;
  /** `encodeCycle()` of lib/tools/packet.ts: how addresses change per packet. */
  cycle?: Uint32Array;
}

const FUNC_CODE: Record<PktGenFunction, number> = {
  tx: PgConsts.PG_TX,
  rx: PgConsts.PG_RX,
  ping: PgConsts.PG_PING,
  pong: PgConsts.PG_PONG,
  txseq: PgConsts.PG_TXSEQ,
  rxseq: PgConsts.PG_RXSEQ,
};

/** Encodes `struct vale_pg_conf` for `nthreads` threads. */
export function encodePktGenConf(c: PktGenConf, nthreads: number): Uint8Array<ArrayBuffer> {
  const k = new Struct(PG_CONF)
    .set("version", PgConsts.PG_VERSION)
    .set("func", FUNC_CODE[c.func])
    .set("nthreads", nthreads)
    .set("burst", c.burst)
    .set("npackets", BigInt(c.npackets ?? 0))
    .set("size", c.size)
    .set("min_size", c.minSize ?? 0)
    .set("frags", c.frags ?? 1)
    .set("frag_size", c.fragSize ?? 0)
    .set("rate", c.rate ?? 0)
    .set("affinity", c.affinity ?? -1)
    .set("cpus", c.cpus ?? navigator.hardwareConcurrency)
    .set("forever", c.forever === false ? 0 : 1)
    .set("dump", c.dump ? 1 : 0)
    .set("hdr_len", c.hdrLen ?? 0)
    .set("spin_us", c.spinUs ?? 100)
    .set("flags", c.raw ? PgConsts.PGF_RAW : 0)
    .set("frame_len", (c.hdrLen ?? 0) + c.size)
    .set("seed", c.seed ?? 0n);
  if (c.cycle) { for (let i = 0; i < 16; i++) k.set("cycle", c.cycle[i] ?? 0, i); }
  return k.bytes;
}

/** One thread's counters (struct vale_pg_stats), read while it runs. */
export interface PktGenThreadStats {
  /** Packets sent (tx, txseq, ping, pong) or received (rx, rxseq). */
  pkts: number;
  /** Their bytes. */
  bytes: number;
  /** Batches that moved at least one packet. */
  events: number;
  /** rx: smallest free space seen in the RX rings since the last reset (netmap's min_space). */
  minSpace: number;
  /** 0 running, 1 finished, 2 failed. */
  done: number;
  /** -errno when failed. */
  error: number;
  /** ping/pong: waits that timed out (netmap's "poll error ... timeout"). */
  timeouts: number;
  /** When the loop started / ended (CLOCK_MONOTONIC ns, 0 = not yet). */
  ticNs: bigint;
  /** End of the loop; for rx with -W one idle second is already subtracted. */
  tocNs: bigint;
  /** rx, rxseq, ping, pong: times the loop found nothing for spinUs and slept. */
  sleeps: number;
  /** ping: replies received, smallest and summed round-trip time (ns). */
  rtt: { count: number; min: number; sum: number };
  /** rxseq: gaps (and packets missing in them), reorderings, the last event. */
  seq: {
    gaps: number;
    lost: number;
    outOfOrder: number;
    events: number;
    lastExpected: number;
    lastFound: number;
    lastKind: "gap" | "out-of-order" | "";
    fragMismatch: number;
    unparsed: number;
  };
}

/** ping's one-second window (`count N RTT: min X av Y ns` and its histogram). */
export interface PingWindow {
  /** Window number (odd/even seqlock value / 2). */
  seq: number;
  /** Replies in the window. */
  count: number;
  /** Smallest RTT (ns). */
  min: number;
  /** Summed RTT (ns). */
  sum: number;
  /** buckets[k]: replies with RTT in [2^k, 2^(k+1)) ns. */
  buckets: number[];
}

/** pkt-gen's loops over one port per thread. */
export class PktGen {
  /** Threads (= ports). */
  readonly nthreads: number;
  /** The configuration. */
  readonly conf: PktGenConf;
  #ctx: Deno.PointerObject | null;
  #st: Struct<keyof typeof PG_STATS.fields>[];
  #ports: Port[];
  #running: Promise<number> | null = null;

  /**
   * @param conf what to do
   * @param frame the template frame (vnet header included), `hdrLen + size` bytes
   * @param ports one open port per thread (thread i uses ports[i])
   * @param set tx only: frames (vnet header included) each thread sends in
   *   turn instead of the template (`-P FILE` with several packets)
   */
  constructor(conf: PktGenConf, frame: Uint8Array, ports: Port[], set?: Uint8Array[]) {
    const lib = vale();
    this.conf = conf;
    this.nthreads = ports.length;
    this.#ports = ports;
    const c = encodePktGenConf(conf, ports.length);
    const f = new Uint8Array(frame.length);
    f.set(frame);
    this.#ctx = lib.vale_pg_create(c, c.length, f, f.length);
    if (!this.#ctx) {
      throw new ValeError(
        Errno.EINVAL,
        `pkt-gen: bad configuration (frame ${frame.length} bytes, size ${conf.size}, ` +
          `${ports.length} threads)`,
      );
    }
    if (set?.length) {
      let total = 0;
      for (const f of set) total += 4 + f.length;
      const rec = new Uint8Array(total), dv = new DataView(rec.buffer);
      let o = 0;
      for (const f of set) {
        dv.setUint32(o, f.length, true);
        rec.set(f, o + 4);
        o += 4 + f.length;
      }
      const r = lib.vale_pg_set_frames(this.#ctx, rec, BigInt(total));
      if (r < 0) {
        this.close();
        throw new ValeError(
          -r,
          `pkt-gen: bad frame set (${set.length} frames; each ${conf.hdrLen ?? 0}+16.. ` +
            `${conf.hdrLen ?? 0}+65536 bytes, tx only)`,
        );
      }
    }
    ports.forEach((p, i) => {
      const r = lib.vale_pg_set_port(this.#ctx, i, p.handle);
      if (r < 0) {
        this.close();
        throw new ValeError(-r, `pkt-gen: ${p.name}: no TX or RX ring bound for thread ${i}`);
      }
    });
    const sp = lib.vale_pg_stats(this.#ctx)!;
    const all = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(sp, PG_STATS.size * ports.length),
    );
    this.#st = ports.map((_, i) =>
      new Struct(PG_STATS, all.subarray(i * PG_STATS.size, (i + 1) * PG_STATS.size))
    );
  }

  /** Start every thread; resolves (0 or -errno) when all have finished. */
  run(): Promise<number> {
    if (!this.#ctx) throw new ValeError(Errno.EBADF, "pkt-gen: closed");
    this.#running ??= vale().vale_pg_run(this.#ctx);
    return this.#running;
  }

  /** Ask every thread to stop (Ctrl-C) and wake those asleep. */
  stop(): void {
    if (this.#ctx) vale().vale_pg_stop(this.#ctx);
  }

  /**
   * rxseq: thread i's gap / reordering events numbered [from, seq.events)
   * that are still in the C side's log of the last 8.
   */
  seqEvents(
    i: number,
    from: number,
  ): { n: number; kind: "gap" | "out-of-order"; expected: number; found: number }[] {
    const st = this.#st[i];
    const total = st.get("seq_events");
    const out = [];
    for (let n = Math.max(from, total - 8); n < total; n++) {
      const e = (n % 8) * 4; /* seq_log[8][4]: expected, found, kind, 0 */
      out.push({
        n,
        expected: st.get("seq_log", e),
        found: st.get("seq_log", e + 1),
        kind: st.get("seq_log", e + 2) === 1 ? "gap" as const : "out-of-order" as const,
      });
    }
    return out;
  }

  /** Thread i's counters now. */
  stats(i: number): PktGenThreadStats {
    const st = this.#st[i];
    const kind = st.get("seq_last_kind");
    return {
      pkts: st.get("pkts"),
      bytes: st.get("bytes"),
      events: st.get("events"),
      minSpace: st.get("min_space"),
      done: st.get("done"),
      error: st.get("error"),
      timeouts: st.get("timeouts"),
      ticNs: st.getBig("tic_ns"),
      tocNs: st.getBig("toc_ns"),
      sleeps: st.get("sleeps"),
      rtt: { count: st.get("rtt_count"), min: st.get("rtt_min"), sum: st.get("rtt_sum") },
      seq: {
        gaps: st.get("seq_gaps"),
        lost: st.get("seq_lost"),
        outOfOrder: st.get("seq_ooo"),
        events: st.get("seq_events"),
        lastExpected: st.get("seq_last_exp"),
        lastFound: st.get("seq_last_found"),
        lastKind: kind === 1 ? "gap" : kind === 2 ? "out-of-order" : "",
        fragMismatch: st.get("frag_mismatch"),
        unparsed: st.get("unparsed"),
      },
    };
  }

  /** Sum of pkts/bytes/events/minSpace over the threads, and how many are done. */
  totals(): { pkts: number; bytes: number; events: number; minSpace: number; done: number } {
    const t = { pkts: 0, bytes: 0, events: 0, minSpace: 0, done: 0 };
    for (let i = 0; i < this.nthreads; i++) {
      const s = this.stats(i);
      t.pkts += s.pkts;
      t.bytes += s.bytes;
      t.events += s.events;
      t.minSpace += s.minSpace;
      if (s.done) t.done++;
    }
    return t;
  }

  /** netmap resets every thread's min_space to 99999 after each report. */
  resetMinSpace(): void {
    for (const st of this.#st) st.set("min_space", 99999n);
  }

  /** ping: thread i's last published one-second window, if newer than `after`. */
  pingWindow(i: number, after = 0): PingWindow | null {
    const st = this.#st[i];
    for (let tries = 0; tries < 100; tries++) {
      const s1 = st.get("rep_seq");
      if (s1 & 1) continue;
      if (s1 / 2 <= after) return null;
      const buckets: number[] = [];
      for (let k = 0; k < 64; k++) buckets.push(st.get("rep_buckets", k));
      const w = {
        seq: s1 / 2,
        count: st.get("rep_count"),
        min: st.get("rep_min"),
        sum: st.get("rep_sum"),
        buckets,
      };
      if (st.get("rep_seq") === s1) return w;
    }
    return null;
  }

  /** The port of thread i. */
  port(i: number): Port {
    return this.#ports[i];
  }

  /** Free the C context (after {@link run} resolved; the ports stay open). */
  close(): void {
    if (!this.#ctx) return;
    if (this.#running) {
      const ctx = this.#ctx;
      this.#ctx = null;
      this.#running.finally(() => vale().vale_pg_destroy(ctx));
      return;
    }
    vale().vale_pg_destroy(this.#ctx);
    this.#ctx = null;
  }
}
