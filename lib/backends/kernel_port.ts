/**
 * Ports beyond the switch, opened by name like any port: `tap:NAME` (a TAP
 * device: the kernel sees a normal interface, a namespace or VM sits behind
 * it) and existing kernel interfaces, `netmap:IF` (AF_XDP when it can be set
 * up, PACKET_MMAP otherwise — {@linkcode KernelPort.kernel} says which and
 * why), `xdp:IF`, `packet:IF`.
 *
 * How: the library creates a private pipe (on a switch of this process in a
 * hidden directory of the run dir, `RUN/.kernel/valek<pid>`, never listed),
 * runs the C forwarder (c-src/fwd.c) between the kernel interface and one end,
 * and hands the application the other end as an ordinary {@link Port}. Every
 * tool and C loop that works on a vale port (pkt-gen, bridge, `Port.send`,
 * `Port.packets()`) thus works unchanged on kernel interfaces; the pipe swaps
 * buffers, so the only copies are the kernel's own.
 *
 * ```ts
 * import { openAnyPort } from "../lib/backends.ts";
 * using p = openAnyPort("tap:tap0");          // or openPort("tap:tap0")
 * p.send(frame); p.txsync();
 * console.log(p.kernel.mode);                 // "tap", "af_xdp drv copy ...", ...
 * ```
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { ValeError } from "../errors.ts";
import { KernelIo, KernelIoError, type KernelIoOptions, type KernelIoStats } from "./kernel_io.ts";
import { parsePortName, type PortSpec } from "../names.ts";
import { type OpenOptions, openPort, Port } from "../switch/port.ts";
import { runDir } from "../rundir.ts";
import { switchInfo } from "../switch/control.ts";

const napCell = new Int32Array(new SharedArrayBuffer(4));

/** Subdirectory of the run dir holding the private switches of kernel ports. */
export const PRIVATE_DIR = ".kernel";

/** State of a forwarder (VFS_* in c-src/fwd.h). */
export type ForwarderState = "idle" | "running" | "down" | "gone" | "stopped" | "error";
const STATES: ForwarderState[] = ["idle", "running", "down", "gone", "stopped", "error"];

/** Counters of a forwarder (struct vale_fwd_stats). Packets are frames. */
export interface ForwarderStats {
  /** running, down (link down: frames to it dropped), gone (interface removed), ... */
  state: ForwarderState;
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
export interface ForwarderOptions {
  /** Most slots per kernel call (default 256). */
  batch?: number;
  /** Sleep slice in ms: bounds stop latency and link checks (default 200). */
  idleMs?: number;
  /** Only kernel → port. */
  noK2v?: boolean;
  /** Only port → kernel. */
  noV2k?: boolean;
}

function fwdError(rc: number): never {
  const p = vale().vale_fwd_last_error();
  const msg = p ? Deno.UnsafePointerView.getCString(p) : "forwarder failed";
  throw new ValeError(-rc, msg);
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
    const conf = new Uint8Array(64);
    const dv = new DataView(conf.buffer);
    dv.setUint32(0, opts.batch ?? 0, true);
    dv.setUint32(4, (opts.noK2v ? 1 : 0) | (opts.noV2k ? 2 : 0), true);
    dv.setInt32(8, opts.idleMs ?? 0, true);
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
    if (!this.#f) throw new ValeError(9, "forwarder is closed");
    const b = new Uint8Array(256);
    vale().vale_fwd_stats(this.#f, b);
    const dv = new DataView(b.buffer);
    const u = (i: number) => Number(dv.getBigUint64(i * 8, true));
    const z = b.subarray(128, 256).indexOf(0);
    return {
      state: STATES[dv.getUint32(104, true)] ?? "error",
      err: dv.getInt32(108, true),
      message: new TextDecoder().decode(b.subarray(128, z < 0 ? 256 : 128 + z)),
      k2vPkts: u(0),
      k2vBytes: u(1),
      k2vBatches: u(2),
      v2kPkts: u(3),
      v2kBytes: u(4),
      v2kBatches: u(5),
      k2vWaits: u(6),
      v2kDrops: u(7),
      v2kFull: u(8),
      kSleeps: u(9),
      vSleeps: u(10),
      linkDowns: u(11),
      ioErrors: u(12),
    };
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
      return STATES[await w] ?? "error";
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

/** Options of {@link openAnyPort}. */
export interface AnyPortOptions extends OpenOptions {
  /**
   * Kernel side settings (see {@link KernelIoOptions}): `netns`, `up`,
   * `promisc` (default true), `rxV3`, `qdiscBypass`, TAP flags... The backend
   * kind comes from the name (`tap:`, `netmap:` = auto, `xdp:`, `packet:`).
   */
  io?: Omit<KernelIoOptions, "kind">;
  /** Forwarder settings. */
  forwarder?: ForwarderOptions;
}

/** What serves a kernel port. */
export interface KernelSide {
  /** The interface (a TAP's resolved name). */
  ifname: string;
  /** `tap`, `xdp` or `packet`. */
  kind: string;
  /** e.g. "af_xdp drv copy sg queue 0", "af_packet rx v2 tx v2", "tap". */
  mode: string;
  /** Why this backend (for `netmap:` names: AF_XDP, or why AF_PACKET instead). */
  why: string;
  /** MTU at open. */
  mtu: number;
}

/** A port whose other side is a kernel interface. */
export interface KernelPort extends Port {
  /** The kernel side: interface, backend and why. */
  readonly kernel: KernelSide;
  /** The forwarder's counters and state (down, gone...). */
  forwarderStats(): ForwarderStats;
  /** The kernel handle's counters (drops by reason). */
  kernelStats(): KernelIoStats;
  /** Resolves when the kernel side ends (interface removed) or the port is closed. */
  kernelDone(): Promise<ForwarderState>;
}

let pipeSeq = 0;
let swept = false;

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Remove private switches of processes that died without closing (SIGKILL). */
function sweepPrivate(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    const m = /^valek(\d+)$/.exec(e.name);
    if (!m || Number(m[1]) === Deno.pid || pidAlive(Number(m[1]))) continue;
    vale().vale_remove_switch(cstr(dir), cstr(e.name)); // best effort
  }
}

function ioOptions(spec: PortSpec, o: AnyPortOptions["io"] = {}): KernelIoOptions {
  const io: KernelIoOptions = { ...o };
  if (spec.kind === "tap") {
    io.kind = "tap";
    io.up ??= true; // a new TAP is down; the port is meant to pass traffic
  } else {
    io.kind = spec.method === "xdp" ? "xdp" : spec.method === "packet" ? "packet" : "auto";
    if (spec.mode === "one-nic") {
      if (io.kind === "packet") {
        throw new ValeError(95, `${spec.name}-${spec.ring}: one queue (-N) needs AF_XDP`);
      }
      io.kind = "xdp";
      io.queue = spec.ring ?? 0;
    }
  }
  return io;
}

function refuse(name: string, why: string): never {
  throw new ValeError(95, `${name}: ${why}`);
}

interface Parts {
  io: KernelIo;
  dir: string;
  sw: string;
  id: string;
  conf: string;
}

type KernelPortCtor = new (spec: PortSpec, parts: Parts, opts: AnyPortOptions) => KernelPort;
let KernelPortClass: KernelPortCtor | undefined;

// Defined on first use: lib/port.ts imports this module, so Port may not be
// initialised yet when this module is evaluated.
function kernelPortClass(): KernelPortCtor {
  KernelPortClass ??= class extends Port implements KernelPort {
    readonly kernel: KernelSide;
    #io: KernelIo;
    #peer: Port;
    #fwd: Forwarder;

    constructor(spec: PortSpec, parts: Parts, opts: AnyPortOptions) {
      super(parsePortName(`${parts.sw}:k{${parts.id}${parts.conf}`), { runDir: parts.dir });
      let peer: Port | undefined;
      try {
        peer = openPort(`${parts.sw}:k}${parts.id}`, { runDir: parts.dir });
        this.#fwd = new Forwarder(parts.io, peer, opts.forwarder);
      } catch (e) {
        peer?.close();
        super.close();
        throw e;
      }
      this.#io = parts.io;
      this.#peer = peer;
      const i = parts.io.info();
      this.kernel = { ifname: i.ifname, kind: i.kind, mode: i.mode, why: i.why, mtu: i.mtu };
      // the user's name, not the private pipe's
      Object.defineProperty(this, "name", { value: spec.name });
      Object.defineProperty(this, "spec", { value: spec });
    }

    /**
     * What the application synced before close is in the pipe: give the
     * forwarder up to `ms` to hand it to the kernel (netmap hands a synced
     * TX ring to the NIC before close returns).
     */
    #drain(ms: number): void {
      const end = Date.now() + ms;
      try {
        for (;;) {
          const sent = switchInfo(this.switchName, { runDir: this.runDir }).ports
            .find((p) => p.index === this.index)?.counters.tx_packets ?? 0;
          const f = this.#fwd.stats();
          if (f.state !== "running") break;
          // (txPending only reads a flag: the forwarder thread does the sending)
          if (f.v2kPkts + f.v2kDrops >= sent && !this.#io.txPending()) break;
          if (Date.now() >= end) break;
          Atomics.wait(napCell, 0, 0, 1);
        }
      } catch { /* closing anyway */ }
    }

    forwarderStats(): ForwarderStats {
      return this.#fwd.stats();
    }

    kernelStats(): KernelIoStats {
      return this.#io.stats();
    }

    kernelDone(): Promise<ForwarderState> {
      return this.#fwd.done();
    }

    override close(): void {
      if (this.closed) return;
      this.#drain(1000);
      this.#fwd.close();
      this.#peer.close();
      this.#io.close();
      super.close();
    }
  };
  return KernelPortClass;
}

/**
 * Open any port by name: switch ports and pipes (`valeX:Y`) as
 * {@link openPort}, kernel interfaces (`tap:`, `netmap:`, `xdp:`, `packet:`)
 * as a {@link KernelPort}. Needs the privileges of the kernel side
 * (CAP_NET_ADMIN to create a TAP, CAP_NET_RAW for AF_PACKET, and CAP_BPF +
 * CAP_NET_ADMIN for AF_XDP; `netmap:` falls back to AF_PACKET without them).
 */
export function openAnyPort(name: string, opts: AnyPortOptions = {}): Port {
  const spec = parsePortName(name);
  if (spec.kind === "vale") return openPort(name, opts);
  return openKernelPort(spec, opts);
}

/** {@link openAnyPort} for a parsed kernel port name. */
export function openKernelPort(spec: PortSpec, opts: AnyPortOptions = {}): KernelPort {
  const name = spec.name;
  if (spec.kind !== "tap" && spec.kind !== "netmap") {
    refuse(name, `${spec.kind} ports are not available yet`);
  }
  if (spec.pipe) refuse(name, "pipes of kernel interfaces are not supported; use vale pipes");
  if (spec.mode === "host" || spec.mode === "one-host" || spec.mode === "nic-host") {
    refuse(
      name,
      "the host rings of a kernel interface are reached through a TAP: use " +
        "'vale-ctl -h valeX:IF' (or a tap: port) for the host stack",
    );
  }
  if (spec.flags.zcopyMonitor || spec.flags.txMonitor || spec.flags.rxMonitor) {
    refuse(name, "monitor ports are not supported; use 'vale capture'");
  }
  if (spec.memId !== undefined || spec.share !== undefined) {
    refuse(name, "memory regions are per port here (@N/@share unsupported)");
  }
  if ((spec.conf.txRings ?? 1) > 1 || (spec.conf.rxRings ?? 1) > 1) {
    refuse(name, "a kernel port has one ring pair here (rings=1)");
  }
  const dir = `${runDir(opts.runDir)}/${PRIVATE_DIR}`;
  if (!swept) {
    swept = true;
    sweepPrivate(dir);
  }
  // the kernel side first: its errors (privileges, no such interface) come before anything exists
  let io: KernelIo;
  try {
    io = KernelIo.open(spec.iface!, ioOptions(spec, opts.io));
  } catch (e) {
    if (e instanceof KernelIoError) throw new ValeError(e.errno, e.message);
    throw e;
  }
  const slots = Math.max(spec.conf.txSlots ?? 0, spec.conf.rxSlots ?? 0);
  const parts: Parts = {
    io,
    dir,
    sw: `valek${Deno.pid}`,
    id: `${pipeSeq++}`,
    conf: slots ? `@conf:slots=${slots}` : "",
  };
  try {
    return new (kernelPortClass())(spec, parts, opts);
  } catch (e) {
    io.close();
    throw e;
  }
}
