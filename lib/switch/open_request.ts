/**
 * What a port is opened or created with (`struct vale_open_req`, encoded by
 * ffi/structs/open_req.ts): from a parsed name, or from a bare geometry for
 * the ports vale-ctl and attachments create.
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { encodeOpenRequest, Mtu, OpenFlags } from "../../ffi/structs/open_req.ts";
import { check, Errno, ValeError } from "../errors.ts";
import type { PortSpec } from "../names.ts";

/** Rings and slots of a port (0 or absent = the library's default), as `vale-ctl -C`. */
export interface PortGeometry {
  /** TX rings. */
  txRings?: number;
  /** RX rings. */
  rxRings?: number;
  /** Slots per TX ring. */
  txSlots?: number;
  /** Slots per RX ring. */
  rxSlots?: number;
}

/** Offload settings of a port: virtio-net header length and MTU (absent = keep / default). */
export interface VnetSettings {
  /** virtio-net header length: 0, 10 or 12 (netmap's port header, `pkt-gen -H`). */
  vnetHdrLen?: number;
  /** Largest Ethernet frame (header not included) the switch makes for this port; 64..65553, default 1514. */
  mtu?: number;
}

/** Refuses a header length or MTU the library would refuse, with the same words. */
export function checkVnet(v: VnetSettings): void {
  if (v.vnetHdrLen !== undefined && ![0, 10, 12].includes(v.vnetHdrLen)) {
    throw new ValeError(Errno.EINVAL, `virtio-net header length ${v.vnetHdrLen}: 0, 10 or 12`);
  }
  if (
    v.mtu !== undefined && v.mtu !== 0 &&
    (!Number.isInteger(v.mtu) || v.mtu < Mtu.VALE_MIN_MTU || v.mtu > Mtu.VALE_MAX_MTU)
  ) {
    throw new ValeError(
      Errno.EINVAL,
      `MTU ${v.mtu} out of range ${Mtu.VALE_MIN_MTU}..${Mtu.VALE_MAX_MTU}`,
    );
  }
}

/** A group name or number as a gid (ENOENT if there is no such group). */
export function groupId(group: string | number): number {
  if (typeof group === "number") {
    if (!Number.isInteger(group) || group < 0 || group >= 0xffffffff) {
      throw new ValeError(Errno.EINVAL, `bad group id ${group}`);
    }
    return group;
  }
  const out = new Uint32Array(1);
  check(vale().vale_group_id(cstr(group), new Uint8Array(out.buffer)));
  return out[0];
}

/**
 * A request for a port of this geometry, all rings bound. Without a group,
 * a switch the call creates is private (or shared with `$VALE_GROUP`).
 */
export function geometryRequest(
  g: PortGeometry,
  flags = 0,
  group?: string | number,
  vnet: VnetSettings = {},
): Uint8Array<ArrayBuffer> {
  checkVnet(vnet);
  return encodeOpenRequest({
    vnetHdrLen: vnet.vnetHdrLen,
    mtu: vnet.mtu,
    ntx: g.txRings,
    nrx: g.rxRings,
    txSlots: g.txSlots,
    rxSlots: g.rxSlots,
    flags,
    gid: group === undefined ? undefined : groupId(group),
  });
}

/** The request a parsed switch-port name asks for. */
export function openRequest(
  spec: PortSpec,
  noCreate = false,
  group?: string | number,
  vnet: VnetSettings = {},
): Uint8Array<ArrayBuffer> {
  checkVnet(vnet);
  let flags = 0;
  if (spec.flags.exclusive) flags |= OpenFlags.VO_EXCLUSIVE;
  if (spec.pipe?.role === "master") flags |= OpenFlags.VO_PIPE_MASTER;
  if (spec.pipe?.role === "slave") flags |= OpenFlags.VO_PIPE_SLAVE;
  if (spec.flags.rxOnly) flags |= OpenFlags.VO_RX_ONLY;
  if (spec.flags.txOnly) flags |= OpenFlags.VO_TX_ONLY;
  if (noCreate) flags |= OpenFlags.VO_NO_CREATE;
  if (spec.flags.txMonitor) flags |= OpenFlags.VO_MONITOR_TX;
  if (spec.flags.rxMonitor) flags |= OpenFlags.VO_MONITOR_RX;
  if (spec.flags.zcopyMonitor) flags |= OpenFlags.VO_MONITOR_ZCOPY;
  return encodeOpenRequest({
    ntx: spec.conf.txRings,
    nrx: spec.conf.rxRings,
    txSlots: spec.conf.txSlots,
    rxSlots: spec.conf.rxSlots,
    flags,
    ringId: spec.mode === "one-nic" ? (spec.ring ?? 0) : -1,
    gid: group === undefined ? undefined : groupId(group),
    vnetHdrLen: vnet.vnetHdrLen,
    mtu: vnet.mtu,
  });
}
