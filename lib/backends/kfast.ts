/**
 * The kernel fast path of an attachment (c-src/kfast/, include/kfast.h):
 * where the switch has learned that a unicast destination is on another
 * kernel-served port of the switch (a veth, a VM's TAP), the kernel hands
 * the frame straight to that port's interface (a tc program, no copy, GSO
 * super-frames whole), and the frame is counted in the switch's port
 * counters as if the switch had forwarded it. Everything else takes the
 * normal path through the forwarder. Started by the attachment's worker
 * (lib/attach/worker.ts) after its forwarder.
 *
 * @module
 */
import { vale } from "../../ffi/lib.ts";
import { decodeKfastStats, KFAST_STATS, type KfastStats } from "../../ffi/structs/kfast.ts";
import { check, Errno, ValeError } from "../errors.ts";
import type { KernelIo } from "./kernel_io.ts";
import type { Port } from "../switch/port.ts";

export type { KfastStats } from "../../ffi/structs/kfast.ts";

/** A running kernel fast path. Stop it before closing its handle and port. */
export class KernelFastPath implements Disposable {
  #k: Deno.PointerObject | null;

  /**
   * Start it for `port`, served by `io` (AF_PACKET with a virtio-net header,
   * in this process's network namespace). Needs CAP_BPF and CAP_NET_ADMIN and
   * Linux >= 6.6 (tcx); throws with the reason otherwise.
   */
  constructor(io: KernelIo, port: Port) {
    const out = new BigUint64Array(1);
    const rc = vale().vale_kfast_start(port.handle, io.handle, 0, new Uint8Array(out.buffer));
    check(rc, "kernel fast path");
    this.#k = Deno.UnsafePointer.create(out[0])!;
  }

  /** Counters and state. */
  stats(): KfastStats {
    if (!this.#k) throw new ValeError(Errno.EBADF, "kernel fast path is stopped");
    const b = new Uint8Array(KFAST_STATS.size);
    vale().vale_kfast_stats(this.#k, b);
    return decodeKfastStats(b);
  }

  /** Detach the program (the socket takes every frame again); the last counts go to the switch. Idempotent. */
  stop(): void {
    if (!this.#k) return;
    vale().vale_kfast_stop(this.#k);
    this.#k = null;
  }

  /** Same as stop(). */
  [Symbol.dispose](): void {
    this.stop();
  }

  /** Whether vale's fast-path program is attached to the interface with this index (of our namespace). */
  static attached(ifindex: number): boolean {
    const r = vale().vale_kfast_attached(ifindex);
    check(r, "kernel fast path");
    return r === 1;
  }
}
