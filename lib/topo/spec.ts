/**
 * A topology as data: the spec a user writes (in TypeScript or as a JSON
 * file, same shape), its validation with errors that name the bad field
 * (`hosts.h1.ip: ...`), and the plan — every concrete name the topology will
 * create (namespaces, interfaces, switch ports, switches, MACs), derived from
 * the spec alone so that `down` and the next `up` find the same names.
 *
 * Naming, with topology name P (the prefix, 1–8 letters or digits):
 * namespace `vale-P-HOST`, switch `valeP_SW`, the root end of a veth (and its
 * switch port) or a TAP `P-HOST-eK` (K: the host's K-th link, from 0; not `-K`, which a port name reads as a ring number), the
 * ports of a bridge between switches S1 and S2 `to-S2` on S1 and `to-S1` on
 * S2. P, host and switch names have no `-` or `_`, so the part before the
 * first separator tells the topology and two topologies never share a name.
 *
 * @module
 */
import { MAX_IFNAME_LENGTH, MAX_SWITCH_NAME_LENGTH } from "../names.ts";

/** A whole topology (also the JSON file's top-level object). */
export interface TopologySpec {
  /** Prefix of every name the topology creates: 1–8 letters or digits. */
  name: string;
  /** Switches by name (letters and digits): `{ "s1": {}, "s2": { "lookup": "portmap" } }`. */
  switches: Record<string, SwitchSpec>;
  /** Hosts (network namespaces) by name (letters and digits). */
  hosts: Record<string, HostSpec>;
  /** Host–switch links (veth or TAP) and switch–switch links (a bridge). */
  links: LinkSpec[];
  /** Fill every host's neighbour table (IPv4 ARP) with the others' MACs, so no ARP crosses the switches (Mininet's `--arp`). */
  staticArp?: boolean;
}

/** One switch. */
export interface SwitchSpec {
  /** Lookup module: `learning` (default), `portmap`, `ethertype`, or the absolute path of a `.so`. */
  lookup?: string;
  /** Requests sent to the lookup module after it is set (as `configLookup`). */
  lookupConfig?: string[];
}

/** One host: a network namespace. */
export interface HostSpec {
  /** IPv4 address(es) with prefix length (`10.0.0.1/24`) of the host's first link. */
  ip?: string | string[];
  /** IPv6 address(es) with prefix length (`fd00::1/64`) of the host's first link. */
  ip6?: string | string[];
  /** MTU of the host's interfaces (default: the kernel's, 1500). */
  mtu?: number;
  /** Routes: `{ "to": "default", "via": "10.0.0.254" }`, `{ "to": "10.1.0.0/16", "dev": "eth0" }`. */
  routes?: RouteSpec[];
}

/** A route of a host. */
export interface RouteSpec {
  /** Destination: `default` or a prefix (IPv4 or IPv6). */
  to: string;
  /** Gateway address. */
  via?: string;
  /** Interface of the host (its name inside the namespace). */
  dev?: string;
}

/** A host joined to a switch. */
export interface HostLinkSpec {
  /** The host. */
  host: string;
  /** The switch. */
  switch: string;
  /** `veth` (default: a veth pair, the root end attached by a supervised forwarder) or `tap` (a TAP inside the host, its fd side attached). */
  kind?: "veth" | "tap";
  /** Name of the interface inside the host (veth only; default `eth0`, `eth1`, … by link order). A TAP is named like its switch port. */
  ifname?: string;
  /** IPv4 address(es) of this interface (default: the host's `ip` for its first link). */
  ip?: string | string[];
  /** IPv6 address(es) of this interface (default: the host's `ip6` for its first link). */
  ip6?: string | string[];
  /** MTU of this interface (default: the host's). */
  mtu?: number;
  /** MAC of the host's interface (default: derived from the names, locally administered). */
  mac?: string;
}

/** Two switches joined by a bridge process (`bridge -i valeA:to-B -i valeB:to-A`). */
export interface SwitchLinkSpec {
  /** The two switches. */
  switches: [string, string];
}

/** A link. */
export type LinkSpec = HostLinkSpec | SwitchLinkSpec;

/** A spec that does not validate: `path` names the field (`hosts.h1.ip`, `links[2].switch`). */
export class TopologyError extends Error {
  /** Where in the spec (empty: the whole spec). */
  readonly path: string;
  /** What is wrong with it. */
  readonly reason: string;
  constructor(path: string, reason: string, source?: string) {
    super(`${source ? `${source}: ` : ""}${path ? `${path}: ` : ""}${reason}`);
    this.name = "TopologyError";
    this.path = path;
    this.reason = reason;
  }
}

// ------------------------------------------------------------ addresses

/** An IPv4 address (no prefix) as a number, or null. */
export function parseIPv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return null;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

/** Is `s` an IPv6 address (no prefix)? */
export function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(":")) return false;
  let head = s, v4 = 0;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) { // ::ffff:1.2.3.4
    if (parseIPv4(s.slice(lastColon + 1)) === null) return false;
    head = s.slice(0, lastColon + 1) + "0";
    v4 = 1;
  }
  const halves = head.split("::");
  if (halves.length > 2) return false;
  const groups = halves.map((h) => (h === "" ? [] : h.split(":")));
  if (groups.flat().some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const n = groups.flat().length + v4;
  return halves.length === 2 ? n <= 7 : n === 8;
}

/** `a.b.c.d/n` → address and prefix length, or null. */
export function parseCidr4(s: string): { addr: number; len: number } | null {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m || Number(m[2]) > 32) return null;
  const addr = parseIPv4(m[1]);
  return addr === null ? null : { addr, len: Number(m[2]) };
}

function isCidr6(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  return !!m && Number(m[2]) <= 128 && isIPv6(m[1]);
}

/** Are two IPv4 CIDRs in one subnet (the first one's)? */
export function sameSubnet4(a: string, b: string): boolean {
  const x = parseCidr4(a), y = parseCidr4(b);
  if (!x || !y) return false;
  const mask = x.len === 0 ? 0 : (~0 << (32 - x.len)) >>> 0;
  return ((x.addr & mask) >>> 0) === ((y.addr & mask) >>> 0);
}

// ------------------------------------------------------------ validation

const NAME_RE = /^[A-Za-z0-9]+$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const BUILTIN_LOOKUPS = ["learning", "portmap", "ethertype"];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + "..." : s;
}

class Checker {
  constructor(readonly source?: string) {}
  fail(path: string, reason: string): never {
    throw new TopologyError(path, reason, this.source);
  }
  keys(o: Obj, path: string, allowed: string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) {
        this.fail(
          path ? `${path}.${k}` : k,
          `unknown field (expected one of: ${allowed.join(", ")})`,
        );
      }
    }
  }
  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.fail(path, `expected an object, got ${show(v)}`);
    return v;
  }
  name(v: unknown, path: string, what: string): string {
    if (typeof v !== "string" || !NAME_RE.test(v)) {
      this.fail(path, `${what} must be letters and digits only, got ${show(v)}`);
    }
    return v;
  }
  addrs(v: unknown, path: string, v6: boolean): string[] {
    if (v === undefined) return [];
    const list = Array.isArray(v) ? v : [v];
    list.forEach((a, i) => {
      const p = Array.isArray(v) ? `${path}[${i}]` : path;
      const ok = typeof a === "string" && (v6 ? isCidr6(a) : parseCidr4(a) !== null);
      if (!ok) {
        this.fail(
          p,
          `${show(a)} is not an ${v6 ? "IPv6" : "IPv4"} address with a prefix length ` +
            `(e.g. ${v6 ? "fd00::1/64" : "10.0.0.1/24"})`,
        );
      }
    });
    return list as string[];
  }
  mtu(v: unknown, path: string): number | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 68 || v > 65535) {
      this.fail(path, `MTU must be an integer from 68 to 65535, got ${show(v)}`);
    }
    return v;
  }
}

/**
 * Check a parsed JSON value (or a TS object) against the schema and return it
 * typed; throws {@link TopologyError} naming the first bad field. `source`
 * (a file name) prefixes the messages.
 */
export function validateTopology(v: unknown, source?: string): TopologySpec {
  const c: Checker = new Checker(source);
  const top = c.obj(v, "");
  c.keys(top, "", ["$schema", "name", "switches", "hosts", "links", "staticArp", "comment"]);
  const name = c.name(top.name, "name", "the topology name");
  if (name.length > 8) {
    c.fail("name", `at most 8 characters (it prefixes interface names), got ${show(name)}`);
  }
  if (top.staticArp !== undefined && typeof top.staticArp !== "boolean") {
    c.fail("staticArp", `expected true or false, got ${show(top.staticArp)}`);
  }

  const switches = c.obj(top.switches ?? {}, "switches");
  for (const [s, sv] of Object.entries(switches)) {
    const p = `switches.${s}`;
    c.name(s, p, "a switch name");
    const sw = `vale${name}_${s}`;
    if (sw.length > MAX_SWITCH_NAME_LENGTH) {
      c.fail(
        p,
        `the switch would be named '${sw}' (${sw.length} characters, at most ` +
          `${MAX_SWITCH_NAME_LENGTH}): shorten the switch or the topology name`,
      );
    }
    const so = c.obj(sv, p);
    c.keys(so, p, ["lookup", "lookupConfig", "comment"]);
    if (so.lookup !== undefined) {
      if (
        typeof so.lookup !== "string" ||
        !(BUILTIN_LOOKUPS.includes(so.lookup) ||
          (so.lookup.startsWith("/") && so.lookup.length < 64))
      ) {
        c.fail(
          `${p}.lookup`,
          `expected ${BUILTIN_LOOKUPS.join(", ")} or the absolute path of a lookup module ` +
            `(.so, under 64 characters), got ${show(so.lookup)}`,
        );
      }
    }
    if (so.lookupConfig !== undefined) {
      if (!Array.isArray(so.lookupConfig) || so.lookupConfig.some((x) => typeof x !== "string")) {
        c.fail(`${p}.lookupConfig`, `expected a list of strings, got ${show(so.lookupConfig)}`);
      }
    }
  }

  const hosts = c.obj(top.hosts ?? {}, "hosts");
  if (Object.keys(hosts).length > 250) c.fail("hosts", "at most 250 hosts");
  for (const [h, hv] of Object.entries(hosts)) {
    const p = `hosts.${h}`;
    c.name(h, p, "a host name");
    if (h in switches) c.fail(p, `${h} names a switch too: host and switch names must differ`);
    const ho = c.obj(hv, p);
    c.keys(ho, p, ["ip", "ip6", "mtu", "routes", "comment"]);
    c.addrs(ho.ip, `${p}.ip`, false);
    c.addrs(ho.ip6, `${p}.ip6`, true);
    c.mtu(ho.mtu, `${p}.mtu`);
    if (ho.routes !== undefined) {
      if (!Array.isArray(ho.routes)) {
        c.fail(`${p}.routes`, `expected a list, got ${show(ho.routes)}`);
      }
      ho.routes.forEach((r, i) => {
        const rp = `${p}.routes[${i}]`;
        const ro = c.obj(r, rp);
        c.keys(ro, rp, ["to", "via", "dev"]);
        const to = ro.to;
        if (
          typeof to !== "string" ||
          !(to === "default" || parseCidr4(to) || isCidr6(to) || parseIPv4(to) !== null ||
            isIPv6(to))
        ) {
          c.fail(`${rp}.to`, `expected "default" or an address prefix, got ${show(to)}`);
        }
        if (
          ro.via !== undefined &&
          (typeof ro.via !== "string" || (parseIPv4(ro.via) === null && !isIPv6(ro.via)))
        ) c.fail(`${rp}.via`, `expected an IPv4 or IPv6 address, got ${show(ro.via)}`);
        if (ro.dev !== undefined && typeof ro.dev !== "string") {
          c.fail(`${rp}.dev`, `expected an interface name, got ${show(ro.dev)}`);
        }
        if (ro.via === undefined && ro.dev === undefined) c.fail(rp, `needs "via" or "dev"`);
      });
    }
  }

  if (!Array.isArray(top.links ?? [])) c.fail("links", `expected a list, got ${show(top.links)}`);
  const links = (top.links ?? []) as unknown[];
  const linkCount = new Map<string, number>();
  const pairs = new Set<string>();
  const parent = new Map<string, string>(); // union-find over switches: bridges must not loop
  const root = (s: string): string => {
    while (parent.get(s) !== s) s = parent.get(s)!;
    return s;
  };
  for (const s of Object.keys(switches)) parent.set(s, s);
  links.forEach((l, i) => {
    const p = `links[${i}]`;
    const lo = c.obj(l, p);
    if ("switches" in lo) {
      c.keys(lo, p, ["switches", "comment"]);
      const pr = lo.switches;
      if (!Array.isArray(pr) || pr.length !== 2) {
        c.fail(`${p}.switches`, `expected two switch names, got ${show(pr)}`);
      }
      pr.forEach((s, j) => {
        if (typeof s !== "string" || !(s in switches)) {
          c.fail(`${p}.switches[${j}]`, `no switch ${show(s)} in "switches"`);
        }
      });
      const [a, b] = pr as string[];
      if (a === b) c.fail(`${p}.switches`, `a switch cannot be bridged to itself`);
      const key = [a, b].sort().join(" ");
      if (pairs.has(key)) c.fail(`${p}.switches`, `${a} and ${b} are already bridged`);
      pairs.add(key);
      if (root(a) === root(b)) {
        c.fail(
          `${p}.switches`,
          `bridging ${a} and ${b} closes a loop of switches: frames would circle for ever ` +
            `(the learning bridge has no spanning tree)`,
        );
      }
      parent.set(root(a), root(b));
      return;
    }
    c.keys(lo, p, ["host", "switch", "kind", "ifname", "ip", "ip6", "mtu", "mac", "comment"]);
    if (typeof lo.host !== "string" || !(lo.host in hosts)) {
      c.fail(`${p}.host`, `no host ${show(lo.host)} in "hosts"`);
    }
    if (typeof lo.switch !== "string" || !(lo.switch in switches)) {
      c.fail(`${p}.switch`, `no switch ${show(lo.switch)} in "switches"`);
    }
    if (lo.kind !== undefined && lo.kind !== "veth" && lo.kind !== "tap") {
      c.fail(`${p}.kind`, `expected "veth" or "tap", got ${show(lo.kind)}`);
    }
    if (lo.ifname !== undefined) {
      if (lo.kind === "tap") {
        c.fail(`${p}.ifname`, `a TAP is named like its switch port; ifname is for veth links`);
      }
      if (
        typeof lo.ifname !== "string" || !/^[A-Za-z0-9_.-]{1,15}$/.test(lo.ifname) ||
        lo.ifname === "lo"
      ) {
        c.fail(
          `${p}.ifname`,
          `expected an interface name (1-15 of A-Za-z0-9_.-), got ${show(lo.ifname)}`,
        );
      }
    }
    c.addrs(lo.ip, `${p}.ip`, false);
    c.addrs(lo.ip6, `${p}.ip6`, true);
    c.mtu(lo.mtu, `${p}.mtu`);
    if (lo.mac !== undefined && (typeof lo.mac !== "string" || !MAC_RE.test(lo.mac))) {
      c.fail(`${p}.mac`, `expected a MAC like 02:00:00:00:00:01, got ${show(lo.mac)}`);
    }
    if (typeof lo.mac === "string" && (parseInt(lo.mac.slice(0, 2), 16) & 1)) {
      c.fail(`${p}.mac`, `${lo.mac} is a multicast address`);
    }
    const k = linkCount.get(lo.host as string) ?? 0;
    linkCount.set(lo.host as string, k + 1);
    const port = `${name}-${lo.host}-e${k}`;
    if (port.length > MAX_IFNAME_LENGTH) {
      c.fail(
        `${p}.host`,
        `the switch-side interface would be named '${port}' (${port.length} characters, at ` +
          `most ${MAX_IFNAME_LENGTH}): shorten the host or the topology name`,
      );
    }
  });
  for (const [s, sv] of Object.entries(switches)) {
    const used = links.some((l) =>
      isObj(l) && (l.switch === s || (Array.isArray(l.switches) && l.switches.includes(s)))
    );
    if (!used && (sv as Obj).lookup !== undefined) {
      c.fail(`switches.${s}.lookup`, `switch ${s} has no links: it exists only once a port opens`);
    }
  }
  // interface names inside one host must differ
  const seen = new Map<string, Set<string>>();
  links.forEach((l, i) => {
    const lo = l as Obj;
    if ("switches" in lo) return;
    const plan = planIfName(name, lo as unknown as HostLinkSpec, links as LinkSpec[], i);
    const s = seen.get(lo.host as string) ?? new Set();
    if (s.has(plan)) {
      c.fail(`links[${i}].ifname`, `host ${lo.host} already has an interface ${plan}`);
    }
    s.add(plan);
    seen.set(lo.host as string, s);
  });
  return top as unknown as TopologySpec;
}

// ------------------------------------------------------------ plan

/** A host's interface and the switch port it reaches, with every name. */
export interface PlannedInterface {
  /** Host (logical name). */
  host: string;
  /** Switch (logical name). */
  switch: string;
  /** vale switch name (`valeP_SW`). */
  sw: string;
  /** veth or tap. */
  kind: "veth" | "tap";
  /** The K of `P-HOST-eK`: the host's K-th link. */
  index: number;
  /** Name of the interface inside the host. */
  ifname: string;
  /** Switch port, = the root end of the veth, or the TAP's name. */
  port: string;
  /** MAC of the host's interface. */
  mac: string;
  /** IPv4 CIDRs. */
  ip: string[];
  /** IPv6 CIDRs. */
  ip6: string[];
  /** MTU, if set. */
  mtu?: number;
}

/** A bridge between two switches. */
export interface PlannedBridge {
  /** Logical switch names. */
  a: string;
  /** Logical switch names. */
  b: string;
  /** Full port names: `valeP_A:to-B`, `valeP_B:to-A`. */
  portA: string;
  /** Full port names. */
  portB: string;
}

/** Every name a topology creates. */
export interface Plan {
  /** Topology name (the prefix). */
  name: string;
  /** Switches: logical → vale name, lookup. */
  switches: { name: string; sw: string; lookup?: string; lookupConfig: string[] }[];
  /** Hosts: logical → namespace, routes, interfaces. */
  hosts: { name: string; netns: string; routes: RouteSpec[]; ifs: PlannedInterface[] }[];
  /** Every host interface, in link order. */
  ifs: PlannedInterface[];
  /** Bridges, in link order. */
  bridges: PlannedBridge[];
  /** Static ARP. */
  staticArp: boolean;
}

function planIfName(p: string, l: HostLinkSpec, links: LinkSpec[], i: number): string {
  const k = links.slice(0, i).filter((x) => "host" in x && x.host === l.host).length;
  return l.kind === "tap" ? `${p}-${l.host}-e${k}` : (l.ifname ?? `eth${k}`);
}

/** A small stable hash of the topology name, for MACs. */
function hash16(s: string): number {
  let h = 0x811c9dc5;
  for (const ch of s) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return (h ^ (h >>> 16)) & 0xffff;
}

const hex = (n: number) => n.toString(16).padStart(2, "0");

/** Every name of a (valid) topology. */
export function planTopology(spec: TopologySpec): Plan {
  const P = spec.name;
  const h = hash16(P);
  const hostNames = Object.keys(spec.hosts);
  const ifs: PlannedInterface[] = [];
  const bridges: PlannedBridge[] = [];
  const asList = (
    v: string | string[] | undefined,
  ) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  spec.links.forEach((l, i) => {
    if ("switches" in l) {
      const [a, b] = l.switches;
      bridges.push({ a, b, portA: `vale${P}_${a}:to-${b}`, portB: `vale${P}_${b}:to-${a}` });
      return;
    }
    const hs = spec.hosts[l.host];
    const k = ifs.filter((x) => x.host === l.host).length;
    const kind = l.kind ?? "veth";
    ifs.push({
      host: l.host,
      switch: l.switch,
      sw: `vale${P}_${l.switch}`,
      kind,
      index: k,
      ifname: planIfName(P, l, spec.links, i),
      port: `${P}-${l.host}-e${k}`,
      mac: l.mac?.toLowerCase() ??
        `02:${hex(h >> 8)}:${hex(h & 255)}:00:${hex(hostNames.indexOf(l.host) + 1)}:${hex(k)}`,
      ip: l.ip !== undefined ? asList(l.ip) : k === 0 ? asList(hs.ip) : [],
      ip6: l.ip6 !== undefined ? asList(l.ip6) : k === 0 ? asList(hs.ip6) : [],
      mtu: l.mtu ?? hs.mtu,
    });
  });
  return {
    name: P,
    switches: Object.entries(spec.switches).map(([name, s]) => ({
      name,
      sw: `vale${P}_${name}`,
      lookup: s.lookup,
      lookupConfig: s.lookupConfig ?? [],
    })),
    hosts: hostNames.map((name) => ({
      name,
      netns: `vale-${P}-${name}`,
      routes: spec.hosts[name].routes ?? [],
      ifs: ifs.filter((x) => x.host === name),
    })),
    ifs,
    bridges,
    staticArp: spec.staticArp ?? false,
  };
}
