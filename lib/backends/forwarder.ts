/**
 * The C forwarder (c-src/fwd/fwd.c) between an open kernel handle and an open
 * port: two threads, one per direction. Kernel ports (./kernel_port.ts) and
 * attachments (lib/attach/) both run one.
 *
 * @module
 */
import { vale } from "../../ffi/lib.ts";
import {
  decodeFwdStats,
  encodeFwdConf,
  FWD_STATES,
  FWD_STATS,
  type FwdOptions,
  type FwdState,
  type FwdStats,
} from "../../ffi/structs/fwd.ts";
import { check, Errno, ValeError } from "../errors.ts";
import type { KernelIo } from "./kernel_io.ts";
import type { Port } from "../switch/port.ts";

/** State of a forwarder (VFS_* in c-src/fwd/fwd.h). */
export type ForwarderState = FwdState;
/** Counters of a forwarder (struct vale_fwd_stats). Packets are frames. */
export type ForwarderStats = FwdStats;
/** Options of a forwarder (struct vale_fwd_conf). */
export type ForwarderOptions = FwdOptions;

function fwdLastError(): string {
  const p = vale().vale_fwd_last_error();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

function fwdError(rc: number): never {
  check(rc, "forwarder", fwdLastError);
  throw new ValeError(Errno.EINVAL, "forwarder failed");
}

/**
 * The C forwarder between an open kernel handle and an open port: two
 * threads, one per direction. It owns neither: stop it before closing them.
 */
export class Forwarder implements Disposable {
  #f: Deno.PointerObject | null;
  #waiting: Promise<number> | null = null;

  /** Create and start forwarding between `io` and `port`. */
  constructor(io: KernelIo, port: Port, opts: ForwarderOptions = {}) {
    const conf = encodeFwdConf(opts);
    const out = new BigUint64Array(1);
    const lib = vale();
    const rc = lib.vale_fwd_create(io.handle, port.handle, conf, new Uint8Array(out.buffer));
    if (rc < 0) fwdError(rc);
    this.#f = Deno.UnsafePointer.create(out[0])!;
    const r = lib.vale_fwd_start(this.#f);
    if (r < 0) {
      lib.vale_fwd_destroy(this.#f);
      this.#f = null;
      fwdError(r);
    }
  }

  /** Counters and state. */
  stats(): ForwarderStats {
    if (!this.#f) throw new ValeError(Errno.EBADF, "forwarder is closed");
    const b = new Uint8Array(FWD_STATS.size);
    vale().vale_fwd_stats(this.#f, b);
    return decodeFwdStats(b);
  }

  /**
   * Resolves when the forwarder ends by itself (the interface was removed, a
   * fatal error) or is stopped, or after timeoutMs (-1: never); with the state.
   * Runs on a helper thread: the event loop keeps going.
   */
  async done(timeoutMs = -1): Promise<ForwarderState> {
    if (!this.#f) return "stopped";
    const w = vale().vale_fwd_wait(this.#f, timeoutMs);
    this.#waiting = w;
    try {
      return FWD_STATES[await w] ?? "error";
    } finally {
      this.#waiting = null;
    }
  }

  /** Stop both threads (joins them). Idempotent. */
  stop(): void {
    if (this.#f) vale().vale_fwd_stop(this.#f);
  }

  /** Stop and free. A pending {@link done} resolves first. */
  close(): void {
    if (!this.#f) return;
    const f = this.#f;
    vale().vale_fwd_stop(f);
    if (this.#waiting) {
      // vale_fwd_wait returns at once after a stop: free once it has
      this.#f = null;
      this.#waiting.finally(() => vale().vale_fwd_destroy(f));
      return;
    }
    this.#f = null;
    vale().vale_fwd_destroy(f);
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
