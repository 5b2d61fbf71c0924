/**
 * One side of an attachment: a kernel interface (or the host stack's TAP),
 * the persistent exclusive switch port it is put on, and the C forwarder
 * between them. The forwarder process (./worker.ts) runs one or two.
 *
 * @module
 */
import { Forwarder } from "../backends/forwarder.ts";
import { KernelIo, type KernelIoOptions } from "../backends/kernel_io.ts";
import { check, Errno } from "../errors.ts";
import { cstr, vale } from "../../ffi/lib.ts";
import { openPort } from "../open.ts";
import { setPortInfo } from "../switch/control.ts";
import { geometryRequest, type VnetSettings } from "../switch/open_request.ts";
import { portMtu } from "../backends/kernel_port.ts";
import type { Port } from "../switch/port.ts";
import type { AttachConfig } from "./attach.ts";

/** Ring slots of an attachment's switch port(s) when the configuration says 0. */
const DEFAULT_SLOTS = 2048;
/**
 * The same with a virtio-net header: a 64 KiB super-frame takes 33 slots, so 2048 would hold
 * about 60 of them; 4096 halve the drops (and TCP retransmits) of bursts of several streams.
 */
const DEFAULT_SLOTS_VNET = 4096;

/** An interface forwarded to a switch port. */
export interface Side {
  /** "veth1" or "host stack", for the log. */
  label: string;
  /** The interface. */
  iface: string;
  /** Its namespace. */
  netns?: string;
  /** How it was opened (again after an MTU change). */
  ioOpts: KernelIoOptions;
  /** The switch port's name. */
  portName: string;
  /** The kernel handle (replaced on reopen). */
  io: KernelIo;
  /** The switch port. */
  port: Port;
  /** The forwarder (replaced on reopen). */
  fwd: Forwarder;
  /** MTU when opened. */
  mtu: number;
  /** Forwarder state last seen. */
  state: string;
}

/** Does interface `ifname` exist (in `netns`)? */
export function linkExists(ifname: string, netns?: string): boolean {
  try {
    KernelIo.link(ifname, netns);
    return true;
  } catch {
    return false;
  }
}

/** Creates persistent port `name` of the attachment's switch, unless it is there (a restart). */
function createPortIfMissing(conf: AttachConfig, name: string, vnet: VnetSettings): void {
  // kernel traffic comes in bursts (TCP, softirq batches): deeper rings than a switch
  // port's default 1024 save drops (and TCP retransmits)
  const slots = conf.slots || (vnet.vnetHdrLen ? DEFAULT_SLOTS_VNET : DEFAULT_SLOTS);
  // no group: a switch this creates is private, or shared with $VALE_GROUP
  // (inherited from vale-ctl --group)
  const req = geometryRequest({ txSlots: slots, rxSlots: slots }, 0, undefined, vnet);
  const r = vale().vale_create_persistent(cstr(conf.runDir), cstr(conf.switch), cstr(name), req);
  if (r !== -Errno.EEXIST) check(r, "cannot create port");
}

/** Opens the interface and its switch port and starts forwarding between them. */
export function openSide(
  conf: AttachConfig,
  label: string,
  iface: string,
  netns: string | undefined,
  ioOpts: KernelIoOptions,
  portName: string,
  info: (io: KernelIo) => string,
): Side {
  const io = KernelIo.open(iface, { ...ioOpts, netns });
  let port: Port | undefined;
  try {
    // the port carries what the interface hands over: with a virtio-net header, GSO
    // super-frames (the switch converts for ports without one); its MTU is the interface's
    const i = io.info();
    const vnet = { vnetHdrLen: i.vnetHdrLen, mtu: portMtu(i.mtu) };
    createPortIfMissing(conf, portName, vnet);
    // exclusive: nobody else may use the rings the forwarder fills (a restart: the
    // settings of this open win over the port's old ones)
    port = openPort(`${conf.switch}:${portName}/x`, { runDir: conf.runDir, ...vnet });
    setPortInfo(`${conf.switch}:${portName}`, Deno.pid, info(io).slice(0, 63), {
      runDir: conf.runDir,
    });
    const fwd = new Forwarder(io, port);
    return {
      label,
      iface,
      netns,
      ioOpts,
      portName,
      io,
      port,
      fwd,
      mtu: io.info().mtu,
      state: "running",
    };
  } catch (e) {
    port?.close();
    io.close();
    throw e;
  }
}

/** Reopens the kernel side (the kernel rings are sized for the MTU at open). */
export function reopenSide(s: Side, mtu: number): void {
  s.fwd.close();
  s.io.close();
  s.io = KernelIo.open(s.iface, { ...s.ioOpts, netns: s.netns });
  s.port.setVnet({ mtu: portMtu(s.io.info().mtu) }); // segmentation toward it follows
  s.fwd = new Forwarder(s.io, s.port);
  s.mtu = mtu;
}

/** Stops forwarding and closes both ends; `deleteTap`: the TAP goes with its handle. */
export function closeSide(s: Side, deleteTap = false): void {
  s.fwd.close();
  s.port.close();
  if (deleteTap) {
    try {
      s.io.setPersist(false); // the device goes with the close
    } catch { /* already gone */ }
  }
  s.io.close();
}
