/**
 * Declaring a topology in TypeScript (or loading it from a JSON file) and
 * bringing it up with one call:
 *
 * ```ts
 * const t = new Topology("demo", { staticArp: true });
 * const s1 = t.addSwitch("s1"), s2 = t.addSwitch("s2");
 * const h1 = t.addHost("h1", { ip: "10.0.0.1/24" });
 * const h2 = t.addHost("h2", { ip: "10.0.0.2/24" });
 * t.addLink(h1, s1);
 * t.addLink(h2, s2, { kind: "tap" });
 * t.addLink(s1, s2); // a bridge
 * await using net = await t.up();
 * console.log((await net.pingAll()).text);
 * ```
 *
 * @module
 */
import { Errno, ValeError } from "../errors.ts";
import { bringUp, tearDown, tearDownByName, type UpOptions } from "./lifecycle.ts";
import { guard, release } from "./signals.ts";
import type { TopologyState } from "./state.ts";
import { Network } from "./network.ts";
import {
  type HostLinkSpec,
  type HostSpec,
  type SwitchSpec,
  TopologyError,
  type TopologySpec,
  validateTopology,
} from "./spec.ts";

/** Options of {@link Topology.up}. */
export interface TopologyUpOptions extends UpOptions {
  /** Tear down on SIGINT/SIGTERM, then exit (default true; only for an owned topology). */
  handleSignals?: boolean;
}

/** A topology being declared. */
export class Topology {
  /** The spec so far (the JSON file's shape). */
  readonly spec: TopologySpec;

  /** An empty topology; `name` prefixes everything it creates (1–8 letters or digits). */
  constructor(name: string, o: { staticArp?: boolean } = {}) {
    this.spec = {
      name,
      switches: {},
      hosts: {},
      links: [],
      ...(o.staticArp ? { staticArp: true } : {}),
    };
  }

  /** A topology from a parsed JSON value or an object of the same shape (validated). */
  static from(value: unknown, source?: string): Topology {
    const spec = validateTopology(value, source);
    const t = new Topology(spec.name);
    (t as { spec: TopologySpec }).spec = spec;
    return t;
  }

  /** A topology from a JSON file; {@link TopologyError} names the file and the bad field. */
  static async load(path: string): Promise<Topology> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new TopologyError("", `cannot read: ${(e as Error).message}`, path);
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new TopologyError("", `not valid JSON: ${(e as Error).message}`, path);
    }
    return Topology.from(v, path);
  }

  /** Declare a switch; returns its name. */
  addSwitch(name: string, o: SwitchSpec = {}): string {
    this.#fresh(name);
    this.spec.switches[name] = { ...o };
    return name;
  }

  /** Declare a host (network namespace); returns its name. */
  addHost(name: string, o: HostSpec = {}): string {
    this.#fresh(name);
    this.spec.hosts[name] = { ...o };
    return name;
  }

  /**
   * Join a host and a switch (either order; options: kind veth|tap, ifname,
   * ip, ip6, mtu, mac), or two switches (a bridge).
   */
  addLink(a: string, b: string, o: Omit<HostLinkSpec, "host" | "switch"> = {}): this {
    const isSw = (x: string) => x in this.spec.switches;
    const isHost = (x: string) => x in this.spec.hosts;
    if (isSw(a) && isSw(b)) this.spec.links.push({ switches: [a, b] });
    else if (isHost(a) && isSw(b)) this.spec.links.push({ host: a, switch: b, ...o });
    else if (isSw(a) && isHost(b)) this.spec.links.push({ host: b, switch: a, ...o });
    else {
      throw new TopologyError(
        `links[${this.spec.links.length}]`,
        `cannot link ${a} and ${b}: a link joins a host and a switch, or two switches`,
      );
    }
    return this;
  }

  #fresh(name: string): void {
    if (name in this.spec.switches || name in this.spec.hosts) {
      throw new ValeError(Errno.EEXIST, `${name} is declared already`);
    }
  }

  /**
   * Validate, then bring everything up (leftovers of a killed run of the
   * same topology are removed first). The returned {@link Network} tears it
   * down with `await using`, `down()`, or on SIGINT/SIGTERM.
   */
  async up(o: TopologyUpOptions = {}): Promise<Network> {
    const spec = validateTopology(this.spec);
    const handle = !o.detached && o.handleSignals !== false;
    // Ctrl-C during the bring-up: stop it at the next step (it tears down
    // what it made), or tear down what it finished
    const ac = new AbortController();
    let pending: Promise<TopologyState> | undefined;
    const early = {
      down: async () => {
        ac.abort(new Error(`bringing ${spec.name} up was interrupted`));
        try {
          await tearDown(await pending!);
        } catch { /* it tore down itself */ }
      },
    };
    if (handle) guard(early);
    try {
      pending = bringUp(spec, {
        ...o,
        signal: o.signal ? AbortSignal.any([o.signal, ac.signal]) : ac.signal,
      });
      const st = await pending;
      return new Network(st, !o.detached, handle);
    } finally {
      if (handle) release(early);
    }
  }

  /** Tear down this topology by its state file (what a killed process left); false if none. */
  async down(o: { runDir?: string } = {}): Promise<boolean> {
    return (await tearDownByName(this.spec.name, o.runDir)) !== null;
  }
}
