/**
 * Switch control: list switches and ports (owners, counters, MAC table),
 * create and remove persistent ports, remove switches, choose and configure
 * the lookup module. What vale-ctl is built on.
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { check, Errno } from "../errors.ts";
import { isSwitchName, parsePortName, switchPortKey } from "../names.ts";
import type { PortCounters } from "./port.ts";
import { checkVnet, openRequest, type VnetSettings } from "./open_request.ts";
import { runDir } from "../rundir.ts";

/** One port as the switch sees it. */
export interface PortInfo {
  /** Index in the port table. */
  index: number;
  /** Generation of the index (bumped each time it is reused). */
  gen: number;
  /** Name inside the switch. */
  name: string;
  /** Created by `vale-ctl -n`: stays until removed. */
  persistent: boolean;
  /** One end of a pipe. */
  pipe: boolean;
  /** Opened with /x. */
  exclusive: boolean;
  /** A live process has it open. */
  in_use: boolean;
  /** Process that opened it last, if in use (0 otherwise). */
  owner_pid: number;
  /** Forwarder process serving it (attachments), 0 if none. */
  fwd_pid: number;
  /** Free text: what serves the port. */
  info: string;
  /** TX rings. */
  tx_rings: number;
  /** RX rings. */
  rx_rings: number;
  /** Slots per TX ring. */
  tx_slots: number;
  /** Slots per RX ring. */
  rx_slots: number;
  /** Buffers in the port's region. */
  nbufs: number;
  /** Bytes of the port's memory region. */
  memsize: number;
  /** Memory region id (shared by both ends of a pipe). */
  mem_id: number;
  /** Region end (pipes: 0 master, 1 slave). */
  end: number;
  /** Frames delivered to its RX rings and not yet read by its owner. */
  rx_queued: number;
  /** Frames its RX rings can hold (slots - 1 per ring). */
  rx_room: number;
  /** virtio-net header length of the port (0, 10, 12). */
  vnet_hdr_len: number;
  /** MTU of the port (largest Ethernet frame without header). */
  mtu: number;
  /** Present on a monitor (`/r`, `/t`, `/rt`, `/z`): what it watches. */
  monitor?: MonitorInfo;
  /** Traffic counters. */
  counters: PortCounters;
}

/** What a monitor port watches (docs/port-names.md#monitors). */
export interface MonitorInfo {
  /** Name of the monitored port; null once that port is gone. */
  of: string | null;
  /** Index of the monitored port. */
  of_index: number;
  /** Copies of what the port sends. */
  tx: boolean;
  /** Copies of what the port receives. */
  rx: boolean;
  /** Opened with `/z` (served as a copy monitor). */
  zcopy: boolean;
}

/** A learned MAC address. */
export interface MacEntry {
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  /** Port index it was learned on. */
  port: number;
  /** Seconds since it was last seen. */
  age_s: number;
  /** Older than the switch's ageing time: no longer used for forwarding. */
  expired: boolean;
}

/** A switch and everything on it. */
export interface SwitchInfo {
  /** Switch name (`vale0`). */
  name: string;
  /** Its directory. */
  dir: string;
  /** Port table size. */
  max_ports: number;
  /** MAC table size. */
  mac_entries: number;
  /** MAC ageing time in seconds. */
  age_s: number;
  /** Lookup module. */
  lookup: string;
  /** Packets per flush (netmap's dev.netmap.bridge; default 1024): {@link setBatch}. */
  batch: number;
  /** Ports in use. */
  ports: PortInfo[];
  /** Learned MACs. */
  macs: MacEntry[];
}

/** Options common to control calls. */
export interface ControlOptions {
  /** Run directory (default `$VALE_RUN_DIR` or `/dev/shm/vale`). */
  runDir?: string;
  /**
   * Calls that create a switch (persistent ports) share it with this group
   * (name or gid), like `OpenOptions.group` of lib/switch/port.ts.
   */
  group?: string | number;
}

/**
 * Names of the switches in the run directory that this process may use.
 * Dead processes' ports are reclaimed first, and a switch left with no port
 * is removed (so switches whose users were all killed disappear here).
 * Switches of other users that are not shared with us are not listed.
 */
export function listSwitches(opts: ControlOptions = {}): string[] {
  const dir = runDir(opts.runDir);
  const out: string[] = [];
  const lib = vale();
  const rd = cstr(dir);
  try {
    for (const e of Deno.readDirSync(dir)) {
      // only switch names (valeX, vale-a): internal switches (the holding switch
      // of unattached persistent ports, ".kernel", ".attach") are not the user's
      if (!e.isDirectory || !isSwitchName(e.name)) continue;
      // reap (removes the switch if nobody is left); refused: not ours. A
      // damaged switch stays listed: its user must learn it is there.
      const r = lib.vale_reap(rd, cstr(e.name));
      if (r < 0 && r !== -Errno.EPROTO) continue;
      try {
        if (Deno.statSync(`${dir}/${e.name}/ctl`).isFile) out.push(e.name);
      } catch { /* removed: it was empty */ }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Everything about one switch; reclaims dead processes' ports first. */
export function switchInfo(name: string, opts: ControlOptions = {}): SwitchInfo {
  const lib = vale();
  const rd = cstr(runDir(opts.runDir)), sw = cstr(name);
  let cap = 1 << 16;
  for (;;) {
    const buf = new Uint8Array(cap);
    const n = check(lib.vale_switch_json(rd, sw, buf, cap));
    if (n <= cap) return JSON.parse(new TextDecoder().decode(buf.subarray(0, n - 1)));
    cap = n + 4096;
  }
}

/** Counters of one port, looked up by its full name (`vale0:a`). */
export function portCounters(portName: string, opts: ControlOptions = {}): PortCounters {
  const spec = parsePortName(portName);
  const key = switchPortKey(spec);
  const p = switchInfo(spec.switchName!, opts).ports.find((x) => x.name === key);
  if (!p) throw new Error(`no port ${portName}`);
  return p.counters;
}

/** Create a persistent port (`vale-ctl -n`): it stays until removed. */
export function createPersistentPort(
  name: string,
  opts: ControlOptions & VnetSettings = {},
): void {
  const spec = parsePortName(name);
  check(
    vale().vale_create_persistent(
      cstr(runDir(opts.runDir)),
      cstr(spec.switchName!),
      cstr(switchPortKey(spec)),
      openRequest(spec, false, opts.group, opts),
    ),
  );
}

/**
 * Set the virtio-net header length and/or MTU of an existing port by name
 * (`vale-ctl --set`), open or not: netmap's NETMAP_REQ_PORT_HDR_SET.
 */
export function setPortVnet(name: string, v: VnetSettings, opts: ControlOptions = {}): void {
  checkVnet(v);
  const spec = parsePortName(name);
  check(
    vale().vale_port_set_vnet(
      cstr(runDir(opts.runDir)),
      cstr(spec.switchName!),
      cstr(switchPortKey(spec)),
      v.vnetHdrLen ?? -1,
      v.mtu ?? -1,
    ),
  );
}

/** Remove a port that nobody has open (`vale-ctl -r`); EBUSY if in use. */
export function removePort(name: string, opts: ControlOptions = {}): void {
  const spec = parsePortName(name);
  check(
    vale().vale_remove_port(
      cstr(runDir(opts.runDir)),
      cstr(spec.switchName!),
      cstr(switchPortKey(spec)),
    ),
  );
}

/** Remove a whole switch; EBUSY if any port is in use. */
export function removeSwitch(name: string, opts: ControlOptions = {}): void {
  check(vale().vale_remove_switch(cstr(runDir(opts.runDir)), cstr(name)));
}

/** Reclaim ports of dead processes and stuck leases now. */
export function reap(name: string, opts: ControlOptions = {}): void {
  check(vale().vale_reap(cstr(runDir(opts.runDir)), cstr(name)));
}

/**
 * Choose the switch's lookup module: `learning` (default), `portmap`,
 * `ethertype`, or the path of a shared object exporting `vale_lookup`.
 */
export function setLookup(name: string, module: string, opts: ControlOptions = {}): void {
  check(vale().vale_set_lookup(cstr(runDir(opts.runDir)), cstr(name), cstr(module)));
}

/** Largest batch a switch forwards per flush, and the default (netmap's VALE_MAX_BATCH). */
export const MAX_BATCH = 1024;

/**
 * Sets how many packets the switch looks up and delivers per flush (netmap's
 * `dev.netmap.bridge` sysctl, per switch here): 1..{@link MAX_BATCH}, 0 for
 * the default ({@link MAX_BATCH}). Smaller batches bound the time one sender
 * holds the destinations; above 64 performs well.
 */
export function setBatch(name: string, batch: number, opts: ControlOptions = {}): void {
  if (!Number.isInteger(batch) || batch < 0 || batch > MAX_BATCH) {
    throw new RangeError(`batch ${batch} is out of range (1..${MAX_BATCH}, 0 = default)`);
  }
  check(vale().vale_set_batch(cstr(runDir(opts.runDir)), cstr(name), batch));
}

/** Send a configuration request to the switch's lookup module; returns its reply. */
export function configLookup(name: string, request: string, opts: ControlOptions = {}): string {
  const reply = new Uint8Array(65536);
  const n = check(
    vale().vale_lookup_config(
      cstr(runDir(opts.runDir)),
      cstr(name),
      cstr(request),
      reply,
      reply.length,
    ),
  );
  return new TextDecoder().decode(reply.subarray(0, Math.min(n, reply.length - 1)));
}

/** Record the forwarder serving a port (used by attachments). */
export function setPortInfo(
  name: string,
  fwdPid: number,
  info: string,
  opts: ControlOptions = {},
): void {
  const spec = parsePortName(name);
  check(
    vale().vale_port_set_info(
      cstr(runDir(opts.runDir)),
      cstr(spec.switchName!),
      cstr(switchPortKey(spec)),
      fwdPid,
      cstr(info),
    ),
  );
}
