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
import { check, ValeError } from "../errors.ts";
import { parsePortName, type PortSpec, switchPortKey } from "../names.ts";
import { BUF_SIZE, MAX_FRAGS, Ring, SlotFlags } from "./ring.ts";
import { runDir } from "../rundir.ts";
import { openKernelPort } from "../backends/kernel_port.ts"; // kernel interfaces (see openPort)

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
  drops: { ring_full: number; bad_slot: number; no_dest: number; lookup: number };
}

const VO_EXCLUSIVE = 0x1;
const VO_PIPE_MASTER = 0x4;
const VO_PIPE_SLAVE = 0x8;
const VO_NO_CREATE = 0x10;
const VO_RX_ONLY = 0x20;
const VO_TX_ONLY = 0x40;
const VO_GROUP = 0x80;

/** A group name or number as a gid (ENOENT if there is no such group). */
export function groupId(group: string | number): number {
  if (typeof group === "number") {
    if (!Number.isInteger(group) || group < 0 || group >= 0xffffffff) {
      throw new ValeError(22, `bad group id ${group}`);
    }
    return group;
  }
  const out = new Uint32Array(1);
  check(vale().vale_group_id(cstr(group), new Uint8Array(out.buffer)));
  return out[0];
}

/**
 * Sets the group words of an encoded `struct vale_open_req` (offset 24: gid,
 * 28: spare) and its VO_GROUP flag; no group leaves them zero (private switch,
 * or `$VALE_GROUP`).
 */
export function setRequestGroup(req: Uint8Array<ArrayBuffer>, group?: string | number): void {
  if (group === undefined) return;
  const dv = new DataView(req.buffer);
  dv.setUint32(24, groupId(group), true);
  dv.setUint32(16, dv.getUint32(16, true) | VO_GROUP, true);
}

/** Encodes `struct vale_open_req` (32 bytes) from a parsed name. */
export function openRequest(
  spec: PortSpec,
  noCreate = false,
  group?: string | number,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(32);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, spec.conf.txRings ?? 0, true);
  dv.setUint32(4, spec.conf.rxRings ?? 0, true);
  dv.setUint32(8, spec.conf.txSlots ?? 0, true);
  dv.setUint32(12, spec.conf.rxSlots ?? 0, true);
  let flags = 0;
  if (spec.flags.exclusive) flags |= VO_EXCLUSIVE;
  if (spec.pipe?.role === "master") flags |= VO_PIPE_MASTER;
  if (spec.pipe?.role === "slave") flags |= VO_PIPE_SLAVE;
  if (spec.flags.rxOnly) flags |= VO_RX_ONLY;
  if (spec.flags.txOnly) flags |= VO_TX_ONLY;
  if (noCreate) flags |= VO_NO_CREATE;
  dv.setUint32(16, flags, true);
  dv.setInt32(20, spec.mode === "one-nic" ? (spec.ring ?? 0) : -1, true);
  setRequestGroup(b, group);
  return b;
}

/** Opens (creating if needed) a port of a switch, e.g. `vale0:a`, `vale0:p{1`. */
export function openPort(name: string, opts: OpenOptions = {}): Port {
  const spec = parsePortName(name);
  // --- kernel interfaces (tap:, netmap:, xdp:, packet:) are served by lib/backends.ts ---
  if (spec.kind === "tap" || spec.kind === "netmap") return openKernelPort(spec, opts);
  if (spec.kind !== "vale") {
    throw new ValeError(
      95,
      `${name}: ${spec.kind} ports are opened with openAnyPort() (lib/backends.ts)`,
    );
  }
  if (spec.flags.zcopyMonitor || spec.flags.txMonitor || spec.flags.rxMonitor) {
    throw new ValeError(95, `${name}: monitor ports are not supported; use 'vale capture'`);
  }
  if (spec.mode === "host" || spec.mode === "one-host" || spec.mode === "nic-host") {
    throw new ValeError(95, `${name}: a switch port has no host rings`);
  }
  if (spec.memId !== undefined || spec.share !== undefined) {
    throw new ValeError(95, `${name}: memory regions are per port here (@N/@share unsupported)`);
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
  #ptr: Deno.PointerObject | null;
  #region: ArrayBuffer;
  #u8: Uint8Array;
  #bellFd: number;
  #pendingWait: Promise<number> | null = null;
  #closing = false;
  #txNext = 0;

  /** Use {@link openPort}. */
  constructor(spec: PortSpec, opts: OpenOptions = {}) {
    const lib = vale();
    this.spec = spec;
    this.name = spec.name;
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
        openRequest(spec, opts.noCreate, opts.group),
        new Uint8Array(out.buffer),
      ),
    );
    this.#ptr = Deno.UnsafePointer.create(out[0])!;
    const info = new Uint8Array(328);
    check(lib.vale_info(this.#ptr, info));
    const dv = new DataView(info.buffer);
    const base = Deno.UnsafePointer.create(dv.getBigUint64(0, true))!;
    const size = Number(dv.getBigUint64(8, true));
    const ntx = dv.getUint32(16, true), nrx = dv.getUint32(20, true);
    const nbufs = dv.getUint32(32, true);
    this.index = dv.getUint32(40, true);
    const first = dv.getUint32(48, true), last = dv.getUint32(52, true);
    this.#bellFd = dv.getInt32(56, true);
    const bufOfs = Number(dv.getBigUint64(320, true));
    this.#region = Deno.UnsafePointerView.getArrayBuffer(base, size);
    this.#u8 = new Uint8Array(this.#region);
    for (let i = first; i < last; i++) {
      if (i < ntx && !spec.flags.rxOnly) {
        const o = Number(dv.getBigUint64(64 + 8 * i, true));
        this.txRings.push(new Ring(this.#region, o, bufOfs, nbufs, "tx", i));
      }
      if (i < nrx && !spec.flags.txOnly) {
        const o = Number(dv.getBigUint64(192 + 8 * i, true));
        this.rxRings.push(new Ring(this.#region, o, bufOfs, nbufs, "rx", i));
      }
    }
  }

  #p(): Deno.PointerObject {
    if (!this.#ptr || this.#closing) throw new ValeError(9, `${this.name}: port is closed`);
    return this.#ptr;
  }

  /** The raw native handle (for C hot loops that take a `vale_port *`). */
  get handle(): Deno.PointerObject {
    return this.#p();
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
    if (rings.length === 0) throw new ValeError(22, `${this.name}: no TX ring bound`);
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
