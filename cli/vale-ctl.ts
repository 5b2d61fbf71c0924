/**
 * vale-ctl: netmap's switch control tool. Create and remove persistent
 * ports, attach them to switches and detach them, list switches and ports,
 * show a port's geometry; beyond netmap, owners, counters and drops in the
 * listing, the learned MAC table with ages, removing a whole switch, and
 * JSON output for every listing.
 *
 *   vale-ctl -n vi0 && vale-ctl -a vale0:vi0 && vale-ctl -l
 *
 * @module
 */
import { Errno, ValeError } from "../lib/errors.ts";
import {
  formatPortName,
  isSwitchName,
  parseAttachName,
  parsePortName,
  PortNameError,
} from "../lib/names.ts";
import { openPort } from "../lib/open.ts";
import {
  attachPersistent,
  createPersistent,
  detachPort,
  findPersistent,
  isHiddenSwitch,
  listPersistent,
  migrateLegacyHolding,
  type PersistentPort,
  removePersistent,
  setPersistentVnet,
  validPersistentName,
} from "../lib/switch/persistent.ts";
import { checkVnet, type VnetSettings } from "../lib/switch/open_request.ts";
import { Mtu } from "../ffi/structs/open_req.ts";
import {
  configLookup,
  listSwitches,
  MAX_BATCH,
  type PortInfo,
  removeSwitch,
  setBatch,
  setLookup,
  setPortVnet,
  type SwitchInfo,
  switchInfo,
} from "../lib/switch/control.ts";
import { err, getopt, type NmrConfig, out, parseNmrConfig } from "./common.ts";
import {
  attachInterfaceSync,
  attachmentNote,
  detachInterfaceSync,
  findAttachment,
  listAttachments,
} from "../lib/attach/attach.ts";

/** The usage text (`vale-ctl --help`). */
export const USAGE = `Usage:
vale-ctl arguments
	-g interface	interface name to get info
	-d interface	interface name to be detached
	-a interface	interface name to be attached
	-h interface	interface name to be attached with the host stack
	-n interface	interface name to be created
	-r interface	interface name to be deleted
	-l [vale-port]	list all ports (default), one switch's, or show one port's bridge and port indices
	-C string ring/slot setting of an interface creating by -n
	-p interface start polling. Additional -C x,y,z configures
		 x: 0 (REG_ALL_NIC) or 1 (REG_ONE_NIC),
		 y: CPU core id for ALL_NIC and core/ring for ONE_NIC
		 z: (ONE_NIC only) num of total cores/rings
	-P interface stop polling
	-m memid to use when creating a new interface
	-v	verbose: vale's listing (owners, counters, drops) and more detail in messages
	--macs [valeX]	learned MAC addresses with their ages (like brctl showmacs)
	--remove-switch valeX	remove a switch and every port on it (fails if one is open);
				also removes a damaged switch once no process has a port of it open
	--json	listings (-l, -g, --macs) as JSON
	--vnet-hdr LEN	virtio-net header length (0, 10 or 12, as netmap's port header) of the
		port that -n or -g creates, or that --set changes; with -a/-h of a kernel
		interface, the header the attachment uses (default 12: offloads kept,
		64 KiB GSO frames; 0: MTU-sized frames, AF_XDP on veths)
	--no-kfast	with -a/-h of a kernel interface: no kernel fast path (every frame
		through the forwarder; by default frames from veths/VM TAPs to veths of one
		switch whose destination the switch learned are handed over by the kernel)
	--mtu BYTES	MTU (largest Ethernet frame without header, 64..65553; default 1514)
		of the port that -n or -g creates, or that --set changes
	--set interface	change --vnet-hdr and/or --mtu of an existing port (open or not;
		a persistent port by its name, on its switch too when attached)
	--lookup valeX:MODULE	choose the switch's lookup module: learning (default), portmap,
				ethertype, or the absolute path of a shared object exporting vale_lookup
				(only one that nobody but you or root can change is loaded)
	--lookup-config valeX:REQUEST	send REQUEST to the switch's lookup module, print its reply
				(portmap: "map SRC DST", "map SRC flood", "unmap SRC", "show";
				ethertype: "ethertype TYPE DST", "default flood|drop", "show")
	--batch valeX:N	packets the switch forwards per flush, 1..1024 (netmap's
				dev.netmap.bridge, per switch); 0 restores the default 1024
	--group GROUP	a switch that -n or -a creates is shared with GROUP (name or gid):
		its members may open ports on it (directory 02770, files 0660);
		without it a new switch is private to you (0700, 0600)
	--help	this text

Interfaces:
	vale-ctl -n vi0			create persistent port vi0, attached to no switch
					(-C tx_slots[,rx_slots[,tx_rings[,rx_rings]]] sets its rings)
	vale-ctl -a vale0:vi0		attach vi0 to switch vale0 (the switch appears if needed);
					processes then open it as vale0:vi0 and it outlives them
	vale-ctl -d vale0:vi0		detach it from vale0 (it still exists)
	vale-ctl -r vi0			remove it (fails while attached or open)
	vale-ctl -a vale0:eth1		attach kernel interface eth1 (a veth or a VM's TAP: AF_PACKET
					with virtio-net headers, offloads kept; a NIC: AF_XDP when
					it can be set up, else AF_PACKET; the method is printed): a
					forwarder process serves port vale0:eth1, restarted if it dies
	vale-ctl -h vale0:eth1		the same, plus the host stack as port vale0:eth1-h through
					TAP eth1-h (give it the host's IP configuration)
	vale-ctl -a vale0:tap:tap0	create (or open) TAP tap0 and attach it (vale0:tap0)
	vale-ctl -a vale0:vhost:/run/vm1.sock	a vhost-user port vale0:vm1.sock: listen on the socket
					for a VM (QEMU -chardev socket,path=) or DPDK virtio-user;
					vhost-client:PATH connects to a QEMU with server=on instead
					(and reconnects); -l -v shows the front-end's state
	vale-ctl -d vale0:eth1		stop the forwarder, remove its port(s) and TAPs
	vale-ctl -n vi0 --vnet-hdr 12	create vi0 with a 12-byte virtio-net header (frames up to
					64 KiB with offloads; the switch converts toward ports
					without one: docs/architecture.md#offloads)
	vale-ctl --set vale0:a --vnet-hdr 10 --mtu 9000
					change an existing port's header length and MTU

Listing (-l): netmap's format, one line per port, "NAME bridge_idx B port_idx P";
	"-l valeX:Y" prints netmap's "bridge_idx: B" and "port_idx:   P" lines.
	-l -v: vale's listing, "NAME bridge:B port:P pid:OWNER (- when no process has it
	open) tx:PACKETS rx:PACKETS drops:PACKETS", bytes, drops by reason, the port's kind;
	persistent ports attached nowhere are listed too. -g prints netmap's six lines
	(memsize:, tx_slots:, rx_slots:, tx_rings:, rx_rings, mem_id:), -g -v one line.
	With -v, a port with a virtio-net header or an MTU other than 1514 shows
	vnet_hdr:LEN mtu:BYTES (-g -v likewise).

Names: valeX:Y, and the 2012 forms: vale-a:1 (port 1 of switch vale-a), vale-foo (a
	port of switch vale). A persistent port may be attached to several switches.

Errors are printed as "failed to <create|remove|attach|detach|list|obtain info for|...> NAME:
	<reason>" and make vale-ctl exit with status 1 (also a bad option or argument).

Environment:
	VALE_RUN_DIR	where switches live (default /dev/shm/vale)
	VALE_GROUP	group new switches are shared with when --group is not given
`;

type Cmd =
  | "list"
  | "create"
  | "remove"
  | "attach"
  | "attach-host"
  | "detach"
  | "info"
  | "poll-on"
  | "poll-off"
  | "macs"
  | "remove-switch"
  | "set"
  | "lookup"
  | "lookup-config"
  | "batch";

/** strerror() for the errnos vale-ctl reports. */
function strerror(e: unknown): string {
  if (e instanceof ValeError) return e.strerror;
  if (e instanceof PortNameError) return "Invalid argument";
  return e instanceof Error ? e.message : String(e);
}

/** Switches as listings show them: sorted, the holding switch hidden; index = netmap's bridge number. */
function visibleSwitches(): string[] {
  return listSwitches().filter((s) => !isHiddenSwitch(s));
}

/** Switches found damaged while listing, with the library's reason. */
const damaged = new Map<string, string>();

function tryInfo(sw: string): SwitchInfo | null {
  try {
    return switchInfo(sw);
  } catch (e) {
    if (e instanceof ValeError && e.code === "EPROTO") damaged.set(sw, e.message);
    if (e instanceof ValeError && (e.code === "ENOENT" || e.code === "EPROTO")) return null;
    throw e;
  }
}

function drops(p: PortInfo): number {
  const d = p.counters.drops;
  return d.ring_full + d.bad_slot + d.no_dest + d.lookup + d.bad_vnet + d.too_big;
}

/** Offload settings that differ from the default (none and 1514), or always with `all`. */
function vnetNote(p: { vnet_hdr_len: number; mtu: number }, all: boolean, sep: string): string {
  if (!all && !p.vnet_hdr_len && p.mtu === Mtu.VALE_DEF_MTU) return "";
  return ` vnet_hdr${sep === ":" ? "" : "_len"}${sep}${p.vnet_hdr_len} mtu${sep}${p.mtu}`;
}

function portLine(sw: string, bridge: number, p: PortInfo, verbose: boolean): string {
  const c = p.counters;
  let s = `${sw}:${p.name} bridge:${bridge} port:${p.index} pid:${p.in_use ? p.owner_pid : "-"} ` +
    `tx:${c.tx_packets} rx:${c.rx_packets} drops:${drops(p)}`;
  if (verbose) {
    const d = c.drops;
    const kind = [
      p.persistent ? "persistent" : "ephemeral",
      ...(p.pipe ? ["pipe"] : []),
      ...(p.exclusive ? ["exclusive"] : []),
      ...(p.monitor ? [`monitor(${p.monitor.tx ? "t" : ""}${p.monitor.rx ? "r" : ""})`] : []),
    ].join(",");
    s += ` tx_bytes:${c.tx_bytes} rx_bytes:${c.rx_bytes} ring_full:${d.ring_full}` +
      ` bad_slot:${d.bad_slot} no_dest:${d.no_dest} lookup:${d.lookup}` +
      ` bad_vnet:${d.bad_vnet} too_big:${d.too_big}` +
      ` sync_errors:${c.sync_errors} kind:${kind} mem_id:${p.mem_id}` +
      (p.fwd_pid ? ` fwd_pid:${p.fwd_pid}` : "") + (p.info ? ` info:"${p.info}"` : "");
  }
  s += vnetNote(p, verbose, ":");
  const note = kernelNote(sw, p); // kernel interfaces: see below
  return note ? `${s} ${note}` : s;
}

/** A name given to -l/-g/-a/-d: `valeX:Y` (maybe with suffixes) → [switch, port]. */
function switchPort(name: string): [string, string] {
  const spec = parsePortName(name);
  if (spec.kind !== "vale") throw new ValeError(Errno.EINVAL, `${name} is not a vale port`);
  const key = spec.port +
    (spec.pipe ? (spec.pipe.role === "master" ? "{" : "}") + spec.pipe.id : "");
  return [spec.switchName!, key];
}

function persistentJson(p: PersistentPort) {
  const i = p.info;
  return {
    name: p.name,
    attached_to: p.attachedTo,
    attachments: p.attachments,
    tx_rings: i.tx_rings,
    rx_rings: i.rx_rings,
    tx_slots: i.tx_slots,
    rx_slots: i.rx_slots,
    memsize: i.memsize,
    vnet_hdr_len: i.vnet_hdr_len,
    mtu: i.mtu,
  };
}

/** A listing line in netmap's format (`vale-ctl -l`): `vale0:a bridge_idx 0 port_idx 1`. */
function netmapLine(sw: string, bridge: number, p: PortInfo): string {
  return `${sw}:${p.name} bridge_idx ${bridge} port_idx ${p.index}`;
}

/** Without -v, notes that are not netmap's (damaged switches, gone interfaces) go to stderr. */
function note(verbose: boolean, line: string): void {
  if (verbose) out(line);
  else err(`vale-ctl: ${line}`);
}

function list(name: string | undefined, json: boolean, verbose: boolean): void {
  const sws = visibleSwitches();
  const line = (sw: string, b: number, p: PortInfo) =>
    (verbose ? portLine(sw, b, p, true) : netmapLine(sw, b, p)) + "\n";
  if (name === undefined) {
    const all = sws.map((sw, b) => ({ sw, b, info: tryInfo(sw) }));
    const persistent = json || verbose ? listPersistent() : []; // (it reads every switch)
    if (json) {
      out(
        JSON.stringify({
          switches: all.filter((x) => x.info).map((x) => ({ bridge: x.b, ...x.info })),
          persistent: persistent.map(persistentJson),
          damaged: [...damaged].map(([name, error]) => ({ name, error })),
        }) + "\n",
      );
      return;
    }
    for (const { sw, b, info } of all) {
      for (const p of info?.ports ?? []) out(line(sw, b, p));
      // a damaged switch is listed, not hidden: the user must learn it is there
      if (!info && damaged.has(sw)) {
        note(verbose, `${sw} bridge:${b} DAMAGED: ${damaged.get(sw)}\n`);
      }
    }
    listDetachedKernelInterfaces(verbose); // kernel interfaces: see below
    if (verbose) {
      for (const p of persistent.filter((p) => !p.attachedTo)) {
        out(`${p.name} persistent, attached to no switch\n`);
      }
    }
    return;
  }
  // "-l vale0" lists one switch (an extension); "-l vale0:a" one port, in
  // netmap's two lines. A 2012 name without ':' (vale-foo) is a switch if one
  // of that name exists, else the port of switch 'vale' it names.
  if (isSwitchName(name) && (sws.includes(name) || damaged.has(name) || !isPortName(name))) {
    const b = sws.indexOf(name);
    const info = b >= 0 ? tryInfo(name) : null;
    if (!info && damaged.has(name)) throw new ValeError(Errno.EPROTO, damaged.get(name)!);
    if (!info) throw new ValeError(Errno.ENOENT, `no switch ${name}`);
    if (json) out(JSON.stringify({ bridge: b, ...info }) + "\n");
    else for (const p of info.ports) out(line(name, b, p));
    return;
  }
  const [sw, key] = switchPort(name);
  const b = sws.indexOf(sw);
  const p = b >= 0 ? tryInfo(sw)?.ports.find((q) => q.name === key) : undefined;
  // netmap: ENOENT for a switch that does not exist (and port_idx 255 with status 0 for a
  // port that does not exist on one that does; vale says ENOENT for both)
  if (!p) throw new ValeError(Errno.ENOENT, `no port ${sw}:${key}`);
  if (json) out(JSON.stringify({ switch: sw, bridge: b, ...p }) + "\n");
  else if (verbose) out(portLine(sw, b, p, true) + "\n");
  else out(`bridge_idx: ${b}\nport_idx:   ${p.index}\n`);
}

function isPortName(name: string): boolean {
  try {
    return parsePortName(name).kind === "vale";
  } catch {
    return false;
  }
}

interface Geometry {
  name: string;
  memsize: number;
  tx_slots: number;
  rx_slots: number;
  tx_rings: number;
  rx_rings: number;
  mem_id: number;
  vnet_hdr_len: number;
  mtu: number;
}

/** -g: a port's geometry; a vale port that does not exist is created for the question, as netmap does. */
function info(name: string, conf: NmrConfig, vnet: VnetSettings): Geometry {
  const geo = (p: PortInfo): Geometry => ({
    name,
    memsize: p.memsize,
    tx_slots: p.tx_slots,
    rx_slots: p.rx_slots,
    tx_rings: p.tx_rings,
    rx_rings: p.rx_rings,
    mem_id: p.mem_id,
    vnet_hdr_len: p.vnet_hdr_len,
    mtu: p.mtu,
  });
  if (!name.includes(":")) {
    const p = validPersistentName(name) ? findPersistent(name) : null;
    if (p) return geo(p.info);
    // a 2012 name (vale-foo: port vale-foo of switch vale) is a port; anything else was a
    // persistent port that does not exist
    if (!name.startsWith("vale")) throw new ValeError(Errno.ENXIO, `no persistent port ${name}`);
  }
  const [sw, key] = switchPort(name);
  const existing = tryInfo(sw)?.ports.find((q) => q.name === key);
  if (existing) return geo(existing);
  const spec = parsePortName(name);
  spec.conf.txSlots ??= conf.txSlots || undefined;
  spec.conf.rxSlots ??= conf.rxSlots || undefined;
  spec.conf.txRings ??= conf.txRings || undefined;
  spec.conf.rxRings ??= conf.rxRings || undefined;
  const port = openPort(formatPortName(spec), vnet);
  try {
    const p = switchInfo(sw).ports.find((q) => q.index === port.index);
    if (!p) throw new ValeError(Errno.ENXIO, `no port ${name}`);
    return geo(p);
  } finally {
    port.close();
  }
}

function macs(sw: string | undefined, json: boolean, verbose: boolean): void {
  const names = sw === undefined ? visibleSwitches() : [sw];
  const tables = names.map((n) => {
    const info = tryInfo(n);
    if (!info) throw new ValeError(Errno.ENXIO, `no switch ${n}`);
    const byIdx = new Map(info.ports.map((p) => [p.index, p.name]));
    return {
      switch: n,
      age_limit_s: info.age_s,
      macs: info.macs
        .filter((m) => verbose || json || !m.expired)
        .map((m) => ({ ...m, port_name: byIdx.get(m.port) ?? "?" }))
        .sort((x, y) => x.port - y.port || x.mac.localeCompare(y.mac)),
    };
  });
  if (json) {
    out(JSON.stringify(sw === undefined ? tables : tables[0]) + "\n");
    return;
  }
  for (const t of tables) {
    if (sw === undefined) out(`${t.switch}:\n`);
    out("port no\tmac addr\t\tport name\tageing timer\n");
    for (const m of t.macs) {
      out(
        `${String(m.port).padStart(3)}\t${m.mac}\t${m.port_name.padEnd(15)}\t${
          String(m.age_s).padStart(4)
        }${m.expired ? " (expired)" : ""}\n`,
      );
    }
  }
}

// --- kernel interfaces (lib/attach/attach.ts, owned by the kernel-interfaces work) ---

/** `-a`/`-h valeX:IF` for a kernel interface: start its forwarder, say which method it uses. */
function attachKernelInterface(name: string, host: boolean, verbose: boolean): void {
  let a;
  // the forwarder creates the switch if needed: --group reaches it as VALE_GROUP
  const prevGroup = Deno.env.get("VALE_GROUP");
  if (shareGroup !== undefined) Deno.env.set("VALE_GROUP", shareGroup);
  try {
    a = attachInterfaceSync(name, { host, vnetHdr: attachVnetHdr, kfast: attachKfast });
  } catch (e) {
    // the reason (a missing privilege, the method's error) matters here: always say it
    if (!verbose && e instanceof ValeError) err(`vale-ctl: ${e.message}\n`);
    throw e;
  } finally {
    if (shareGroup !== undefined) {
      if (prevGroup === undefined) Deno.env.delete("VALE_GROUP");
      else Deno.env.set("VALE_GROUP", prevGroup);
    }
  }
  out(
    `${a.name}: ${a.iface} attached via ${a.mode ?? a.method} (${a.why}), forwarder pid ${a.pid}` +
      (a.host ? `; host stack: ${a.switch}:${a.host.port} <-> TAP ${a.host.tap}` : "") + "\n",
  );
  if (verbose) out(`vale-ctl: log in ${a.log}\n`);
}

/** `-d` of an attached kernel interface; false if `name` is not one. */
function detachKernelInterface(name: string, verbose: boolean): boolean {
  if (!findAttachment(name)) return false;
  const a = detachInterfaceSync(name);
  if (a.status === "gone" || a.status === "dead" || a.status === "failed") {
    out(`${a.name}: detached (it was ${a.status}: ${a.message})\n`);
  } else if (verbose) {
    out(`${a.name}: forwarder stopped, ${a.iface} detached\n`);
  }
  return true;
}

const kernelNotes = new Map<string, boolean>();
/** Listing note of an attached kernel interface's port (status, method, forwarder pid). */
function kernelNote(sw: string, p: PortInfo): string {
  if (!kernelNotes.has(sw)) kernelNotes.set(sw, listAttachments(sw).length > 0);
  return kernelNotes.get(sw) ? attachmentNote(sw, p) : "";
}

/** Attachments whose interface went away (or that failed): their ports are gone, say why. */
function listDetachedKernelInterfaces(verbose: boolean): void {
  for (const a of listAttachments()) {
    if (a.status === "gone" || a.status === "failed") {
      note(verbose, `${a.name} ${a.status}: ${a.message} ('vale-ctl -d ${a.name}' forgets it)\n`);
    }
  }
}

// --- end kernel interfaces ---

/** --group: share the switches this command creates. */
let shareGroup: string | undefined;
/** --vnet-hdr with -a/-h of a kernel interface: the attachment's header (default 12, 0 none). */
let attachVnetHdr: 0 | 10 | 12 | undefined;
/** --no-kfast with -a/-h: no kernel fast path for the attachment. */
let attachKfast: false | undefined;

/** `valeX:tap:NAME`, `valeX:netmap:IF`, `valeX:xdp:IF`, `valeX:packet:IF` (lib/names.ts)? */
function namesKernelPort(name: string): boolean {
  try {
    return parseAttachName(name).kernel !== undefined;
  } catch {
    // a malformed valeX:KIND:NAME: the attachment code says what is wrong with it
    return name.indexOf(":") !== name.lastIndexOf(":");
  }
}

function attach(name: string, host: boolean, verbose: boolean): void {
  if (namesKernelPort(name)) {
    return attachKernelInterface(name, host, verbose); // valeX:tap:NAME, valeX:xdp:IF, ...
  }
  const [sw, key] = switchPort(name);
  if (findPersistent(key)) {
    attachPersistent(sw, key, { group: shareGroup });
    if (host && verbose) out(`${key} is a vale port: it has no host stack, attached as with -a\n`);
    return;
  }
  attachKernelInterface(name, host, verbose);
}

/** `SWITCH:VALUE` (--lookup, --lookup-config): a switch name cannot hold ':'. */
function switchAnd(arg: string, what: string): [string, string] {
  const colon = arg.indexOf(":");
  const sw = colon < 0 ? arg : arg.slice(0, colon);
  if (colon < 0 || !isSwitchName(sw) || colon === arg.length - 1) {
    throw new ValeError(Errno.EINVAL, `expected SWITCH:${what} (e.g. vale0:${what}), got '${arg}'`);
  }
  if (!listSwitches().includes(sw)) throw new ValeError(Errno.ENXIO, `no switch ${sw}`);
  return [sw, arg.slice(colon + 1)];
}

/** vale-ctl's main(); returns the exit status. */
export function main(argv: string[]): number {
  const g = getopt("vale-ctl", argv, "d:a:h:g:l::n:r:C:p:P:m:v", [
    { name: "help", arg: "none" },
    { name: "json", arg: "none" },
    { name: "macs", arg: "optional" },
    { name: "showmacs", arg: "optional" },
    { name: "remove-switch", arg: "required" },
    { name: "group", arg: "required" },
    { name: "vnet-hdr", arg: "required" },
    { name: "mtu", arg: "required" },
    { name: "set", arg: "required" },
    { name: "lookup", arg: "required" },
    { name: "lookup-config", arg: "required" },
    { name: "batch", arg: "required" },
    { name: "no-kfast", arg: "none" },
  ]);
  if (g.error) {
    err(`${g.error}\n`);
    err(`bad option ${g.badOpt} (null)\n`);
    err(USAGE);
    return 1;
  }
  let cmd: Cmd | undefined, name: string | undefined, config = "";
  let json = false, verbose = false, memid = 0;
  const vnet: VnetSettings = {};
  const intArg = (o: string, a: string): number => {
    if (!/^\d+$/.test(a)) throw new ValeError(Errno.EINVAL, `--${o} ${a}: not a number`);
    return Number(a);
  };
  shareGroup = undefined;
  attachVnetHdr = undefined;
  attachKfast = undefined;
  for (const { opt, arg } of g.opts) {
    switch (opt) {
      case "help":
        out(USAGE);
        return 0;
      case "json":
        json = true;
        break;
      case "v":
        verbose = true;
        break;
      case "group":
        shareGroup = arg!;
        break;
      case "no-kfast":
        attachKfast = false;
        break;
      case "vnet-hdr":
      case "mtu":
        try {
          if (opt === "mtu") vnet.mtu = intArg(opt, arg!);
          else vnet.vnetHdrLen = intArg(opt, arg!);
          checkVnet(vnet);
          attachVnetHdr = vnet.vnetHdrLen as 0 | 10 | 12 | undefined;
        } catch (e) {
          err(`vale-ctl: ${(e as Error).message}\n`);
          return 1;
        }
        break;
      case "C":
        config = arg!;
        break;
      case "m":
        memid = parseInt(arg!, 10) || 0;
        break;
      default: {
        const map: Record<string, Cmd> = {
          d: "detach",
          a: "attach",
          h: "attach-host",
          n: "create",
          r: "remove",
          g: "info",
          l: "list",
          p: "poll-on",
          P: "poll-off",
          macs: "macs",
          showmacs: "macs",
          "remove-switch": "remove-switch",
          set: "set",
          lookup: "lookup",
          "lookup-config": "lookup-config",
          batch: "batch",
        };
        cmd = map[opt];
        name = arg;
      }
    }
  }
  // -l and --macs take their (optional) argument as a separate word too: -l -v vale0
  if ((cmd === "macs" || cmd === "list") && name === undefined && g.operands.length === 1) {
    name = g.operands.shift();
  }
  if (g.operands.length) {
    err(USAGE);
    return 1;
  }
  cmd ??= "list";
  // netmap: -l takes a VALE name
  if (cmd === "list" && name !== undefined && !name.startsWith("vale")) {
    err(`invalid vale port name: '${name}'\n`);
    err(USAGE);
    return 1;
  }
  if (memid && verbose) {
    err(`vale-ctl: -m ${memid} ignored: every vale port has its own memory region\n`);
  }
  const conf = parseNmrConfig(config);
  const verb: Record<Cmd, string> = {
    list: "list",
    create: "create",
    remove: "remove",
    attach: "attach",
    "attach-host": "attach",
    detach: "detach",
    info: "obtain info for",
    "poll-on": "enable polling on",
    "poll-off": "disable polling on",
    macs: "list MAC addresses of",
    "remove-switch": "remove switch",
    set: "set",
    lookup: "set the lookup module of",
    "lookup-config": "configure the lookup module of",
    batch: "set the batch size of",
  };
  if (cmd === "set" && vnet.vnetHdrLen === undefined && vnet.mtu === undefined) {
    err("vale-ctl: --set needs --vnet-hdr LEN and/or --mtu BYTES\n");
    return 255;
  }
  try {
    migrateLegacyHolding(); // a run directory of an older vale: see lib/switch/persistent.ts
    switch (cmd) {
      case "list":
        list(name, json, verbose);
        break;
      case "create":
        createPersistent(name!, conf, { group: shareGroup }, vnet);
        if (verbose) out(`created ${name}\n`);
        break;
      case "remove":
        if (name!.includes(":")) {
          // a persistent port made on a switch directly (lib createPersistentPort)
          const [sw, key] = switchPort(name!);
          detachPort(sw, key);
        } else {
          removePersistent(name!);
        }
        if (verbose) out(`removed ${name}\n`);
        break;
      case "attach":
      case "attach-host":
        attach(name!, cmd === "attach-host", verbose);
        if (verbose) out(`attached ${name}\n`);
        break;
      case "detach": {
        if (detachKernelInterface(name!, verbose)) break; // kernel interfaces: see above
        const [sw, key] = switchPort(name!);
        detachPort(sw, key);
        if (verbose) out(`detached ${name}\n`);
        break;
      }
      case "info": {
        const i = info(name!, conf, vnet);
        if (json) out(JSON.stringify(i) + "\n");
        else if (verbose) {
          out(
            `${name}: memsize ${i.memsize} tx_slots ${i.tx_slots} rx_slots ${i.rx_slots} ` +
              `tx_rings ${i.tx_rings} rx_rings ${i.rx_rings} mem_id ${i.mem_id}` +
              vnetNote(i, verbose, " ") + "\n",
          );
        } else {
          // netmap's lines, verbatim (its "rx_rings" line has no ':')
          out(
            `memsize:    ${i.memsize}\ntx_slots:   ${i.tx_slots}\nrx_slots:   ${i.rx_slots}\n` +
              `tx_rings:   ${i.tx_rings}\nrx_rings    ${i.rx_rings}\nmem_id:     ${i.mem_id}\n`,
          );
        }
        break;
      }
      case "set":
        if (name!.includes(":")) setPortVnet(name!, vnet);
        else setPersistentVnet(name!, vnet);
        if (verbose) out(`set ${name}\n`);
        break;
      case "poll-on":
      case "poll-off":
        throw new ValeError(
          Errno.EOPNOTSUPP,
          "vale has no kernel polling threads: forwarding runs in each sender's txsync",
        );
      case "macs":
        macs(name, json, verbose);
        break;
      case "remove-switch":
        if (!isSwitchName(name!)) {
          throw new ValeError(Errno.EINVAL, `${name} is not a switch name (valeX)`);
        }
        try {
          removeSwitch(name!);
        } catch (e) {
          if (e instanceof ValeError && e.code === "ENOENT") {
            throw new ValeError(Errno.ENXIO, `no switch ${name}`);
          }
          throw e;
        }
        if (verbose) out(`removed switch ${name}\n`);
        break;
      case "lookup": {
        const [sw, module] = switchAnd(name!, "MODULE");
        setLookup(sw, module);
        if (verbose) out(`${sw}: lookup module ${module}\n`);
        break;
      }
      case "batch": {
        const [sw, n] = switchAnd(name!, "N");
        if (!/^[0-9]{1,5}$/.test(n) || Number(n) > MAX_BATCH) {
          throw new ValeError(
            Errno.EINVAL,
            `batch '${n}' is out of range (1..${MAX_BATCH}, 0 = default ${MAX_BATCH})`,
          );
        }
        setBatch(sw, Number(n));
        if (verbose) out(`${sw}: batch ${Number(n) || MAX_BATCH}\n`);
        break;
      }
      case "lookup-config": {
        const [sw, request] = switchAnd(name!, "REQUEST");
        const reply = configLookup(sw, request);
        out(reply.endsWith("\n") || reply === "" ? reply : reply + "\n");
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof ValeError || e instanceof PortNameError)) throw e;
    err(`failed to ${verb[cmd]} ${name ?? ""}: ${strerror(e)}\n`);
    // netmap's one line first; then vale's reason when the errno alone cannot say
    // what to do (a damaged switch, a refusal for safety, an unsupported request)
    const explain = ["EOPNOTSUPP", "EPROTO", "EACCES", "EPERM", "ELOOP"];
    if (
      verbose || (e instanceof ValeError && (explain.includes(e.code) ||
        /\bdamaged\b/.test(e.message)))
    ) {
      err(`vale-ctl: ${e.message}\n`);
    }
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(main(Deno.args));
}
