/**
 * A running topology: its hosts, switches and ports, traffic helpers a
 * Mininet user expects (pingAll, tcp, pktgen), counters per switch port,
 * waitFor a condition on them, status, and teardown (`await using`, or
 * `down()`; SIGINT/SIGTERM too while it is up).
 *
 * @module
 */
import { listAttachments } from "../attach/attach.ts";
import { Errno, ValeError } from "../errors.ts";
import type { PortCounters } from "../switch/port.ts";
import { type PortInfo, switchInfo } from "../switch/control.ts";
import { Host } from "./host.ts";
import { tearDown } from "./lifecycle.ts";
import { guard, release } from "./signals.ts";
import { type Plan, planTopology } from "./spec.ts";
import { readState, type TopologyState, writeState } from "./state.ts";
import { denoScript, netnsList, procAlive, procRef, sleep } from "./sys.ts";

/** One ping between two hosts. */
export interface PingResult {
  /** Source host. */
  from: string;
  /** Destination host. */
  to: string;
  /** Address pinged. */
  address: string;
  /** Echo requests sent. */
  sent: number;
  /** Replies received. */
  received: number;
  /** Average round trip in ms (undefined without replies). */
  rttMs?: number;
}

/** Every pair pinged. */
export interface PingAllResult {
  /** One entry per ordered pair. */
  results: PingResult[];
  /** Requests sent in all. */
  sent: number;
  /** Replies received in all. */
  received: number;
  /** Lost, in percent. */
  lossPercent: number;
  /** Reachability matrix: `matrix.h1.h2` is true when h1 got a reply from h2. */
  matrix: Record<string, Record<string, boolean>>;
  /** Mininet's report: `h1 -> h2 h3 X` lines and `*** Results: 0% dropped (12/12 received)`. */
  text: string;
}

/** Result of {@link Network.tcp}. */
export interface TcpResult {
  /** Bytes the sender wrote. */
  sent: number;
  /** Bytes the receiver read until the sender closed. */
  received: number;
  /** Offset of the first byte that differed from the pattern, -1 if none. */
  firstBadByte: number;
  /** Seconds from the first to the last byte at the receiver. */
  seconds: number;
  /** Goodput, bit/s. */
  bitsPerSecond: number;
}

/** Result of {@link Network.pktgen}. */
export interface PktGenResult {
  /** Packets pkt-gen reported sent. */
  sent: number;
  /** pkt-gen's output. */
  stdout: string;
  /** pkt-gen's reports. */
  stderr: string;
}

/** Counters of every port of every switch: `snap.s1.h1.rx_packets`; bridge ports by the other switch (`snap.s1.s2`). */
export type CounterSnapshot = Record<string, Record<string, PortCounters>>;

/** What `status()` reports. */
export interface TopologyStatus {
  /** Topology name. */
  name: string;
  /** up, starting, or stale (its owner died: `down` or the next `up` removes it). */
  state: "up" | "starting" | "stale";
  /** Owner process, 0 if detached. */
  owner: number;
  /** Run directory. */
  runDir: string;
  /** Hosts: namespace present, interfaces. */
  hosts: { name: string; netns: string; present: boolean; interfaces: Host["interfaces"] }[];
  /** Host links with their forwarder's state. */
  links: {
    host: string;
    ifname: string;
    switch: string;
    port: string;
    kind: string;
    forwarder: string;
    pid: number;
  }[];
  /** Bridges: ports and process. */
  bridges: { a: string; b: string; pid: number; running: boolean }[];
  /** Switches: vale name, lookup, ports with counters. */
  switches: { name: string; sw: string; lookup: string; ports: PortInfo[] }[];
}

const PATTERN = `const pat = (i) => (i * 7 + Math.floor(i / 8192)) & 255;`;

/** A running topology. */
export class Network implements AsyncDisposable {
  /** Topology name (the prefix of its names). */
  readonly name: string;
  /** Run directory of its switches. */
  readonly runDir: string;
  /** Every name it created. */
  readonly plan: Plan;
  /** Hosts by name. */
  readonly hosts: Map<string, Host>;
  /** This process owns it: disposing tears it down. */
  readonly owned: boolean;
  #st: TopologyState;
  #down: Promise<string[]> | null = null;
  #portCache = new Map<string, number>();

  /** @internal use Topology.up() or openTopology(). */
  constructor(st: TopologyState, owned: boolean, handleSignals = true) {
    this.#st = st;
    this.name = st.name;
    this.runDir = st.runDir;
    this.owned = owned;
    this.plan = planTopology(st.spec);
    this.hosts = new Map(
      this.plan.hosts.map((
        h,
      ) => [h.name, new Host(h.name, h.netns, h.ifs, (pid) => this.#spawned(pid))]),
    );
    if (owned && handleSignals) guard(this);
  }

  #spawned(pid: number): void {
    if (!this.owned || this.#down) return;
    this.#st.procs = this.#st.procs.filter(procAlive);
    this.#st.procs.push(procRef(pid));
    writeState(this.#st);
  }

  /** The host called `name` (throws if there is none). */
  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new ValeError(Errno.ENOENT, `topology ${this.name} has no host ${name}`);
    return h;
  }

  /** The vale name of switch `name` (`valeP_s1`), to open ports on it. */
  switchName(name: string): string {
    const s = this.plan.switches.find((x) => x.name === name);
    if (!s) throw new ValeError(Errno.ENOENT, `topology ${this.name} has no switch ${name}`);
    return s.sw;
  }

  /**
   * The full name of the port of switch `sw` that leads to `peer` (a host:
   * its first link to `sw`, or `host.K` for its K-th link; or a switch: the
   * bridge port).
   */
  portName(sw: string, peer: string): string {
    const s = this.switchName(sw);
    const [h, k] = peer.split(".");
    const i = this.plan.ifs.find((x) =>
      x.switch === sw && x.host === h && (k === undefined || x.index === Number(k))
    );
    if (i) return `${s}:${i.port}`;
    const b = this.plan.bridges.find((x) =>
      (x.a === sw && x.b === peer) || (x.b === sw && x.a === peer)
    );
    if (b) return b.a === sw ? b.portA : b.portB;
    throw new ValeError(
      Errno.ENOENT,
      `switch ${sw} of topology ${this.name} has no port to ${peer}`,
    );
  }

  /** Counters of the port of switch `sw` leading to `peer` (see {@link portName}). */
  counters(sw: string, peer: string): PortCounters {
    const full = this.portName(sw, peer);
    const [s, p] = full.split(":");
    const port = switchInfo(s, { runDir: this.runDir }).ports.find((x) => x.name === p);
    if (!port) throw new ValeError(Errno.ENOENT, `no port ${full} (is the topology up?)`);
    return port.counters;
  }

  /** Counters of every port: `snap.s1.h1`, `snap.s1.s2` (a bridge port), `snap.s1["h1.1"]` (a second link). */
  snapshot(): CounterSnapshot {
    const out: CounterSnapshot = {};
    for (const s of this.plan.switches) {
      const ports = new Map<string, PortInfo>();
      try {
        for (const p of switchInfo(s.sw, { runDir: this.runDir }).ports) ports.set(p.name, p);
      } catch { /* no switch (yet) */ }
      const row: Record<string, PortCounters> = {};
      for (const i of this.plan.ifs.filter((x) => x.switch === s.name)) {
        const key = this.plan.ifs.some((x) =>
            x.switch === s.name && x.host === i.host && x.index < i.index
          )
          ? `${i.host}.${i.index}`
          : i.host;
        const p = ports.get(i.port);
        if (p) row[key] = p.counters;
      }
      for (const b of this.plan.bridges) {
        const mine = b.a === s.name ? b.portA : b.b === s.name ? b.portB : null;
        if (!mine) continue;
        const p = ports.get(mine.split(":")[1]);
        if (p) row[b.a === s.name ? b.b : b.a] = p.counters;
      }
      out[s.name] = row;
    }
    return out;
  }

  /**
   * Wait until `cond(snapshot)` holds (polled every `intervalMs`, default 50);
   * resolves with that snapshot, throws ETIMEDOUT after `timeoutMs` (default
   * 10 s) naming `what` and showing the last snapshot's packet counts.
   */
  async waitFor(
    cond: (snap: CounterSnapshot) => boolean,
    o: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
  ): Promise<CounterSnapshot> {
    const end = Date.now() + (o.timeoutMs ?? 10000);
    for (;;) {
      const snap = this.snapshot();
      if (cond(snap)) return snap;
      if (Date.now() > end) {
        const brief = Object.entries(snap).map(([s, ports]) =>
          `${s}: ` +
          Object.entries(ports).map(([p, c]) => `${p} tx ${c.tx_packets} rx ${c.rx_packets}`).join(
            ", ",
          )
        ).join("; ");
        throw new ValeError(
          Errno.ETIMEDOUT,
          `timed out after ${o.timeoutMs ?? 10000} ms waiting for ${
            o.what ?? "a counter condition"
          } (${brief})`,
        );
      }
      await sleep(o.intervalMs ?? 50);
    }
  }

  /** Ping `to` from `from` (`count` echo requests, 0.2 s apart, 1 s timeout each). */
  async ping(
    from: string,
    to: string,
    o: { count?: number; family?: 4 | 6; timeoutS?: number } = {},
  ): Promise<PingResult> {
    const a = this.host(from), b = this.host(to);
    const address = o.family === 6 ? b.ip6 : b.ip ?? b.ip6;
    if (!address) {
      throw new ValeError(
        Errno.EINVAL,
        `host ${to} has no ${o.family === 6 ? "IPv6 " : ""}address`,
      );
    }
    const count = o.count ?? 1;
    const r = await a.run([
      "ping",
      "-n",
      "-q",
      "-c",
      String(count),
      "-i",
      "0.2",
      "-W",
      String(o.timeoutS ?? 1),
      address,
    ], { timeoutMs: count * 200 + (o.timeoutS ?? 1) * 1000 + 10000 });
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
    if (!m) {
      throw new ValeError(
        Errno.EINVAL,
        `ping from ${from} to ${to}: ${(r.stderr || r.stdout).trim()}`,
      );
    }
    return {
      from,
      to,
      address,
      sent: Number(m[1]),
      received: Number(m[2]),
      rttMs: rtt ? Number(rtt[1]) : undefined,
    };
  }

  /** Ping every ordered pair of hosts (sources in parallel), Mininet's `pingall`. */
  async pingAll(o: { count?: number; family?: 4 | 6 } = {}): Promise<PingAllResult> {
    const names = [...this.hosts.keys()];
    const rows = await Promise.all(names.map(async (a) => {
      const out: PingResult[] = [];
      for (const b of names) if (b !== a) out.push(await this.ping(a, b, o));
      return out;
    }));
    const results = rows.flat();
    const sent = results.reduce((s, r) => s + r.sent, 0);
    const received = results.reduce((s, r) => s + r.received, 0);
    const matrix: Record<string, Record<string, boolean>> = {};
    for (const r of results) (matrix[r.from] ??= {})[r.to] = r.received > 0;
    const lossPercent = sent ? Math.round(((sent - received) / sent) * 1000) / 10 : 0;
    const text =
      names.map((a) =>
        `${a} -> ${names.filter((b) => b !== a).map((b) => (matrix[a][b] ? b : "X")).join(" ")}`
      ).join("\n") + `\n*** Results: ${lossPercent}% dropped (${received}/${sent} received)\n`;
    return { results, sent, received, lossPercent, matrix, text };
  }

  /**
   * Move exactly `bytes` over one TCP connection from host `from` to host
   * `to` (a small Deno sender and receiver, the stream a fixed pattern the
   * receiver checks); resolves with what the receiver counted.
   */
  async tcp(
    from: string,
    to: string,
    o: { bytes: number; port?: number; timeoutMs?: number },
  ): Promise<TcpResult> {
    const a = this.host(from), b = this.host(to);
    const dst = b.ip ?? b.ip6;
    if (!dst) throw new ValeError(Errno.EINVAL, `host ${to} has no address`);
    if (!Number.isSafeInteger(o.bytes) || o.bytes < 0) {
      throw new ValeError(Errno.EINVAL, `tcp: bytes must be a non-negative integer`);
    }
    const port = o.port ?? 5201;
    const ms = o.timeoutMs ?? 60000;
    const deno = Deno.execPath();
    const sink = b.spawn([
      deno,
      "eval",
      "--no-config",
      `${PATTERN}
      const l = Deno.listen({ hostname: ${JSON.stringify(dst)}, port: ${port} });
      console.log("listening");
      const c = await l.accept();
      const buf = new Uint8Array(1 << 20);
      let n = 0, bad = -1, t0 = 0;
      for (;;) {
        const k = await c.read(buf);
        if (k === null) break;
        if (!t0) t0 = performance.now();
        if (bad < 0) for (let i = 0; i < k; i++) if (buf[i] !== pat(n + i)) { bad = n + i; break; }
        n += k;
      }
      console.log(JSON.stringify({ n, bad, ms: t0 ? performance.now() - t0 : 0 }));`,
    ]);
    const timer = setTimeout(() => {
      try {
        sink.kill("SIGKILL");
      } catch { /* ended */ }
    }, ms);
    try {
      const reader = sink.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let outText = "";
      while (!outText.includes("listening\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        outText += value;
      }
      if (!outText.includes("listening\n")) {
        const e = await new Response(sink.stderr).text();
        throw new ValeError(Errno.EINVAL, `tcp: the receiver in ${to} did not start: ${e.trim()}`);
      }
      const src = await a.run([
        deno,
        "eval",
        "--no-config",
        `${PATTERN}
        const c = await Deno.connect({ hostname: ${JSON.stringify(dst)}, port: ${port} });
        const total = ${o.bytes};
        const buf = new Uint8Array(1 << 20);
        let off = 0;
        while (off < total) {
          const k = Math.min(buf.length, total - off);
          for (let i = 0; i < k; i++) buf[i] = pat(off + i);
          let w = 0;
          while (w < k) w += await c.write(buf.subarray(w, k));
          off += k;
        }
        c.close();
        console.log(JSON.stringify({ sent: off }));`,
      ], { timeoutMs: ms });
      if (!src.success) {
        throw new ValeError(
          Errno.EINVAL,
          `tcp: the sender in ${from} failed: ${src.stderr.trim()}`,
        );
      }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        outText += value;
      }
      await sink.status;
      const line = outText.trim().split("\n").pop() ?? "";
      let res: { n: number; bad: number; ms: number };
      try {
        res = JSON.parse(line);
      } catch {
        throw new ValeError(Errno.EINVAL, `tcp: the receiver in ${to} reported nothing (${line})`);
      }
      const sent = JSON.parse(src.stdout.trim().split("\n").pop()!).sent as number;
      const seconds = res.ms / 1000;
      return {
        sent,
        received: res.n,
        firstBadByte: res.bad,
        seconds,
        bitsPerSecond: seconds > 0 ? (res.n * 8) / seconds : 0,
      };
    } finally {
      clearTimeout(timer);
      try {
        sink.kill("SIGKILL");
      } catch { /* ended */ }
      await sink.status.catch(() => {});
      if (!sink.stderr.locked) await sink.stderr.cancel().catch(() => {});
    }
  }

  /**
   * Send `count` UDP frames of `size` bytes with vale's pkt-gen from host
   * `from`'s interface (AF_PACKET) to host `to`'s MAC. The IP destination is
   * 192.0.2.1 (a documentation address no host has) unless given, so the
   * receiving stack drops them silently and no reply disturbs the counters.
   */
  async pktgen(
    from: string,
    to: string,
    o: { count: number; size?: number; rate?: number; dstIp?: string; timeoutMs?: number },
  ): Promise<PktGenResult> {
    const a = this.host(from), b = this.host(to);
    const ai = a.interfaces[0], bi = b.interfaces[0];
    if (!ai || !bi) {
      throw new ValeError(Errno.EINVAL, `pktgen: ${from} and ${to} need an interface each`);
    }
    const args = [
      "-i",
      `packet:${ai.name}`,
      "-f",
      "tx",
      "-w",
      "0",
      "-n",
      String(o.count),
      "-l",
      String(o.size ?? 60),
      "-S",
      ai.mac,
      "-D",
      bi.mac,
      "-s",
      a.ip ?? "10.0.0.1",
      "-d",
      o.dstIp ?? "192.0.2.1",
      ...(o.rate ? ["-R", String(o.rate)] : []),
    ];
    const c = denoScript("../../cli/pkt-gen.ts", args);
    const r = await a.run([c.cmd, ...c.args], {
      env: { VALE_RUN_DIR: this.runDir },
      timeoutMs: o.timeoutMs ?? 60000,
    });
    const m = /Sent (\d+) packets/.exec(r.stdout);
    if (!r.success || !m) {
      throw new ValeError(
        Errno.EINVAL,
        `pkt-gen in ${from}: ${(r.stderr || r.stdout).trim().slice(-500)}`,
      );
    }
    return { sent: Number(m[1]), stdout: r.stdout, stderr: r.stderr };
  }

  /** Hosts, links, bridges and switch ports with counters, as `vale topo status` shows them. */
  async status(): Promise<TopologyStatus> {
    const st = readState(this.name, this.runDir) ?? this.#st;
    const nss = await netnsList();
    const atts = listAttachments(undefined, { runDir: this.runDir });
    const state: TopologyStatus["state"] = !st.complete
      ? (procAlive(st.owner) ? "starting" : "stale")
      : st.owner && !procAlive(st.owner)
      ? "stale"
      : "up";
    return {
      name: this.name,
      state,
      owner: st.owner?.pid ?? 0,
      runDir: this.runDir,
      hosts: [...this.hosts.values()].map((h) => ({
        name: h.name,
        netns: h.netns,
        present: nss.includes(h.netns),
        interfaces: h.interfaces,
      })),
      links: this.plan.ifs.map((i) => {
        const a = atts.find((x) => x.switch === i.sw && x.port === i.port);
        return {
          host: i.host,
          ifname: i.ifname,
          switch: i.switch,
          port: `${i.sw}:${i.port}`,
          kind: i.kind,
          forwarder: a ? `${a.status}${a.method ? ` ${a.method}` : ""}` : "none",
          pid: a?.pid ?? 0,
        };
      }),
      bridges: this.plan.bridges.map((b, n) => ({
        a: b.portA,
        b: b.portB,
        pid: st.bridges[n]?.pid ?? 0,
        running: procAlive(st.bridges[n]),
      })),
      switches: this.plan.switches.map((s) => {
        try {
          const info = switchInfo(s.sw, { runDir: this.runDir });
          return { name: s.name, sw: s.sw, lookup: info.lookup, ports: info.ports };
        } catch {
          return { name: s.name, sw: s.sw, lookup: "-", ports: [] };
        }
      }),
    };
  }

  /**
   * Tear the topology down (idempotent): processes in the hosts, bridges,
   * forwarders, interfaces, namespaces, switches, the state file. Resolves
   * with what was removed; rejects (EBUSY, naming it) when something could
   * not be removed — a port someone else holds on one of its switches — and
   * keeps the record, so a later `down()` (or `vale topo down`) finishes.
   */
  down(): Promise<string[]> {
    this.#down ??= (async () => {
      try {
        const removed = await tearDown(readState(this.name, this.runDir) ?? this.#st);
        release(this);
        return removed;
      } catch (e) {
        this.#down = null; // something could not be removed (and stays recorded): down() may retry
        throw e;
      }
    })();
    return this.#down;
  }

  /** `await using net = await topo.up()`: tears it down when this process owns it. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.owned) await this.down();
  }
}

/**
 * A topology that is up (brought up by `vale topo up` or another process),
 * to run commands in its hosts and read its counters. Disposing it leaves
 * the topology up; `down()` tears it down.
 */
export function openTopology(name: string, o: { runDir?: string } = {}): Network {
  const st = readState(name, o.runDir);
  if (!st) throw new ValeError(Errno.ENOENT, `no topology ${name} is up (no state file)`);
  return new Network(st, false, false);
}
