// Helpers of the vale rows beyond "vale switch" (bench/vale_pipe.ts,
// vale_scaling.ts, vale_fanout.ts, vale_latency.ts): the C probe
// (bench/c/vale_probe.c, built on demand against build/libvale.so), private
// run directories in /dev/shm, the switch's own counters, precise per-process
// CPU time, and one measurement of a topology of pkt-gen senders and
// receivers with exact accounting (sent = received + counted drops).

import { buildLibrary } from "../scripts/build.ts";
import { type Child, CpuWindow, isAlive, processTree, sleep } from "./proc.ts";
import { pktGenCommand } from "./vale_rows.ts";
import { deadlineMs, spawn } from "./peers/common.ts";
import type { RowContext } from "./rows.ts";
import type { Metric, MetricMeasurement } from "./report.ts";

/** The switch every vale row uses (in its own private run directory). */
export const SW = "vale0";

// ------------------------------------------------------------------ the probe

let built: Promise<string> | undefined;

function mtime(p: string): number {
  try {
    return Deno.statSync(p).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Builds build/libvale.so if needed and compiles bench/c/vale_probe.c into
 * `<binDir>/vale_probe` when it is older than its source or the library.
 */
export function buildProbe(ctx: RowContext): Promise<string> {
  built ??= (async () => {
    const lib = await buildLibrary({ quiet: true });
    const src = `${ctx.root}/bench/c/vale_probe.c`;
    const bin = `${ctx.binDir}/vale_probe`;
    const hdr = `${ctx.root}/c-src/include/vale.h`;
    if (mtime(bin) >= Math.max(mtime(src), mtime(lib), mtime(hdr))) return bin;
    Deno.mkdirSync(ctx.binDir, { recursive: true });
    const cc = Deno.env.get("CC") ?? "cc";
    const libDir = lib.slice(0, lib.lastIndexOf("/"));
    const tmp = `${bin}.tmp.${Deno.pid}`;
    const args = [
      "-std=gnu11",
      "-O2",
      "-march=native",
      "-g",
      "-Wall",
      "-Wextra",
      "-o",
      tmp,
      src,
      `-L${libDir}`,
      "-lvale",
      `-Wl,-rpath,${libDir}`,
    ];
    const r = await new Deno.Command(cc, { args, stdout: "piped", stderr: "piped" }).output();
    if (!r.success) {
      try {
        Deno.removeSync(tmp);
      } catch { /* not written */ }
      throw new Error(
        `build of bench/c/vale_probe.c failed: ${new TextDecoder().decode(r.stderr).trim()}`,
      );
    }
    Deno.renameSync(tmp, bin);
    return bin;
  })();
  built.catch(() => (built = undefined));
  return built;
}

/** Whether the vale rows can run: pkt-gen, two CPUs, the probe builds. */
export async function valeAvailable(ctx: RowContext): Promise<true | string> {
  const stale = removeStaleShm();
  if (stale.length) ctx.log(`removed leftovers of earlier runs: ${stale.join(", ")}`);
  if (!pktGenCommand(ctx.root)) return "no pkt-gen (bin/pkt-gen, cli/pkt-gen.ts or $VALE_PKTGEN)";
  if (ctx.cpus < 2) return "needs two CPUs";
  await buildProbe(ctx);
  return true;
}

// --------------------------------------------------------- private run dirs

const SHM = "/dev/shm";

/**
 * Run directories live in /dev/shm (tmpfs, as vale's default /dev/shm/vale):
 * on a disk file system the rings would be written back to the disk. Named
 * `vbench-<pid>-vale-…`; removed by the row's cleanup, and by the next run
 * (removeStaleShm) if this one was killed.
 */
export function privateRunDir(ctx: RowContext, label: string): string {
  let dir: string;
  try {
    dir = Deno.makeTempDirSync({ dir: SHM, prefix: `${ctx.prefix}vale-${label}-` });
  } catch {
    dir = Deno.makeTempDirSync({ dir: ctx.tmpDir, prefix: `vale-${label}-` });
  }
  ctx.cleanup.add(`remove ${dir}`, () => Deno.removeSync(dir, { recursive: true }));
  return dir;
}

/** Removes /dev/shm/vbench-<pid>-* of runs that no longer exist (cleanup.ts covers $TMPDIR). */
export function removeStaleShm(): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(SHM)].map((e) => e.name);
  } catch { /* no /dev/shm */ }
  for (const n of names) {
    const m = n.match(/^vbench-(\d+)-/);
    if (!m || Number(m[1]) === Deno.pid || isAlive(Number(m[1]))) continue;
    try {
      Deno.removeSync(`${SHM}/${n}`, { recursive: true });
      removed.push(`${SHM}/${n}`);
    } catch { /* not ours after all */ }
  }
  return removed;
}

// ------------------------------------------------------------ switch counters

export interface PortCounters {
  index: number;
  tx: number;
  rx: number;
  txBytes: number;
  rxBytes: number;
  ringFull: number;
  badSlot: number;
  noDest: number;
  lookup: number;
}

export interface SwitchSnapshot {
  /** CLOCK_MONOTONIC of the snapshot, ns. */
  tNs: number;
  ports: Map<string, PortCounters>;
  macs: { mac: string; port: number }[];
}

/**
 * The switch's counters now, read straight from its control segment
 * (`vale_probe counters`: no lock, no reaping, microseconds, so the window's
 * edges do not disturb what is measured).
 */
export async function switchCounters(
  probe: string,
  env: Record<string, string>,
): Promise<SwitchSnapshot> {
  const out = await new Deno.Command(probe, {
    args: ["counters", SW],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`vale_probe counters: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const tNs = Number(lines[0].replace("t_ns=", ""));
  const ports = new Map<string, PortCounters>();
  for (const l of lines.slice(1)) {
    const f = l.split(" ");
    if (f[0] !== "port") continue;
    const n = f.slice(3).map(Number);
    ports.set(f[2], {
      index: Number(f[1]),
      tx: n[0],
      rx: n[1],
      txBytes: n[2],
      rxBytes: n[3],
      ringFull: n[4],
      badSlot: n[5],
      noDest: n[6],
      lookup: n[7],
    });
  }
  return { tNs, ports, macs: [] };
}

/** The switch's counters and MAC table (`vale_probe stats`: vale_switch_json plus a timestamp). */
export async function switchStats(
  probe: string,
  env: Record<string, string>,
): Promise<SwitchSnapshot> {
  const out = await new Deno.Command(probe, {
    args: ["stats", SW],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`vale_probe stats: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const nl = text.indexOf("\n");
  const tNs = Number(text.slice(0, nl).replace("t_ns=", ""));
  // deno-lint-ignore no-explicit-any
  const j = JSON.parse(text.slice(nl + 1)) as any;
  const ports = new Map<string, PortCounters>();
  for (const p of j.ports) {
    const c = p.counters;
    ports.set(p.name, {
      index: p.index,
      tx: c.tx_packets,
      rx: c.rx_packets,
      txBytes: c.tx_bytes,
      rxBytes: c.rx_bytes,
      ringFull: c.drops.ring_full,
      badSlot: c.drops.bad_slot,
      noDest: c.drops.no_dest,
      lookup: c.drops.lookup,
    });
  }
  return { tNs, ports, macs: j.macs ?? [] };
}

function port(s: SwitchSnapshot, name: string): PortCounters {
  const p = s.ports.get(name);
  if (!p) throw new Error(`port ${SW}:${name} is not on the switch`);
  return p;
}

// ------------------------------------------------------------ precise CPU time

/** CPU time (ns) of a process tree so far: every thread's /proc/…/schedstat run time. */
export function cpuNs(pid: number): number {
  let ns = 0;
  for (const p of processTree(pid)) {
    try {
      for (const t of Deno.readDirSync(`/proc/${p}/task`)) {
        try {
          ns += Number(Deno.readTextFileSync(`/proc/${p}/task/${t.name}/schedstat`).split(" ")[0]);
        } catch { /* thread gone */ }
      }
    } catch { /* process gone */ }
  }
  return ns;
}

// ------------------------------------------------------------------ topology

/** One pkt-gen of a topology. */
export interface Endpoint {
  /** Port name on vale0 (pipes: `p{1`, `p}1`). */
  port: string;
  /** CPU it is pinned to (taskset). */
  cpu: number;
  /** Receivers: announce this MAC from the port before the senders start (learning). */
  mac?: string;
  /** Extra pkt-gen arguments (senders: -D/-S). */
  args?: string[];
}

export interface Topology {
  /** A label for the run directory. */
  label: string;
  /** Idle ports that exist besides the senders and receivers (held by vale_probe hold). */
  idlePorts?: number;
  senders: Endpoint[];
  receivers: Endpoint[];
  /** Deliveries per frame sent: 1 for unicast and pipes, the receivers for broadcast. */
  fanout: number;
  /**
   * Hold the senders' and receivers' ports in vale_probe too, so their counters
   * outlive pkt-gen (exact accounting at the end). Not for pipes.
   */
  holdEndpoints?: boolean;
}

/** What measureTopology found, besides the Measurement. */
export interface TopologyResult {
  m: MetricMeasurement;
  /** Frames per second delivered to each receiver in the window. */
  perRx: number[];
  /** Frames per second each sender put into the switch in the window. */
  perTx: number[];
  /** CPU each receiver used in the window, in cores (1 = busy all the time). */
  rxCpu: number[];
  /** Ring-full drops per second in the window (all receivers). */
  dropRate: number;
  /** Frames delivered in the window to ports that are neither senders nor receivers (flooding). */
  idleRx: number;
  /** Σ sent × fanout − Σ received − counted drops over the whole run (0 = exact). */
  unaccounted: number;
  /** The same, the pieces (for the notes). */
  sent: number;
  received: number;
  dropped: number;
}

function parseSummary(c: Child, what: "Sent" | "Received"): number | undefined {
  for (let i = c.lines.length - 1; i >= 0; i--) {
    const m = c.lines[i].match(new RegExp(`^${what} (\\d+) packets`));
    if (m) return Number(m[1]);
    if (c.lines[i].startsWith(`${what} nothing`)) return 0;
  }
  return undefined;
}

/**
 * One bounded measurement of a topology: idle ports, receivers (pkt-gen -f rx),
 * MAC announcements, senders (pkt-gen -f tx -l SIZE), warm-up, a window of
 * `seconds` read from the switch's own counters, then the senders are stopped,
 * the receivers drain, and everything sent is checked against what was
 * received plus the drops the switch counted.
 */
export async function measureTopology(
  size: number,
  seconds: number,
  ctx: RowContext,
  topo: Topology,
): Promise<TopologyResult> {
  const probe = await buildProbe(ctx);
  const pg = pktGenCommand(ctx.root)!;
  const runDir = privateRunDir(ctx, topo.label);
  const env = { VALE_RUN_DIR: runDir };
  const children: Child[] = [];
  const names = [...topo.senders, ...topo.receivers].map((e) => e.port);
  const exact = !!topo.holdEndpoints;
  try {
    if ((topo.idlePorts ?? 0) > 0 || exact) {
      const holder = spawn(ctx, "vale_probe hold", [
        probe,
        "hold",
        SW,
        String(topo.idlePorts ?? 0),
        ...(exact ? names : []),
      ], env);
      children.push(holder);
      const m = await holder.waitLine(/^ready ports=(\d+) ms=([\d.]+)/, 120_000, true);
      ctx.log(`  ${topo.label}: ${m[1]} ports held, opened in ${Number(m[2]).toFixed(0)} ms`);
    }
    const rxs = topo.receivers.map((e) => {
      const c = spawn(ctx, `pkt-gen rx ${e.port}`, [
        "taskset",
        "-c",
        String(e.cpu),
        ...pg,
        "-i",
        `${SW}:${e.port}`,
        "-f",
        "rx",
        ...(e.args ?? []),
      ], env);
      children.push(c);
      return c;
    });
    await Promise.all(rxs.map((c) => c.waitLine(/^Receiving from/, 20_000)));
    for (const e of topo.receivers) {
      if (!e.mac) continue;
      const r = await new Deno.Command(probe, {
        args: ["announce", `${SW}:${e.port}`, e.mac],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!r.success) throw new Error(`announce: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
    const txs = topo.senders.map((e) => {
      const c = spawn(ctx, `pkt-gen tx ${e.port}`, [
        "taskset",
        "-c",
        String(e.cpu),
        ...pg,
        "-i",
        `${SW}:${e.port}`,
        "-f",
        "tx",
        "-l",
        String(size),
        ...(e.args ?? []),
      ], env);
      children.push(c);
      return c;
    });
    await Promise.all(txs.map((c) => c.waitLine(/^Sending on/, 20_000)));
    const failed = () => children.find((c) => c.exited);
    // warm-up: at least a second after the senders started (Deno start-up, first faults)
    await sleep(Math.max(1, ctx.warmup) * 1000 + 500);
    if (failed()) throw new Error(`${failed()!.label} exited${failed()!.tail()}`);

    // the announced MACs must be learned on their ports: the traffic is unicast
    if (topo.receivers.some((e) => e.mac)) {
      const st = await switchStats(probe, env);
      for (const e of topo.receivers) {
        const mac = e.mac?.toLowerCase();
        if (!mac) continue;
        const learned = st.macs.find((x) => x.mac === mac);
        if (learned?.port !== st.ports.get(e.port)?.index) {
          throw new Error(
            `${e.mac} is not learned on ${SW}:${e.port} (${JSON.stringify(learned)})`,
          );
        }
      }
    }
    const pids = children.map((c) => c.pid);
    const win = new CpuWindow();
    const a = await switchCounters(probe, env);
    win.open(pids);
    const rx0 = rxs.map((c) => cpuNs(c.pid)), t0 = performance.now();
    await sleep(seconds * 1000);
    const rxCpu = rxs.map((c, i) => (cpuNs(c.pid) - rx0[i]) / 1e6 / (performance.now() - t0));
    const w = win.close();
    const b = await switchCounters(probe, env);
    if (failed()) throw new Error(`${failed()!.label} exited${failed()!.tail()}`);
    const secs = (b.tNs - a.tNs) / 1e9;
    const d = (name: string, k: keyof PortCounters) => port(b, name)[k] - port(a, name)[k];
    const perRx = topo.receivers.map((e) => d(e.port, "rx") / secs);
    const perTx = topo.senders.map((e) => d(e.port, "tx") / secs);
    const rxFrames = topo.receivers.reduce((s, e) => s + d(e.port, "rx"), 0);
    const rxBytes = topo.receivers.reduce((s, e) => s + d(e.port, "rxBytes"), 0);
    const drops = topo.receivers.reduce((s, e) => s + d(e.port, "ringFull"), 0);
    let idleRx = 0;
    for (const [name, p] of b.ports) {
      if (!names.includes(name)) {
        idleRx += p.rx + p.ringFull - (a.ports.get(name)?.rx ?? 0) -
          (a.ports.get(name)?.ringFull ?? 0);
      }
    }

    // the end: senders flush and exit, receivers drain, then the books are closed
    await Promise.all(txs.map((c) => c.stop("SIGINT", 5000)));
    await sleep(300);
    const end = exact ? await switchCounters(probe, env) : undefined;
    await Promise.all(rxs.map((c) => c.stop("SIGINT", 5000)));
    const sent = txs.reduce((s, c) => s + (parseSummary(c, "Sent") ?? NaN), 0);
    const received = rxs.reduce((s, c) => s + (parseSummary(c, "Received") ?? NaN), 0);
    let dropped = 0;
    const notes = [`pkt-gen: ${pg.join(" ")}`, `run dir ${runDir}`];
    if (end) {
      for (const e of topo.receivers) {
        const p = port(end, e.port);
        dropped += p.ringFull + p.badSlot;
        const r = parseSummary(rxs[topo.receivers.indexOf(e)], "Received");
        if (p.rx !== r) notes.push(`${e.port}: switch delivered ${p.rx}, pkt-gen received ${r}`);
      }
      for (const e of topo.senders) {
        const p = port(end, e.port);
        dropped += p.noDest + p.lookup + p.badSlot;
        const s = parseSummary(txs[topo.senders.indexOf(e)], "Sent");
        if (p.tx !== s) notes.push(`${e.port}: pkt-gen sent ${s}, switch forwarded ${p.tx}`);
      }
    }
    const unaccounted = sent * topo.fanout - received - dropped;
    notes.push(
      `whole run: sent ${sent} × ${topo.fanout}, received ${received}, counted drops ${dropped}` +
        (end ? `, unaccounted ${unaccounted}` : " (drops not read: pipes have none)"),
    );
    return {
      m: {
        pps: rxFrames / secs,
        bps: (rxBytes * 8) / secs,
        cpu: w.cpu,
        machineCpu: w.machineCpu,
        otherCpu: w.otherCpu,
        secs,
        frames: rxFrames,
        drops,
        notes,
      },
      perRx,
      perTx,
      rxCpu,
      dropRate: drops / secs,
      idleRx,
      unaccounted,
      sent,
      received,
      dropped,
    };
  } finally {
    for (const c of [...children].reverse()) await c.stop("SIGINT", 3000);
  }
}

/** Ring-full drops in the window as a share of the deliveries attempted (sent × fanout). */
export function dropShareMetric(r: TopologyResult, fanout: number): Metric {
  const offered = r.perTx.reduce((a, b) => a + b, 0) * fanout;
  return {
    name: "ring-full drops (window)",
    value: offered > 0 ? r.dropRate / offered : 0,
    unit: "%",
  };
}

/** The "unaccounted frames" metric (bar: exactly 0). */
export function unaccountedMetric(r: TopologyResult): Metric {
  return {
    name: "unaccounted frames (whole run)",
    value: r.unaccounted,
    unit: "n",
    bar: { op: "=", value: 0 },
  };
}

/** Waits for a child's `result k=v …` line (stdout). */
export async function resultLine(
  c: Child,
  timeoutMs: number,
): Promise<Record<string, number>> {
  const m = await c.waitLine(/^result .*$/, timeoutMs, true);
  const out: Record<string, number> = {};
  for (const kv of m[0].slice(7).trim().split(/\s+/)) {
    const [k, v] = kv.split("=");
    if (k && v !== undefined && !Number.isNaN(Number(v))) out[k] = Number(v);
  }
  return out;
}

export { deadlineMs };
