/**
 * Kernel interfaces opened by name like any port (`tap:NAME`, `netmap:IF`,
 * `xdp:IF`, `packet:IF`): what every kernel port kind shares. The kinds
 * themselves (./tap.ts, ./netmap.ts) only say how their interface is opened.
 *
 * How: the library creates a private pipe (on a switch of this process in a
 * hidden directory of the run dir, `RUN/.kernel/valek<pid>`, never listed),
 * runs the C forwarder (c-src/fwd/fwd.c) between the kernel interface and one end,
 * and hands the application the other end as a {@link KernelPort}, an
 * ordinary {@link Port}. Every tool and C loop that works on a vale port
 * (pkt-gen, bridge, `Port.send`, `Port.packets()`) thus works unchanged on
 * kernel interfaces; the pipe swaps buffers, so the only copies are the
 * kernel's own.
 *
 * ```ts
 * import { openPort } from "@vale/vale";
 * using p = openPort("tap:tap0") as KernelPort;
 * p.send(frame); p.txsync();
 * console.log(p.kernel.mode);                 // "tap", "af_xdp drv copy ...", ...
 * ```
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { Errno, ValeError } from "../errors.ts";
import { type PortSpec, switchPipeSpec } from "../names.ts";
import { runDir } from "../rundir.ts";
import { Mtu } from "../../ffi/structs/open_req.ts";
import { switchInfo } from "../switch/control.ts";
import { type OpenOptions, Port } from "../switch/port.ts";
import {
  Forwarder,
  type ForwarderOptions,
  type ForwarderState,
  type ForwarderStats,
} from "./forwarder.ts";
import {
  KernelIo,
  type KernelIoOptions,
  type KernelIoStats,
  type VhostStatus,
} from "./kernel_io.ts";

const napCell = new Int32Array(new SharedArrayBuffer(4));

/** Subdirectory of the run dir holding the private switches of kernel ports. */
export const PRIVATE_DIR = ".kernel";

/** Options of a kernel port, beyond {@link OpenOptions}. */
export interface KernelPortOptions extends OpenOptions {
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
  /** virtio-net header before each frame (0: none): GSO super-frames pass whole. */
  vnetHdrLen: number;
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

/** The two ends of a new private pipe for kernel port `spec`. */
function privatePipe(spec: PortSpec): { master: PortSpec; slave: PortSpec } {
  const slots = Math.max(spec.conf.txSlots ?? 0, spec.conf.rxSlots ?? 0);
  const conf = slots ? { txSlots: slots, rxSlots: slots } : {};
  const sw = `valek${Deno.pid}`, id = `${pipeSeq++}`;
  return {
    master: switchPipeSpec(sw, "k", "master", id, conf),
    slave: switchPipeSpec(sw, "k", "slave", id),
  };
}

/**
 * A port whose other side is a kernel interface: the application's end of
 * the private pipe, named as the user named it.
 */
export class KernelPort extends Port {
  /** The kernel side: interface, backend and why. */
  readonly kernel: KernelSide;
  readonly #io: KernelIo;
  readonly #peer: Port;
  readonly #fwd: Forwarder;

  /** Use `openPort`. Takes `io` over (it is closed with the port, not on failure). */
  constructor(spec: PortSpec, io: KernelIo, opts: KernelPortOptions, dir: string) {
    const pipe = privatePipe(spec);
    // both pipe ends carry the kernel side's virtio-net header (the forwarder passes
    // slots as they are): the application sees it in `vnetHdrLen`
    const i = io.info();
    const vnet = { vnetHdrLen: i.vnetHdrLen, mtu: portMtu(i.mtu) };
    super(pipe.master, { runDir: dir, ...vnet }, spec);
    let peer: Port | undefined;
    try {
      peer = new Port(pipe.slave, { runDir: dir, ...vnet });
      this.#fwd = new Forwarder(io, peer, opts.forwarder);
    } catch (e) {
      peer?.close();
      super.close();
      throw e;
    }
    this.#io = io;
    this.#peer = peer;
    this.kernel = {
      ifname: i.ifname,
      kind: i.kind,
      mode: i.mode,
      why: i.why,
      mtu: i.mtu,
      vnetHdrLen: i.vnetHdrLen,
    };
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

  /** The forwarder's counters and state (down, gone...). */
  forwarderStats(): ForwarderStats {
    return this.#fwd.stats();
  }

  /** A vhost-user port's front-end: connected, features, queues, refusals (throws for others). */
  vhostStatus(): VhostStatus {
    return this.#io.vhostStatus();
  }

  /** The kernel handle's counters (drops by reason). */
  kernelStats(): KernelIoStats {
    return this.#io.stats();
  }

  /** Resolves when the kernel side ends (interface removed) or the port is closed. */
  kernelDone(): Promise<ForwarderState> {
    return this.#fwd.done();
  }

  /** Hands what was synced to the kernel, then closes forwarder, pipe and interface. */
  override close(): void {
    if (this.closed) return;
    this.#drain(1000);
    this.#fwd.close();
    this.#peer.close();
    this.#io.close();
    super.close();
  }
}

/** The switch MTU (Ethernet frame, no header) of a port for an interface of MTU `ifMtu`. */
export function portMtu(ifMtu: number): number {
  return Math.min(Math.max(ifMtu + 14, Mtu.VALE_MIN_MTU), Mtu.VALE_MAX_MTU);
}

function refuse(name: string, why: string): never {
  throw new ValeError(Errno.EOPNOTSUPP, `${name}: ${why}`);
}

/**
 * Opens kernel port `spec` with kernel side `io` (its kind decided by the
 * caller: ./tap.ts, ./netmap.ts). Refuses what no kernel port has: pipes,
 * host rings, more than one ring pair.
 */
export function openKernelPort(
  spec: PortSpec,
  io: KernelIoOptions,
  opts: KernelPortOptions = {},
): KernelPort {
  const name = spec.name;
  if (spec.pipe) refuse(name, "pipes of kernel interfaces are not supported; use vale pipes");
  if (spec.mode === "host" || spec.mode === "one-host" || spec.mode === "nic-host") {
    refuse(
      name,
      "the host rings of a kernel interface are reached through a TAP: use " +
        "'vale-ctl -h valeX:IF' (or a tap: port) for the host stack",
    );
  }
  if ((spec.conf.txRings ?? 1) > 1 || (spec.conf.rxRings ?? 1) > 1) {
    refuse(name, "a kernel port has one ring pair here (rings=1)");
  }
  const dir = `${runDir(opts.runDir)}/${PRIVATE_DIR}`;
  if (!swept) {
    swept = true;
    sweepPrivate(dir);
  }
  // a header asked for on the port (openPort(name, { vnetHdrLen })) is the kernel side's:
  // offloads kept, 64 KiB GSO frames pass whole
  if (opts.vnetHdrLen && io.vnetHdr === undefined) {
    io = { ...io, vnetHdr: opts.vnetHdrLen as 10 | 12 };
  }
  // the kernel side first: its errors (privileges, no such interface) come before anything exists
  const k = KernelIo.open(spec.iface!, io);
  try {
    return new KernelPort(spec, k, opts, dir);
  } catch (e) {
    k.close();
    throw e;
  }
}
