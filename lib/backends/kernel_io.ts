/**
 * Kernel interfaces for vale: TAP devices (the host stack, namespaces, VMs),
 * and existing interfaces (veth, NICs) through AF_XDP or AF_PACKET rings.
 *
 * A thin wrapper over the `vale_io_*` functions of build/libvale.so
 * (c-src/include/io.h). Tests and tools use it directly; the forwarders between a
 * kernel interface and a vale port (lib/backends/, lib/attach/) hand
 * its native {@linkcode KernelIo.handle} to the C forwarder (c-src/fwd/fwd.c).
 *
 * The FFI declarations are in the one symbols object of ffi/symbols.ts
 * (block `// --- kernel I/O ---`); the library is loaded by ffi/lib.ts.
 *
 * @module
 */

import { cstr, vale } from "../../ffi/lib.ts";
import {
  decodeIoInfo,
  decodeIoLink,
  decodeIoStats,
  encodeIoOpts,
  IO_INFO,
  IO_LINK,
  IO_STATS,
  IoFlags,
  type IoInfo,
  IoKind,
  type IoKindName,
  type IoLink,
  type IoOpts,
  type IoStats,
  OFFLOADS_NONE,
} from "../../ffi/structs/io.ts";
import { check as checkRc, Errno, ValeError } from "../errors.ts";

function sym(): ReturnType<typeof vale> {
  return vale();
}

/** Backend kinds (VIO_* in io.h). */
export const Kind = IoKind;
/** TUN_F_* offloads of a TAP with a header (`offloads` option, `info().offloads`). */
export { TunOffloads } from "../../ffi/structs/io.ts";
/** Name of a backend kind. */
export type KindName = IoKindName;
/** Slot flag: more fragments of this frame follow (netmap's NS_MOREFRAG). */
export const MOREFRAG = 0x20;
/** Size of a vale ring buffer, the default buffer size. */
export const BUF_SIZE = 2048;
/** Poll events. */
export const POLL_IN = 1;
/** Poll events. */
export const POLL_OUT = 4;

/** One virtqueue of a vhost-user handle ({@link KernelIo.vhostStatus}). */
export interface VhostQueue {
  /** 0: the guest's RX, 1: its TX. */
  index: number;
  /** Ring size (0: not set yet). */
  size: number;
  /** Started, enabled, mapped and not stopped for a bad index. */
  ready: boolean;
  enabled: boolean;
  started: boolean;
  /** Stopped: the front-end's avail index was out of range. */
  broken: boolean;
  last_avail: number;
  last_used: number;
}

/** State of a vhost-user handle (c-src/vhost/proto.c, vh_dev_json). */
export interface VhostStatus {
  /** The socket. */
  path: string;
  /** `server`: we listen; `client`: we connect (and reconnect). */
  role: "server" | "client";
  /** A front-end is connected. */
  connected: boolean;
  /** Both queues are running: frames flow. */
  ready: boolean;
  /** Virtio features negotiated (hex). */
  features: string;
  /** vhost-user protocol features negotiated (hex). */
  protocol_features: string;
  version_1: boolean;
  mrg_rxbuf: boolean;
  event_idx: boolean;
  indirect_desc: boolean;
  queues: VhostQueue[];
  /** What the front-ends did: connections, messages, refusals. */
  counters: Record<string, number>;
  /** The virtio-net header length the port's frames carry (12 with offloads, else 0). */
  port_vnet_hdr: number;
  /** The last refusal, for people. */
  last_error: string;
}

/** Counters of a handle (struct vale_io_stats). */
export type KernelIoStats = IoStats;
/** What a handle is (struct vale_io_info). */
export type KernelIoInfo = IoInfo;
/** Link state (struct vale_io_link). */
export type LinkInfo = IoLink;
/**
 * Failures of kernel I/O are {@link ValeError}s; this alias of it keeps
 * `instanceof KernelIoError` working for one release.
 * @deprecated use ValeError
 */
export const KernelIoError = ValeError;
/** @deprecated use ValeError */
export type KernelIoError = ValeError;

/** Options of {@linkcode KernelIo.open}; see struct vale_io_opts in c-src/include/io.h. */
export interface KernelIoOptions {
  /** Backend: "auto" (AF_XDP if it can be set up, else AF_PACKET), "tap", "packet", "xdp". */
  kind?: KindName;
  /** Network namespace: a name from `ip netns add`, or a path like /proc/PID/ns/net. */
  netns?: string;
  /** Bring the interface up if it is down. */
  up?: boolean;
  /** PACKET/XDP: open even if the interface is down. */
  allowDown?: boolean;
  /** PACKET/XDP: promiscuous while open (default true: a bridge port needs it). */
  promisc?: boolean;
  /** PACKET: PACKET_QDISC_BYPASS. */
  qdiscBypass?: boolean;
  /** PACKET: also receive what the host itself sends on the interface. */
  seeOutgoing?: boolean;
  /** PACKET: TPACKET_V3 block RX ring (more throughput, up to blockTovMs of latency). */
  rxV3?: boolean;
  /** PACKET: leave partial (offloaded) checksums as the kernel gave them. */
  noCsumFix?: boolean;
  /** TAP: fail if the device exists. */
  tapExclusive?: boolean;
  /** TAP: only attach to an existing device. */
  tapNoCreate?: boolean;
  /** TAP: keep the device after close. */
  tapPersist?: boolean;
  /** TAP: IFF_VNET_HDR with offloads off (a zero virtio-net header is added and stripped). */
  tapVnetHdr?: boolean;
  /**
   * Keep offloads: every frame in the buffers starts with a virtio-net header of this many
   * bytes (10 or 12), GSO super-frames up to 64 KiB and partial checksums pass as they are.
   * TAP: IFF_VNET_HDR and TUNSETOFFLOAD; PACKET: PACKET_VNET_HDR; XDP: refused; "auto": on a
   * veth or TAP AF_PACKET with the header, else AF_XDP without (see `info().vnetHdrLen`).
   */
  vnetHdr?: 10 | 12;
  /** TAP with `vnetHdr`: TUN_F_* offloads to set (default: checksum, TSO4/6, USO); 0: none. */
  offloads?: number;
  /** XDP: "skb" (generic) or "drv" (native) only; default: native, else generic. */
  xdpMode?: "skb" | "drv";
  /** XDP: require zero-copy. */
  xdpZeroCopy?: boolean;
  /** XDP: no multi-buffer (frames larger than 4 KiB dropped). */
  xdpNoSg?: boolean;
  /** Size of each buffer (default 2048, a vale ring buffer). */
  bufSize?: number;
  /** Buffers per receive call of this wrapper (default 256). */
  batch?: number;
  /** PACKET RX ring block size in bytes. */
  rxBlockSize?: number;
  /** PACKET RX ring blocks. */
  rxBlocks?: number;
  /** PACKET V3 block timeout (ms). */
  blockTovMs?: number;
  /** TX ring frames. */
  txFrames?: number;
  /** XDP RX/fill ring size. */
  xdpFrames?: number;
  /** XDP: RX queue to bind. */
  queue?: number;
  /** Set the interface MTU at open. */
  mtu?: number;
  /**
   * vhost: offer checksum and TSO offloads; the frames then carry the guest's
   * virtio-net header ({@link KernelIo.vnetHdr}), which the C forwarder gives its port.
   */
  vhostOffloads?: boolean;
}

function lastError(): string {
  const p = sym().vale_io_last_error();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/** Throws the ValeError of a negative return code, with the kernel I/O message. */
function check(r: number): number {
  return checkRc(r, "kernel I/O", lastError);
}

// the KernelIoOptions switches, as VIO_F_* flags
const FLAG_OF: [keyof KernelIoOptions, number][] = [
  ["up", IoFlags.VIO_F_UP],
  ["allowDown", IoFlags.VIO_F_ALLOW_DOWN],
  ["qdiscBypass", IoFlags.VIO_F_QDISC_BYPASS],
  ["seeOutgoing", IoFlags.VIO_F_SEE_OUTGOING],
  ["rxV3", IoFlags.VIO_F_RX_V3],
  ["noCsumFix", IoFlags.VIO_F_NO_CSUM_FIX],
  ["tapExclusive", IoFlags.VIO_F_TAP_EXCL],
  ["tapNoCreate", IoFlags.VIO_F_TAP_NO_CREATE],
  ["tapPersist", IoFlags.VIO_F_TAP_PERSIST],
  ["tapVnetHdr", IoFlags.VIO_F_TAP_VNET_HDR],
  ["xdpZeroCopy", IoFlags.VIO_F_XDP_ZEROCOPY],
  ["xdpNoSg", IoFlags.VIO_F_XDP_NO_SG],
  ["vhostOffloads", IoFlags.VIO_F_VHOST_OFFLOADS],
];

function optsBytes(o: KernelIoOptions): Uint8Array<ArrayBuffer> {
  let flags = 0;
  for (const [k, f] of FLAG_OF) if (o[k]) flags |= f;
  if (o.promisc ?? true) flags |= IoFlags.VIO_F_PROMISC; // a bridge port needs it
  if (o.xdpMode === "skb") flags |= IoFlags.VIO_F_XDP_SKB;
  if (o.xdpMode === "drv") flags |= IoFlags.VIO_F_XDP_DRV;
  if (o.queue !== undefined) flags |= IoFlags.VIO_F_XDP_QUEUE;
  if (o.vnetHdr) flags |= IoFlags.VIO_F_VNET_HDR;
  const opts: IoOpts = {
    flags,
    buf_size: o.bufSize,
    rx_block_size: o.rxBlockSize,
    rx_blocks: o.rxBlocks,
    block_tov_ms: o.blockTovMs,
    tx_frames: o.txFrames,
    xdp_frames: o.xdpFrames,
    queue: o.queue,
    mtu: o.mtu,
    vnet_hdr_len: o.vnetHdr,
    offloads: o.offloads === 0 ? OFFLOADS_NONE : o.offloads,
    netns: o.netns,
  };
  const b = encodeIoOpts(opts);
  if (!b) throw new ValeError(Errno.EINVAL, `netns name too long: ${o.netns}`);
  return b;
}

/**
 * One kernel interface opened for batched frame I/O.
 *
 * ```ts
 * using io = KernelIo.open("veth1", { kind: "auto", up: true });
 * io.send([frame]);
 * if (io.poll(POLL_IN, 100) > 0) for (const f of io.recv()) console.log(f.length);
 * ```
 */
export class KernelIo {
  #h: Deno.PointerObject | null;
  #bs: number;
  #n: number;
  // copy buffers of the TypeScript recv/send helpers, allocated on first use
  // (a handle given to the C forwarder never needs them)
  #rx: Uint8Array<ArrayBuffer> | null = null;
  #rxPtrs: BigUint64Array<ArrayBuffer> | null = null;
  #tx: Uint8Array<ArrayBuffer> | null = null;
  #txPtrs: BigUint64Array<ArrayBuffer> | null = null;
  /** Lengths of the buffers filled by the last {@linkcode recvBatch}. */
  readonly rxLens: Uint16Array<ArrayBuffer>;
  /** Flags (MOREFRAG) of the buffers filled by the last {@linkcode recvBatch}. */
  readonly rxFlags: Uint16Array<ArrayBuffer>;
  #txLens: Uint16Array<ArrayBuffer>;
  #txFlags: Uint16Array<ArrayBuffer>;

  private constructor(h: Deno.PointerObject, bs: number, n: number) {
    this.#h = h;
    this.#bs = bs;
    this.#n = n;
    this.rxLens = new Uint16Array(n);
    this.rxFlags = new Uint16Array(n);
    this.#txLens = new Uint16Array(n);
    this.#txFlags = new Uint16Array(n);
  }

  #rxBufs(): [Uint8Array<ArrayBuffer>, BigUint64Array<ArrayBuffer>] {
    if (!this.#rx) {
      this.#rx = new Uint8Array(this.#bs * this.#n);
      this.#rxPtrs = KernelIo.#ptrTable(this.#rx, this.#bs, this.#n);
    }
    return [this.#rx, this.#rxPtrs!];
  }

  #txBufs(): [Uint8Array<ArrayBuffer>, BigUint64Array<ArrayBuffer>] {
    if (!this.#tx) {
      this.#tx = new Uint8Array(this.#bs * this.#n);
      this.#txPtrs = KernelIo.#ptrTable(this.#tx, this.#bs, this.#n);
    }
    return [this.#tx, this.#txPtrs!];
  }

  static #ptrTable(
    buf: Uint8Array<ArrayBuffer>,
    bs: number,
    n: number,
  ): BigUint64Array<ArrayBuffer> {
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
    const t = new BigUint64Array(n);
    for (let i = 0; i < n; i++) t[i] = base + BigInt(i * bs);
    return t;
  }

  /** The native `struct vale_io *` (for the C forwarder); throws once closed. */
  get handle(): Deno.PointerObject {
    return this.#handle();
  }

  /** Open `ifname` (a TAP is created unless `tapNoCreate`). Throws {@linkcode ValeError}. */
  static open(ifname: string, opts: KernelIoOptions = {}): KernelIo {
    const out = new BigUint64Array(1);
    const kind = Kind[opts.kind ?? "auto"];
    if (kind === undefined) throw new ValeError(Errno.EINVAL, `unknown kind ${opts.kind}`);
    check(sym().vale_io_open(kind, cstr(ifname), optsBytes(opts), out));
    const h = Deno.UnsafePointer.create(out[0]);
    if (!h) throw new ValeError(Errno.EINVAL, "vale_io_open returned no handle");
    const bs = opts.bufSize ?? BUF_SIZE;
    const n = Math.max(64, opts.batch ?? 256);
    return new KernelIo(h, bs, n);
  }

  #handle(): Deno.PointerObject {
    if (!this.#h) throw new ValeError(Errno.EBADF, "kernel I/O handle is closed");
    return this.#h;
  }

  /** Buffers per call. */
  get batch(): number {
    return this.#n;
  }
  /** Bytes per buffer. */
  get bufSize(): number {
    return this.#bs;
  }
  /** An fd for an event loop (readable when frames wait). */
  get fd(): number {
    return sym().vale_io_fd(this.#handle());
  }

  /**
   * Receive into the wrapper's buffers; returns how many buffers were filled
   * (see {@linkcode rxBuffer}, {@linkcode rxLens}, {@linkcode rxFlags}).
   */
  recvBatch(max: number = this.#n): number {
    return check(
      sym().vale_io_recv_batch(
        this.#handle(),
        this.#rxBufs()[1],
        this.rxLens,
        this.rxFlags,
        Math.min(max, this.#n),
      ),
    );
  }

  /** View of receive buffer `i` (valid until the next recvBatch). */
  rxBuffer(i: number): Uint8Array<ArrayBuffer> {
    return this.#rxBufs()[0].subarray(i * this.#bs, i * this.#bs + this.rxLens[i]);
  }

  /** Receive what is pending (one batch), fragments joined, copied out. */
  recv(max: number = this.#n): Uint8Array<ArrayBuffer>[] {
    const n = this.recvBatch(max);
    const frames: Uint8Array<ArrayBuffer>[] = [];
    let start = 0;
    for (let i = 0; i < n; i++) {
      if (this.rxFlags[i] & MOREFRAG) continue;
      let len = 0;
      for (let j = start; j <= i; j++) len += this.rxLens[j];
      const f = new Uint8Array(len);
      let o = 0;
      for (let j = start; j <= i; j++) {
        f.set(this.rxBuffer(j), o);
        o += this.rxLens[j];
      }
      frames.push(f);
      start = i + 1;
    }
    return frames;
  }

  /**
   * Send frames (each split into buffers with MOREFRAG as needed). Returns
   * how many frames were taken (sent, or dropped and counted); fewer than
   * given when the TX ring is full: wait for POLL_OUT and send the rest.
   */
  send(frames: Uint8Array[]): number {
    const [tx, txPtrs] = this.#txBufs();
    let done = 0;
    while (done < frames.length) {
      let nb = 0;
      const ends: number[] = [];
      let k = done;
      for (; k < frames.length; k++) {
        const f = frames[k];
        const need = Math.max(1, Math.ceil(f.length / this.#bs));
        if (need > this.#n) {
          throw new ValeError(Errno.EMSGSIZE, `frame of ${f.length} bytes too large`);
        }
        if (nb + need > this.#n) break;
        for (let j = 0; j < need; j++) {
          const part = f.subarray(j * this.#bs, Math.min(f.length, (j + 1) * this.#bs));
          tx.set(part, (nb + j) * this.#bs);
          this.#txLens[nb + j] = part.length;
          this.#txFlags[nb + j] = j + 1 < need ? MOREFRAG : 0;
        }
        nb += need;
        ends.push(nb);
      }
      const r = check(
        sym().vale_io_send_batch(this.#handle(), txPtrs, this.#txLens, this.#txFlags, nb),
      );
      const taken = ends.filter((e) => e <= r).length;
      done += taken;
      if (r < nb) break;
    }
    return done;
  }

  /** Push frames queued by an earlier send that hit a busy kernel. */
  flush(): void {
    check(sym().vale_io_send_batch(this.#handle(), null, null, null, 0));
  }

  /**
   * Wait for POLL_IN / POLL_OUT up to `timeoutMs` (blocks this thread).
   * Returns the ready bits, 0 on timeout; throws ENODEV / ENETDOWN when the
   * interface was removed or went down.
   */
  poll(events = POLL_IN, timeoutMs = 0): number {
    return check(sym().vale_io_poll(this.#handle(), events, timeoutMs));
  }

  /** Like {@linkcode poll}, on a helper thread (the event loop keeps running). */
  async wait(events = POLL_IN, timeoutMs = -1): Promise<number> {
    return check(await sym().vale_io_poll_async(this.#handle(), events, timeoutMs));
  }

  /** Throws ENODEV / ENETDOWN if the interface was removed / is down. */
  check(): void {
    check(sym().vale_io_check(this.#handle()));
  }

  /** Counters. */
  stats(): KernelIoStats {
    const b = new Uint8Array(IO_STATS.size);
    check(sym().vale_io_stats(this.#handle(), b));
    return decodeIoStats(b);
  }

  /** Backend, mode and limits. */
  info(): KernelIoInfo {
    const b = new Uint8Array(IO_INFO.size);
    check(sym().vale_io_info(this.#handle(), b));
    return decodeIoInfo(b);
  }

  /**
   * A vhost-user handle's state (kinds `vhost`, `vhost-client`): front-end
   * connected, features negotiated, queues, counters of refusals. Throws for
   * other kinds.
   */
  vhostStatus(): VhostStatus {
    let buf = new Uint8Array(4096);
    let n = check(sym().vale_io_vhost_json(this.#handle(), buf, buf.length));
    if (n >= buf.length) {
      buf = new Uint8Array(n + 1);
      n = check(sym().vale_io_vhost_json(this.#handle(), buf, buf.length));
    }
    return JSON.parse(new TextDecoder().decode(buf.subarray(0, n))) as VhostStatus;
  }

  /** True when sent frames wait for the kernel (call {@linkcode flush} soon). */
  txPending(): boolean {
    return sym().vale_io_tx_pending(this.#handle()) === 1;
  }

  /** TAP: keep the device after close (true) or let it go with the handle (false). */
  setPersist(on: boolean): void {
    check(sym().vale_io_tap_persist(this.#handle(), on ? 1 : 0));
  }

  /** Close (idempotent): the kernel side (XDP program, promiscuity) goes with it. */
  close(): void {
    if (this.#h) sym().vale_io_close(this.#h);
    this.#h = null;
  }

  /** Same as {@linkcode close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Link state of an interface, optionally in a network namespace. */
  static link(ifname: string, netns?: string): LinkInfo {
    const b = new Uint8Array(IO_LINK.size);
    check(sym().vale_io_link(cstr(ifname), netns ? cstr(netns) : null, b));
    return decodeIoLink(b);
  }

  /** Set an interface up/down and/or its MTU. */
  static setLink(ifname: string, opts: { up?: boolean; mtu?: number; netns?: string }): void {
    const up = opts.up === undefined ? -1 : opts.up ? 1 : 0;
    check(
      sym().vale_io_set_link(cstr(ifname), opts.netns ? cstr(opts.netns) : null, up, opts.mtu ?? 0),
    );
  }

  /** Set the MAC address (aa:bb:cc:dd:ee:ff) of an interface. */
  static setMac(ifname: string, mac: string, netns?: string): void {
    const m = mac.split(":").map((x) => parseInt(x, 16));
    if (m.length !== 6 || m.some((x) => !(x >= 0 && x <= 255))) {
      throw new ValeError(Errno.EINVAL, `bad MAC address '${mac}'`);
    }
    check(
      sym().vale_io_set_mac(cstr(ifname), netns ? cstr(netns) : null, new Uint8Array(m)),
    );
  }

  /** Turn TSO/GSO/GRO/LRO/checksum offloads on or off; returns how many changed. */
  static setOffloads(ifname: string, on: boolean, netns?: string): number {
    return check(sym().vale_io_set_offloads(cstr(ifname), netns ? cstr(netns) : null, on ? 1 : 0));
  }
}
