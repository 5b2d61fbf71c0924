/**
 * netmap's bridge loop (c-src/apps/bridge.c) driven from TypeScript: forward
 * everything that arrives on port A out of port B and back, by swapping
 * buffers when both ports share one memory region and by copying otherwise.
 * `cli/bridge.ts` is built on this.
 *
 * ```ts
 * using a = openPort("vale0:up"), b = openPort("vale1:down");
 * const br = new Bridge(a, b);
 * const done = br.run();      // until br.stop()
 * ...
 * br.stop(); await done; br.close();
 * ```
 *
 * @module
 */
import { vale } from "../../ffi/lib.ts";
import { Struct } from "../../ffi/layout.ts";
import { BR_CONF, BR_STATS, BrConsts } from "../../ffi/structs/tools.ts";
import { Errno, ValeError } from "../errors.ts";
import type { Port } from "../switch/port.ts";
import { switchInfo } from "../switch/control.ts";

/** Options of {@link Bridge}. */
export interface BridgeOptions {
  /** Slots moved per ring pass (netmap's -b, 1..8192, default 1024). */
  burst?: number;
  /** false: always copy (netmap's -c). */
  zeroCopy?: boolean;
  /** Busy-poll this many microseconds before sleeping (default 50). */
  spinUs?: number;
}

/** Counters of one direction. */
export interface BridgeDirection {
  /** Complete packets forwarded. */
  packets: number;
  /** Their bytes. */
  bytes: number;
  /** Slots longer than a buffer, forwarded with length 0. */
  badLength: number;
  /** Zero-length slots not forwarded. */
  empty: number;
}

/**
 * Do two open ports live in one memory region (so buffers can be swapped)?
 * True for the two ends of one pipe and for a port with itself.
 */
export function sameMemory(a: Port, b: Port): boolean {
  if (a === b) return true;
  if (a.switchName !== b.switchName || a.runDir !== b.runDir) return false;
  const ports = switchInfo(a.switchName, { runDir: a.runDir }).ports;
  const pa = ports.find((p) => p.index === a.index), pb = ports.find((p) => p.index === b.index);
  return !!pa && !!pb && pa.mem_id === pb.mem_id;
}

/** A running (or ready) bridge between two ports, or one port looped back. */
export class Bridge {
  /** Buffers are swapped rather than copied. */
  readonly zeroCopy: boolean;
  /** One port looped back to itself. */
  readonly loopback: boolean;
  #ctx: Deno.PointerObject | null;
  #st: Struct<keyof typeof BR_STATS.fields>;
  #running: Promise<number> | null = null;

  /** Bridge `a` and `b` (`b` omitted or equal to `a`: loop `a` back to itself). */
  constructor(a: Port, b?: Port, opts: BridgeOptions = {}) {
    this.loopback = !b || b === a;
    this.zeroCopy = opts.zeroCopy !== false && (this.loopback || sameMemory(a, b!));
    const conf = new Struct(BR_CONF)
      .set("version", BrConsts.BR_VERSION)
      .set("burst", opts.burst ?? 1024)
      .set("zerocopy", this.zeroCopy ? 1 : 0)
      .set("spin_us", opts.spinUs ?? 50).bytes;
    const lib = vale();
    this.#ctx = lib.vale_br_create(a.handle, this.loopback ? null : b!.handle, conf, conf.length);
    if (!this.#ctx) throw new ValeError(Errno.EINVAL, `bridge: ${a.name}: no TX or RX ring bound`);
    this.#st = new Struct(
      BR_STATS,
      new Uint8Array(
        Deno.UnsafePointerView.getArrayBuffer(lib.vale_br_stats(this.#ctx)!, BR_STATS.size),
      ),
    );
  }

  /** Forward until {@link stop}; resolves with 0 or -errno. */
  run(): Promise<number> {
    if (!this.#ctx) throw new ValeError(Errno.EBADF, "bridge: closed");
    this.#running ??= vale().vale_br_run(this.#ctx);
    return this.#running;
  }

  /** Stop forwarding (Ctrl-C). */
  stop(): void {
    if (this.#ctx) vale().vale_br_stop(this.#ctx);
  }

  /** Counters: [A → B, B → A] (a loopback uses the first). */
  stats(): [BridgeDirection, BridgeDirection] {
    const st = this.#st;
    const dir = (d: number): BridgeDirection => ({
      packets: st.get("pkts", d),
      bytes: st.get("bytes", d),
      badLength: st.get("bad_len", d),
      empty: st.get("empty", d),
    });
    return [dir(0), dir(1)];
  }

  /** Free the C context (after {@link run} resolved; the ports stay open). */
  close(): void {
    if (!this.#ctx) return;
    const ctx = this.#ctx;
    this.#ctx = null;
    if (this.#running) this.#running.finally(() => vale().vale_br_destroy(ctx));
    else vale().vale_br_destroy(ctx);
  }
}
