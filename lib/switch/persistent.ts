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
 * switch, {@link HOLDING_SWITCH}, whose name does not start with `vale`, so
 * no port name can reach it and listings hide it. Attaching creates a
 * persistent port of the same geometry on the target switch, marked in its
 * `info` text; as in netmap (functional tests 009-011) a persistent port may
 * be attached to several switches at once, once each. An attachment whose
 * target port has gone (its switch was removed) counts as detached.
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
import {
  type ControlOptions,
  listSwitches,
  type PortInfo,
  removeSwitch,
  switchInfo,
} from "./control.ts";

/**
 * The internal switch holding persistent ports. Not a switch name
 * (lib/names.ts isSwitchName): no port name reaches it, listings skip it.
 */
export const HOLDING_SWITCH = "persistent-ports";
/**
 * Its name before the 2012 switch names made `vale-persistent` a legal user
 * switch: a run directory that still has it is migrated on first use.
 */
export const LEGACY_HOLDING_SWITCH = "vale-persistent";

/** `info` text of a persistent port attached to a switch (on that switch's entry). */
export const ATTACHED_INFO = "persistent (vale-ctl -a)";
const HOLD_INFO_PREFIX = "attached to ";

/** True for switches that listings should not show. */
export function isHiddenSwitch(name: string): boolean {
  return name === HOLDING_SWITCH;
}

/**
 * Moves the persistent ports of a run directory written by an older vale
 * (holding switch `vale-persistent`) to {@link HOLDING_SWITCH}, and removes
 * the old switch. Only a switch that looks like the old holding switch is
 * touched: every port persistent, closed, and with the holding switch's
 * `info` text ("" or "attached to X"); a user's own `vale-persistent` is left
 * alone. Cheap when there is nothing to do (one failed stat). Returns the
 * number of ports moved.
 */
export function migrateLegacyHolding(opts: ControlOptions = {}): number {
  try {
    Deno.statSync(`${runDir(opts.runDir)}/${LEGACY_HOLDING_SWITCH}/ctl`);
  } catch {
    return 0;
  }
  const old = tryInfo(LEGACY_HOLDING_SWITCH, opts);
  if (!old || old.ports.length === 0) return 0;
  const legacy = old.ports.every((p) =>
    p.persistent && !p.in_use && !p.pipe && (p.info === "" || p.info.startsWith(HOLD_INFO_PREFIX))
  );
  if (!legacy) return 0;
  const held = new Set((tryInfo(HOLDING_SWITCH, opts)?.ports ?? []).map((p) => p.name));
  const rd = cstr(runDir(opts.runDir));
  for (const p of old.ports) {
    if (!held.has(p.name)) {
      check(
        vale().vale_create_persistent(
          rd,
          cstr(HOLDING_SWITCH),
          cstr(p.name),
          geometryRequest(
            { txRings: p.tx_rings, rxRings: p.rx_rings, txSlots: p.tx_slots, rxSlots: p.rx_slots },
            0,
            opts.group,
          ),
        ),
      );
    }
    check(vale().vale_remove_port(rd, cstr(LEGACY_HOLDING_SWITCH), cstr(p.name)));
  }
  try {
    removeSwitch(LEGACY_HOLDING_SWITCH, opts);
  } catch (e) {
    // removing its last port may have removed it already
    if (!(e instanceof ValeError && e.code === "ENOENT")) throw e;
  }
  return old.ports.length;
}

export type { PortGeometry };

/** A persistent port and where it is attached. */
export interface PersistentPort {
  /** Its name (`vi0`). */
  name: string;
  /** The (first) switch it is attached to, or null. */
  attachedTo: string | null;
  /** Every switch it is attached to, sorted (netmap allows several, once each). */
  attachments: string[];
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
  migrateLegacyHolding(opts);
  const hold = tryInfo(HOLDING_SWITCH, opts);
  if (!hold) return [];
  // attachments: the switches holding a persistent port of that name marked by attachPersistent
  const attached = new Map<string, string[]>();
  for (const sw of listSwitches(opts)) {
    for (const q of tryInfo(sw, opts)?.ports ?? []) {
      if (q.persistent && q.info === ATTACHED_INFO) {
        attached.set(q.name, [...(attached.get(q.name) ?? []), sw]);
      }
    }
  }
  return hold.ports.map((p) => {
    const attachments = attached.get(p.name) ?? [];
    return { name: p.name, attachedTo: attachments[0] ?? null, attachments, info: p };
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
  migrateLegacyHolding(opts);
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
  if (p.attachments.length) {
    throw new ValeError(
      Errno.EBUSY,
      `${name} is attached to ${p.attachments.join(", ")}; detach it first`,
    );
  }
  check(vale().vale_remove_port(cstr(runDir(opts.runDir)), cstr(HOLDING_SWITCH), cstr(name)));
}

/**
 * `vale-ctl -a SWITCH:NAME` for a persistent port: put it on the switch
 * (created if needed), also when it is attached to other switches already
 * (netmap's functional test 010). EBUSY if it is attached to this switch
 * already or the switch has a port of that name; ENXIO if there is no
 * persistent port NAME.
 */
export function attachPersistent(sw: string, name: string, opts: ControlOptions = {}): void {
  const p = findPersistent(name, opts);
  if (!p) throw new ValeError(Errno.ENXIO, `no persistent port ${name}`);
  if (p.attachments.includes(sw)) {
    throw new ValeError(Errno.EBUSY, `${name} is already attached to ${sw}`);
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
