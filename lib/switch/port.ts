/**
 * Ports of a vale switch: open by name, zero-copy ring views, batched
 * send/receive helpers, waiting without blocking the event loop.
 *
 * ```ts
 * using a = openPort("vale0:a");
 * a.send(frame);
 * a.txsync();
 * ```
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { decodePortInfo, newPortInfo } from "../../ffi/structs/port_info.ts";
import { check, Errno, ValeError } from "../errors.ts";
import { type PortSpec, switchPortKey } from "../names.ts";
import { BUF_SIZE, MAX_FRAGS, Ring, SlotFlags } from "./ring.ts";
import { runDir } from "../rundir.ts";
import { checkVnet, openRequest, type VnetSettings } from "./open_request.ts";

/** `VPF_MONITOR` of vale_port_info.flags (c-src/include/vale.h). */
const VPF_MONITOR = 0x20;

/** Options of {@link openPort} beyond what the port name says. */
export interface OpenOptions {
  /** Run directory of the switches (default `$VALE_RUN_DIR` or `/dev/shm/vale`). */
  runDir?: string;
  /** Fail with ENOENT instead of creating the port (and switch). */
  noCreate?: boolean;
  /**
   * Share the switch with this group (name or gid) when this call creates it:
   * directory 02770 and files 0660 of that group, so its members can open
   * ports on it. Without it a new switch is private to the caller (0700/0600),
   * unless `$VALE_GROUP` names a group. An existing switch must already be
   * shared with that group (EPERM otherwise).
   */
  group?: string | number;
  /**
   * The port's virtio-net header length (0, 10 or 12, as netmap's port
   * header): set on the port, new or existing (absent: a new port has none,
   * an existing one keeps its own). Frames sent and received then start with
   * the header; the switch converts toward ports that differ (docs/architecture.md).
   */
  vnetHdrLen?: number;
  /** The port's MTU (largest Ethernet frame without header, 64..65553; absent: keep, new: 1514). */
  mtu?: number;
}

/** Per-port counters kept by the switch. */
export interface PortCounters {
  /** Packets this port sent into the switch. */
  tx_packets: number;
  /** Bytes this port sent into the switch. */
  tx_bytes: number;
  /** Packets delivered to this port. */
  rx_packets: number;
  /** Bytes delivered to this port. */
  rx_bytes: number;
  /** Sync calls rejected for a bad head/cur, or slots reset. */
  sync_errors: number;
  /** Leases of senders that died mid-copy, published as empty slots. */
  leases_reclaimed: number;
  /** Drops by reason. */
  drops: {
    ring_full: number;
    bad_slot: number;
    no_dest: number;
    lookup: number;
    /** Malformed virtio-net header (or a frame that is not what it says), counted on the source. */
    bad_vnet: number;
    /** Larger than the destination's MTU and not segmentable, counted on the source. */
    too_big: number;
  };
}

/**
 * Opens (creating if needed) a port of a switch from its parsed name, e.g.
 * `vale0:a`, `vale0:p{1`: the `vale` entry of the opener table (lib/open.ts),
 * which has already refused what no kind supports (`@N`). A name with `/r`,
 * `/t` or `/z` opens a monitor of that port (it must exist): a port with RX
 * rings only, receiving copies of the port's traffic.
 */
export function openSwitchPort(spec: PortSpec, opts: OpenOptions = {}): Port {
  if (spec.mode === "host" || spec.mode === "one-host" || spec.mode === "nic-host") {
    throw new ValeError(Errno.EOPNOTSUPP, `${spec.name}: a switch port has no host rings`);
  }
  return new Port(spec, opts);
}

/** An open port: its rings in shared memory and the calls that sync them. */
export class Port implements Disposable {
  /** The parsed name. */
  readonly spec: PortSpec;
  /** Full name as given (canonical). */
  readonly name: string;
  /** Switch the port is on. */
  readonly switchName: string;
  /** Port name inside the switch (`a`, `p{1`). */
  readonly portName: string;
  /** Index in the switch's port table. */
  readonly index: number;
  /** TX rings bound by this open. */
  readonly txRings: Ring[] = [];
  /** RX rings bound by this open. */
  readonly rxRings: Ring[] = [];
  /** Run directory the switch lives in. */
  readonly runDir: string;
  /** True for a pipe endpoint. */
  readonly isPipe: boolean;
  /** True for a monitor (`/r`, `/t`, `/rt`, `/z`): RX rings only. */
  readonly isMonitor: boolean;
  #ptr: Deno.PointerObject | null;
  #region: ArrayBuffer;
  #u8: Uint8Array;
  #bellFd: number;
  #pendingWait: Promise<number> | null = null;
  #closing = false;
  #txNext = 0;

  /**
   * Use {@link openPort}. `shownAs` is the name the user opened when it is not
   * the switch port's own (a kernel port is one end of a private pipe).
   */
  constructor(spec: PortSpec, opts: OpenOptions = {}, shownAs: PortSpec = spec) {
    const lib = vale();
    this.spec = shownAs;
    this.name = shownAs.name;
    this.switchName = spec.switchName!;
    this.portName = switchPortKey(spec);
    this.runDir = runDir(opts.runDir);
    this.isPipe = spec.pipe !== undefined;
    const out = new BigUint64Array(1);
    check(
      lib.vale_open(
        cstr(this.runDir),
        cstr(this.switchName),
        cstr(this.portName),
        openRequest(spec, opts.noCreate, opts.group, opts),
        new Uint8Array(out.buffer),
      ),
    );
    this.#ptr = Deno.UnsafePointer.create(out[0])!;
    const raw = newPortInfo();
    check(lib.vale_info(this.#ptr, raw));
    const info = decodePortInfo(raw);
    this.index = info.index;
    this.#bellFd = info.bellFd;
    this.#region = Deno.UnsafePointerView.getArrayBuffer(
      Deno.UnsafePointer.create(info.regionBase)!,
      info.regionSize,
    );
    this.#u8 = new Uint8Array(this.#region);
    this.isMonitor = (info.flags & VPF_MONITOR) !== 0;
    for (let i = info.firstRing; i < info.lastRing; i++) {
      if (i < info.ntx && !spec.flags.rxOnly && !this.isMonitor) {
        this.txRings.push(
          new Ring(this.#region, info.txRingOfs[i], info.bufOfs, info.nbufs, "tx", i, info.txSlots),
        );
      }
      if (i < info.nrx && !spec.flags.txOnly) {
        this.rxRings.push(
          new Ring(this.#region, info.rxRingOfs[i], info.bufOfs, info.nbufs, "rx", i, info.rxSlots),
        );
      }
    }
  }

  #p(): Deno.PointerObject {
    if (!this.#ptr || this.#closing) {
      throw new ValeError(Errno.EBADF, `${this.name}: port is closed`);
    }
    return this.#ptr;
  }

  /** The raw native handle (for C hot loops that take a `vale_port *`). */
  get handle(): Deno.PointerObject {
    return this.#p();
  }

  /** The port's virtio-net header length now (0, 10 or 12): frames start with it. */
  get vnetHdrLen(): number {
    return this.#vnet().vnetHdrLen;
  }

  /** The port's MTU now (largest Ethernet frame the switch makes for it, header not included). */
  get mtu(): number {
    return this.#vnet().mtu;
  }

  #vnet(): { vnetHdrLen: number; mtu: number } {
    const raw = newPortInfo();
    check(vale().vale_info(this.#p(), raw));
    return decodePortInfo(raw);
  }

  /**
   * Change the port's header length and/or MTU while it is open (netmap's
   * NETMAP_REQ_PORT_HDR_SET); senders use the new values from their next txsync.
   */
  setVnet(v: VnetSettings): void {
    checkVnet(v);
    check(vale().vale_set_vnet(this.#p(), v.vnetHdrLen ?? -1, v.mtu ?? -1));
  }

  /**
   * Back-pressure for this handle's txsyncs: a destination whose RX ring is full is waited for
   * (up to `maxWaitUs` µs, yielding) instead of dropping at once, netmap's way (0, the default).
   * A destination that does not read at all for 50 ms is not waited for again for 1 s; what
   * still does not fit is dropped and counted (`ring_full`). The kernel forwarders use it.
   */
  setBackpressure(maxWaitUs: number): void {
    if (!Number.isInteger(maxWaitUs) || maxWaitUs < 0 || maxWaitUs > 1_000_000) {
      throw new RangeError(`backpressure ${maxWaitUs} µs: 0..1000000`);
    }
    check(vale().vale_set_backpressure(this.#p(), maxWaitUs));
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Forward what the application put in the TX rings (netmap's NIOCTXSYNC).
   * Returns the number of slots consumed; throws on a bad head/cur (the ring
   * is reset to the switch's view, as netmap does).
   */
  txsync(ring = -1): number {
    return check(vale().vale_txsync(this.#p(), ring));
  }

  /** Expose newly received slots and release consumed ones (NIOCRXSYNC). */
  rxsync(ring = -1): number {
    return check(vale().vale_rxsync(this.#p(), ring));
  }

  /**
   * Copy one frame into the TX ring (split across slots with MOREFRAG when
   * larger than a buffer). Does not forward: call {@link txsync}. Returns false
   * when the ring has no room even after a txsync (pipes: the peer is slow).
   */
  send(frame: Uint8Array): boolean {
    const nfr = Math.max(1, Math.ceil(frame.length / BUF_SIZE));
    if (nfr > MAX_FRAGS) {
      throw new RangeError(`frame of ${frame.length} bytes needs more than ${MAX_FRAGS} slots`);
    }
    if (frame.length > 65535 * MAX_FRAGS) throw new RangeError("frame too long");
    const rings = this.txRings;
    if (rings.length === 0) throw new ValeError(Errno.EINVAL, `${this.name}: no TX ring bound`);
    let ring = rings[this.#txNext % rings.length];
    if (ring.space() < nfr) {
      this.txsync();
      for (let k = 0; k < rings.length && ring.space() < nfr; k++) {
        ring = rings[++this.#txNext % rings.length];
      }
      if (ring.space() < nfr) return false;
    }
    const u8 = ring.bytes;
    let h = ring.head;
    for (let f = 0, off = 0; f < nfr; f++) {
      const n = Math.min(BUF_SIZE, frame.length - off);
      const o = ring.bufferOffset(ring.bufIdx(h));
      u8.set(frame.subarray(off, off + n), o);
      ring.setLen(h, n);
      ring.setFlags(h, f < nfr - 1 ? SlotFlags.MOREFRAG : 0);
      off += n;
      h = ring.next(h);
    }
    ring.advance(h);
    return true;
  }

  /** {@link send} each frame, then txsync once; returns how many were queued. */
  sendBatch(frames: Iterable<Uint8Array>): number {
    let n = 0;
    for (const f of frames) {
      if (!this.send(f)) break;
      n++;
    }
    this.txsync();
    return n;
  }

  /**
   * Take up to `max` received frames (copies; fragments reassembled) without
   * waiting. Zero-length slots (reclaimed or emptied by the switch) are skipped.
   */
  tryReceive(max = Infinity): Uint8Array[] {
    this.rxsync();
    // Pass 1 finds the packets; pass 2 copies them all into ONE new buffer
    // (allocating an ArrayBuffer per frame costs more than the copy).
    const spans: number[] = []; // per packet: ring, first slot, slots, bytes
    let total = 0, count = 0;
    for (let r = 0; r < this.rxRings.length && count < max; r++) {
      const ring = this.rxRings[r];
      let h = ring.head;
      const t = ring.tail;
      while (h !== t && count < max) {
        // one packet: slots up to the first without MOREFRAG
        let j = h, nf = 0, bytes = 0, complete = false;
        while (j !== t && nf < MAX_FRAGS) {
          nf++;
          bytes += ring.len(j);
          const more = ring.flags(j) & SlotFlags.MOREFRAG;
          j = ring.next(j);
          if (!more) {
            complete = true;
            break;
          }
        }
        if (!complete && nf < MAX_FRAGS) break; // the rest is not published yet
        if (bytes > 0) {
          spans.push(r, h, nf, bytes);
          total += bytes;
          count++;
        }
        h = j;
      }
      ring.advance(h);
    }
    const out: Uint8Array[] = [];
    if (count === 0) return out;
    // (the slots are given back by the rxsync below, once copied)
    const all = new Uint8Array(total);
    let off = 0;
    for (let k = 0; k < spans.length; k += 4) {
      const ring = this.rxRings[spans[k]];
      const start = off;
      for (let f = 0, s = spans[k + 1]; f < spans[k + 2]; f++, s = ring.next(s)) {
        const part = ring.frame(s);
        all.set(part, off);
        off += part.length;
      }
      out.push(all.subarray(start, off));
    }
    this.rxsync(); // copied out: give the slots back to the senders now
    return out;
  }

  /** Frames waiting in the RX rings (after an rxsync). */
  pending(): number {
    this.rxsync();
    let n = 0;
    for (const r of this.rxRings) n += r.space();
    return n;
  }

  /**
   * Sleep until there is something to receive (or, for a pipe, room to send),
   * without blocking the event loop. Resolves true when ready, false on timeout
   * or when the port is closed.
   */
  async wait(timeoutMs = -1): Promise<boolean> {
    const p = this.#p();
    if (this.#pendingWait) await this.#pendingWait.catch(() => 0);
    const w = vale().vale_wait(p, timeoutMs);
    this.#pendingWait = w;
    try {
      return (await w) === 1;
    } finally {
      this.#pendingWait = null;
      if (this.#closing) this.#finishClose();
    }
  }

  /** Receive a batch, sleeping until one arrives; [] after timeoutMs or on close. */
  async receive(timeoutMs = -1): Promise<Uint8Array[]> {
    const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (this.#closing) return [];
      const got = this.tryReceive();
      if (got.length) return got;
      const left = deadline === Infinity ? 1000 : Math.max(0, deadline - Date.now());
      if (left === 0) return [];
      await this.wait(Math.min(left, 1000));
    }
  }

  /** Batches of received frames until the port is closed. */
  async *packets(): AsyncGenerator<Uint8Array[]> {
    while (!this.#closing) {
      const b = await this.receive(1000);
      if (b.length) yield b;
    }
  }

  /** Fd to poll() for readability together with other fds: call {@link armPoll} first. */
  get pollFd(): number {
    return this.#bellFd;
  }
  /** Ask senders to ring the doorbell; true if data is already there (skip the poll). */
  armPoll(): boolean {
    return vale().vale_bell_arm(this.#p()) === 1;
  }
  /** Drain the doorbell after poll() reported it readable. */
  clearPoll(): void {
    vale().vale_bell_clear(this.#p());
  }

  /** Close the port (an ephemeral port disappears with its last opener). */
  close(): void {
    if (!this.#ptr || this.#closing) return;
    this.#closing = true;
    if (this.#pendingWait) {
      vale().vale_wake(this.#ptr); // the waiting thread returns, then we close
      return;
    }
    this.#finishClose();
  }

  #finishClose(): void {
    if (!this.#ptr) return;
    vale().vale_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(): ports work with `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
