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

const CONF_SIZE = 152;
const STATS_SIZE = 1024;
const FUNC_CODE: Record<PktGenFunction, number> = {
  tx: 0,
  rx: 1,
  ping: 2,
  pong: 3,
  txseq: 4,
  rxseq: 5,
};

/** Encodes `struct vale_pg_conf` for `nthreads` threads. */
export function encodePktGenConf(c: PktGenConf, nthreads: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(CONF_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint32(4, FUNC_CODE[c.func], true);
  dv.setUint32(8, nthreads, true);
  dv.setUint32(12, c.burst, true);
  dv.setBigUint64(16, BigInt(c.npackets ?? 0), true);
  dv.setUint32(24, c.size, true);
  dv.setUint32(28, c.minSize ?? 0, true);
  dv.setUint32(32, c.frags ?? 1, true);
  dv.setUint32(36, c.fragSize ?? 0, true);
  dv.setUint32(40, c.rate ?? 0, true);
  dv.setInt32(44, c.affinity ?? -1, true);
  dv.setUint32(48, c.cpus ?? navigator.hardwareConcurrency, true);
  dv.setUint32(52, c.forever === false ? 0 : 1, true);
  dv.setUint32(56, c.dump ? 1 : 0, true);
  dv.setUint32(60, c.hdrLen ?? 0, true);
  dv.setUint32(64, c.spinUs ?? 100, true);
  dv.setUint32(68, c.raw ? 1 : 0, true);
  dv.setUint32(72, (c.hdrLen ?? 0) + c.size, true);
  dv.setBigUint64(80, c.seed ?? 0n, true);
  if (c.cycle) b.set(new Uint8Array(c.cycle.buffer, c.cycle.byteOffset, 64), 88);
  return b;
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
  #dv: DataView;
  #ports: Port[];
  #running: Promise<number> | null = null;

  /**
   * @param conf what to do
   * @param frame the template frame (vnet header included), `hdrLen + size` bytes
   * @param ports one open port per thread (thread i uses ports[i])
   */
  constructor(conf: PktGenConf, frame: Uint8Array, ports: Port[]) {
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
    ports.forEach((p, i) => {
      const r = lib.vale_pg_set_port(this.#ctx, i, p.handle);
      if (r < 0) {
        this.close();
        throw new ValeError(-r, `pkt-gen: ${p.name}: no TX or RX ring bound for thread ${i}`);
      }
    });
    const sp = lib.vale_pg_stats(this.#ctx)!;
    this.#dv = new DataView(
      Deno.UnsafePointerView.getArrayBuffer(sp, STATS_SIZE * ports.length),
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
    const dv = this.#dv, o = i * STATS_SIZE;
    const total = dv.getUint32(o + 648, true);
    const out = [];
    for (let n = Math.max(from, total - 8); n < total; n++) {
      const e = o + 680 + (n % 8) * 16;
      out.push({
        n,
        expected: dv.getUint32(e, true),
        found: dv.getUint32(e + 4, true),
        kind: dv.getUint32(e + 8, true) === 1 ? "gap" as const : "out-of-order" as const,
      });
    }
    return out;
  }

  /** Thread i's counters now. */
  stats(i: number): PktGenThreadStats {
    const dv = this.#dv, o = i * STATS_SIZE;
    const u64 = (k: number) => Number(dv.getBigUint64(o + k, true));
    const kind = dv.getUint32(o + 660, true);
    return {
      pkts: u64(0),
      bytes: u64(8),
      events: u64(16),
      minSpace: u64(24),
      done: dv.getUint32(o + 36, true),
      error: dv.getInt32(o + 40, true),
      timeouts: dv.getUint32(o + 44, true),
      ticNs: dv.getBigUint64(o + 48, true),
      tocNs: dv.getBigUint64(o + 56, true),
      sleeps: u64(808),
      rtt: { count: u64(600), min: u64(608), sum: u64(616) },
      seq: {
        gaps: u64(624),
        lost: u64(632),
        outOfOrder: u64(640),
        events: dv.getUint32(o + 648, true),
        lastExpected: dv.getUint32(o + 652, true),
        lastFound: dv.getUint32(o + 656, true),
        lastKind: kind === 1 ? "gap" : kind === 2 ? "out-of-order" : "",
        fragMismatch: u64(664),
        unparsed: u64(672),
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
    for (let i = 0; i < this.nthreads; i++) {
      this.#dv.setBigUint64(i * STATS_SIZE + 24, 99999n, true);
    }
  }

  /** ping: thread i's last published one-second window, if newer than `after`. */
  pingWindow(i: number, after = 0): PingWindow | null {
    const dv = this.#dv, o = i * STATS_SIZE;
    for (let tries = 0; tries < 100; tries++) {
      const s1 = dv.getUint32(o + 64, true);
      if (s1 & 1) continue;
      if (s1 / 2 <= after) return null;
      const buckets: number[] = [];
      for (let k = 0; k < 64; k++) buckets.push(Number(dv.getBigUint64(o + 88 + 8 * k, true)));
      const w = {
        seq: s1 / 2,
        count: dv.getUint32(o + 68, true),
        min: Number(dv.getBigUint64(o + 72, true)),
        sum: Number(dv.getBigUint64(o + 80, true)),
        buckets,
      };
      if (dv.getUint32(o + 64, true) === s1) return w;
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
