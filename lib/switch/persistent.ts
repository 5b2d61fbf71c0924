/**
 * netmap's persistent VALE ports, as `vale-ctl` manages them:
 *
 *   vale-ctl -n vi0          create vi0, on no switch            (createPersistent)
 *   vale-ctl -a vale0:vi0    attach it to vale0                  (attachPersistent)
 *   vale-ctl -d vale0:vi0    detach it (it still exists)         (detachPort)
 *   vale-ctl -r vi0          remove it (EBUSY while attached)    (removePersistent)
 *
 * Built on the core's persistent ports (vale_create_persistent,
 * VPF_PERSISTENT): a port that is on no switch lives on an internal holding
 * switch, {@link HOLDING_SWITCH}, whose name is not a valid `valeX` name, so
 * no port name can reach it and listings hide it. Attaching creates a
 * persistent port of the same geometry on the target switch and records the
 * attachment in both entries' `info` text; an attachment whose target port
 * has gone (its switch was removed) counts as detached.
 *
 * Errors are {@link ValeError}s with netmap's errno: EEXIST (create twice),
 * ENXIO (no such port), EBUSY (attach twice, remove while attached or
 * open), EINVAL (bad name or geometry, detach of a port nobody attached).
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { check, Errno, ValeError } from "../errors.ts";
import { runDir } from "../rundir.ts";
import {
  checkVnet,
  geometryRequest,
  type PortGeometry,
  type VnetSettings,
} from "./open_request.ts";
import { type ControlOptions, type PortInfo, switchInfo } from "./control.ts";

/** The internal switch holding persistent ports that are attached nowhere. */
export const HOLDING_SWITCH = "vale-persistent";

/** `info` text of a persistent port attached to a switch (on that switch's entry). */
export const ATTACHED_INFO = "persistent (vale-ctl -a)";
const HOLD_INFO_PREFIX = "attached to ";

/** True for switches that listings should not show. */
export function isHiddenSwitch(name: string): boolean {
  return name === HOLDING_SWITCH;
}

export type { PortGeometry };

/** A persistent port and where it is attached. */
export interface PersistentPort {
  /** Its name (`vi0`). */
  name: string;
  /** The switch it is attached to, or null. */
  attachedTo: string | null;
  /** Its entry on the holding switch (geometry, counters of the held port). */
  info: PortInfo;
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
function tryInfo(sw: string, opts: ControlOptions) {
  try {
    return switchInfo(sw, opts);
  } catch (e) {
    if (e instanceof ValeError && e.code === "ENOENT") return null;
    throw e;
  }
}

function setInfo(sw: string, port: string, info: string, opts: ControlOptions): void {
  check(vale().vale_port_set_info(cstr(runDir(opts.runDir)), cstr(sw), cstr(port), 0, cstr(info)));
}

/** Is `name` a valid persistent port name (an interface name, at most 15 characters)? */
export function validPersistentName(name: string): boolean {
  return NAME_RE.test(name);
}

/** The persistent port `name`, or null. */
export function findPersistent(name: string, opts: ControlOptions = {}): PersistentPort | null {
  return listPersistent(opts).find((p) => p.name === name) ?? null;
}

/** Every persistent port created with {@link createPersistent}. */
export function listPersistent(opts: ControlOptions = {}): PersistentPort[] {
  const hold = tryInfo(HOLDING_SWITCH, opts);
  if (!hold) return [];
  const targets = new Map<string, ReturnType<typeof tryInfo>>();
  return hold.ports.map((p) => {
    let attachedTo: string | null = null;
    if (p.info.startsWith(HOLD_INFO_PREFIX)) {
      const sw = p.info.slice(HOLD_INFO_PREFIX.length);
      if (!targets.has(sw)) targets.set(sw, tryInfo(sw, opts));
      const t = targets.get(sw);
      if (t?.ports.some((q) => q.name === p.name && q.persistent && q.info === ATTACHED_INFO)) {
        attachedTo = sw;
      }
    }
    return { name: p.name, attachedTo, info: p };
  });
}

/**
 * `vale-ctl -n NAME`: create a persistent port attached nowhere. EEXIST if it
 * exists. `vnet` gives it a virtio-net header length and MTU (`--vnet-hdr`, `--mtu`).
 */
export function createPersistent(
  name: string,
  geometry: PortGeometry = {},
  opts: ControlOptions = {},
  vnet: VnetSettings = {},
): void {
  if (!validPersistentName(name)) {
    throw new ValeError(Errno.EINVAL, `invalid interface name '${name}'`);
  }
  check(
    vale().vale_create_persistent(
      cstr(runDir(opts.runDir)),
      cstr(HOLDING_SWITCH),
      cstr(name),
      geometryRequest(geometry, 0, opts.group, vnet),
    ),
  );
}

/**
 * `vale-ctl --set NAME --vnet-hdr LEN --mtu N` of a persistent port: its own
 * entry and, when attached, the port on the switch (both keep the same values).
 */
export function setPersistentVnet(name: string, v: VnetSettings, opts: ControlOptions = {}): void {
  checkVnet(v);
  const p = validPersistentName(name) ? findPersistent(name, opts) : null;
  if (!p) throw new ValeError(Errno.ENXIO, `no persistent port ${name}`);
  const set = (sw: string) =>
    check(
      vale().vale_port_set_vnet(
        cstr(runDir(opts.runDir)),
        cstr(sw),
        cstr(name),
        v.vnetHdrLen ?? -1,
        v.mtu ?? -1,
      ),
    );
  set(HOLDING_SWITCH);
  if (p.attachedTo) set(p.attachedTo);
}

/** `vale-ctl -r NAME`: remove a persistent port. EBUSY while attached or open, ENXIO if none. */
export function removePersistent(name: string, opts: ControlOptions = {}): void {
  const p = validPersistentName(name) ? findPersistent(name, opts) : null;
  if (!p) throw new ValeError(Errno.ENXIO, `no persistent port ${name}`);
  if (p.attachedTo) {
    throw new ValeError(Errno.EBUSY, `${name} is attached to ${p.attachedTo}; detach it first`);
  }
  check(vale().vale_remove_port(cstr(runDir(opts.runDir)), cstr(HOLDING_SWITCH), cstr(name)));
}

/**
 * `vale-ctl -a SWITCH:NAME` for a persistent port: put it on the switch
 * (created if needed). EBUSY if it is attached already or the switch has a
 * port of that name; ENXIO if there is no persistent port NAME.
 */
export function attachPersistent(sw: string, name: string, opts: ControlOptions = {}): void {
  const p = findPersistent(name, opts);
  if (!p) throw new ValeError(Errno.ENXIO, `no persistent port ${name}`);
  if (p.attachedTo) {
    throw new ValeError(Errno.EBUSY, `${name} is already attached to ${p.attachedTo}`);
  }
  const g = p.info;
  const rc = vale().vale_create_persistent(
    cstr(runDir(opts.runDir)),
    cstr(sw),
    cstr(name),
    geometryRequest(
      { txRings: g.tx_rings, rxRings: g.rx_rings, txSlots: g.tx_slots, rxSlots: g.rx_slots },
      0,
      opts.group,
      { vnetHdrLen: g.vnet_hdr_len, mtu: g.mtu },
    ),
  );
  if (rc === -Errno.EEXIST) {
    throw new ValeError(Errno.EBUSY, `${sw} already has a port named ${name}`);
  }
  check(rc);
  setInfo(sw, name, ATTACHED_INFO, opts);
  setInfo(HOLDING_SWITCH, name, HOLD_INFO_PREFIX + sw, opts);
}

/**
 * `vale-ctl -d SWITCH:NAME`: take a persistent port off a switch (a port
 * attached with {@link attachPersistent} goes back to the holding switch).
 * ENXIO if there is no such port, EINVAL for an ephemeral port (it goes away
 * with its last user), EBUSY while a process has it open.
 */
export function detachPort(sw: string, name: string, opts: ControlOptions = {}): void {
  const info = tryInfo(sw, opts);
  const port = info?.ports.find((q) => q.name === name);
  if (!port) throw new ValeError(Errno.ENXIO, `no port ${sw}:${name}`);
  if (!port.persistent) {
    throw new ValeError(Errno.EINVAL, `${sw}:${name} is not attached (it is an ephemeral port)`);
  }
  check(vale().vale_remove_port(cstr(runDir(opts.runDir)), cstr(sw), cstr(name)));
  const held = tryInfo(HOLDING_SWITCH, opts)?.ports.find((q) => q.name === name);
  if (held?.info === HOLD_INFO_PREFIX + sw) setInfo(HOLDING_SWITCH, name, "", opts);
}
