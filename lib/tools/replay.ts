/**
 * Replay a capture into a port: netmap's nmreplay (and tcpreplay's) role.
 * Packets go out in file order with their original spacing (scaled by
 * `speed`), at a fixed packet or bit rate, or as fast as the port takes
 * them; the file is replayed `loops` times (0: until stopped).
 *
 * ```ts
 * using port = openPort("vale0:a");
 * const r = new Replay(port, { loops: 2, pps: 10000 });
 * const st = await r.run(() => openPcap("trace.pcapng"));
 * ```
 *
 * Timing is kept against the monotonic clock: every packet has a due time
 * (from its timestamp or its rank), packets that are due go into the TX
 * ring together and are sent with one txsync, and the loop sleeps (timer
 * for long waits, a short spin for the last fraction of a millisecond)
 * until the next one is due. A sender that falls behind catches up as fast
 * as the port takes packets, keeping the order; nothing is skipped.
 *
 * @module
 */
import type { PcapRecord } from "../formats/pcap.ts";
import { LINKTYPE_ETHERNET } from "../formats/pcap.ts";
import type { Port } from "../switch/port.ts";

/** How packets are spaced: exactly one of speed, pps, bps or topSpeed. */
export interface ReplayOptions {
  /** Original timing scaled: 2 = twice as fast, 0.5 = half (default 1). */
  speed?: number;
  /** A fixed rate in packets per second. */
  pps?: number;
  /** A fixed rate in bits per second (of frame bytes, as tcpreplay's --mbps). */
  bps?: number;
  /** As fast as the port takes them. */
  topSpeed?: boolean;
  /** Times to replay the file; 0 = until stopped (default 1). */
  loops?: number;
  /** Stop after this many packets in all (default: no limit). */
  limit?: number;
  /** Called about every `progressMs` with the counters so far. */
  progress?: (s: ReplayStats) => void;
  /** Interval of `progress` (default 1000 ms). */
  progressMs?: number;
}

/** What a replay did. */
export interface ReplayStats {
  /** Packets sent. */
  packets: number;
  /** Their bytes. */
  bytes: number;
  /** Records skipped: empty, or not Ethernet (the port carries Ethernet frames). */
  skipped: number;
  /** Loops begun (the current one included). */
  loop: number;
  /** Seconds since the first packet was due. */
  seconds: number;
  /** True when stopped by {@link Replay.stop} before the end. */
  stopped: boolean;
}

/** Largest frame a replay sends (a switch port takes up to 64 fragments of 2048 bytes). */
export const REPLAY_MAX_FRAME = 65535;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A replay of capture records into one port. */
export class Replay {
  readonly #port: Port;
  readonly #o: Required<Omit<ReplayOptions, "progress" | "limit">> & ReplayOptions;
  #stop = false;
  #wake: (() => void) | null = null;
  #st: ReplayStats = { packets: 0, bytes: 0, skipped: 0, loop: 0, seconds: 0, stopped: false };

  /** Checks the options (RangeError when they are contradictory or out of range). */
  constructor(port: Port, opts: ReplayOptions = {}) {
    const modes =
      [opts.speed !== undefined, opts.pps !== undefined, opts.bps !== undefined, !!opts.topSpeed]
        .filter(Boolean).length;
    if (modes > 1) throw new RangeError("choose one of speed, pps, bps and top speed");
    const pos = (v: number | undefined, what: string) => {
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
        throw new RangeError(`${what} must be a positive number, not ${v}`);
      }
    };
    pos(opts.speed, "speed");
    pos(opts.pps, "pps");
    pos(opts.bps, "bps");
    const loops = opts.loops ?? 1;
    if (!Number.isInteger(loops) || loops < 0) throw new RangeError(`bad loop count ${loops}`);
    if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > 0)) {
      throw new RangeError(`bad packet limit ${opts.limit}`);
    }
    this.#port = port;
    this.#o = {
      ...opts,
      speed: opts.speed ?? 1,
      pps: opts.pps ?? 0,
      bps: opts.bps ?? 0,
      topSpeed: opts.topSpeed ?? false,
      loops,
      progressMs: opts.progressMs ?? 1000,
    };
  }

  /** The counters so far (also after {@link run} rejected on a damaged file). */
  get stats(): ReplayStats {
    return { ...this.#st };
  }

  /** Stop at the next packet (Ctrl-C); {@link run} then resolves with what was sent. */
  stop(): void {
    this.#stop = true;
    this.#wake?.();
  }

  /**
   * Replay: `open()` gives the file's records from the start, once per loop.
   * Resolves with the counters; rejects with the reader's error (a damaged
   * file: the packets before the damage have been sent).
   */
  async run(
    open: () => AsyncIterable<PcapRecord> | Iterable<PcapRecord>,
  ): Promise<ReplayStats> {
    const o = this.#o, port = this.#port, st = this.#st;
    const t0 = performance.now();
    let nextReport = t0 + o.progressMs, queued = 0;
    let bits = 0; // bits sent before the current packet (bps mode)
    const flush = () => {
      if (queued) port.txsync();
      queued = 0;
    };
    try {
      outer: for (let loop = 0; o.loops === 0 || loop < o.loops; loop++) {
        st.loop = loop + 1;
        let first: bigint | null = null; // first timestamp of this loop (ns)
        const loopStart = performance.now();
        for await (const r of open()) {
          if (this.#stop) break outer;
          if (r.data.length === 0 || r.linkType !== LINKTYPE_ETHERNET) {
            st.skipped++;
            continue;
          }
          // when this packet is due, in ms of performance.now()
          let due: number;
          if (o.topSpeed) due = 0;
          else if (o.pps) due = t0 + (st.packets * 1000) / o.pps;
          else if (o.bps) due = t0 + (bits * 1000) / o.bps;
          else {
            const ts = BigInt(r.tsSec) * 1_000_000_000n + BigInt(r.tsNsec);
            first ??= ts;
            const d = ts > first ? Number(ts - first) / 1e6 : 0; // a step back: at once
            due = loopStart + d / o.speed;
          }
          let now = performance.now();
          if (due > now) {
            flush(); // what is due goes out before we wait
            while (due - now > 1.2 && !this.#stop) { // timers: whole ms, late rather than early
              await this.#sleep(Math.max(1, Math.min(due - now - 1, nextReport - now)));
              now = performance.now();
              if (now >= nextReport) nextReport = this.#report(t0, now);
            }
            for (let spins = 0; performance.now() < due && spins < 10_000_000; spins++) {
              /* the last millisecond: a timer would overshoot it */
            }
            if (this.#stop) break outer;
          }
          const f = r.data.length > REPLAY_MAX_FRAME
            ? r.data.subarray(0, REPLAY_MAX_FRAME)
            : r.data;
          while (!port.send(f)) { // no room even after a txsync (a pipe whose peer is slow)
            queued = 0;
            if (this.#stop) break outer;
            await this.#sleep(1);
          }
          queued++;
          st.packets++;
          st.bytes += f.length;
          bits += f.length * 8;
          if (queued >= 256) flush();
          if (o.limit !== undefined && st.packets >= o.limit) break outer;
          if (now >= nextReport) { // now: read before this packet, once per packet
            flush();
            nextReport = this.#report(t0, performance.now());
            await sleep(0); // a long top-speed run still lets Ctrl-C in
          }
        }
      }
    } finally {
      flush();
      st.stopped = this.#stop;
      st.seconds = (performance.now() - t0) / 1000;
    }
    return { ...st };
  }

  #report(t0: number, now: number): number {
    this.#st.seconds = (now - t0) / 1000;
    this.#o.progress?.({ ...this.#st });
    return now + this.#o.progressMs;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((res) => {
      const t = setTimeout(() => {
        this.#wake = null;
        res();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = null;
        res();
      };
    });
  }
}
