// Helpers shared by the peer rows: tracked children, the start/result
// protocol of the programs in bench/c, and the namespaces/veths of the Linux rows.

import { Child, CpuWindow, run, sleep, which } from "../proc.ts";
import { type Measurement, parseResultLine, type RowContext } from "../rows.ts";

/** Spawns a child whose process tree is killed by the row's cleanup if still running. */
export function spawn(
  ctx: RowContext,
  label: string,
  cmd: string[],
  env?: Record<string, string>,
): Child {
  if (ctx.verbose) ctx.log(`  $ ${cmd.join(" ")}`);
  // VBENCH_OWNER lets the next run find (and stop) this child if the runner is SIGKILLed.
  const c = new Child(label, cmd, { env: { ...env, VBENCH_OWNER: ctx.prefix } });
  const undo = ctx.cleanup.add(`stop ${label} (pid ${c.pid})`, () => c.stop("SIGTERM", 1500));
  c.status.then(() => undo());
  if (ctx.verbose) c.onLine((l) => ctx.log(`  ${label}: ${l}`));
  return c;
}

/** Milliseconds a row may take beyond warm-up + window before it is declared hung. */
export function deadlineMs(seconds: number, ctx: RowContext, extra = 15): number {
  return (ctx.warmup + seconds + extra) * 1000;
}

/**
 * Measures with a program of bench/c as the receiver: it prints `start` when
 * its window opens and `result pkts= bytes= secs= …` when it closes; the CPU
 * window spans the same interval over `pids` (receiver, sender, …).
 */
export async function measureStartResult(
  receiver: Child,
  pids: number[],
  seconds: number,
  ctx: RowContext,
): Promise<Measurement> {
  const win = new CpuWindow();
  const result = receiver.waitLine(/^result .*$/, deadlineMs(seconds, ctx), true);
  result.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
  await receiver.waitLine(/^start$/, deadlineMs(0, ctx), true);
  win.open(pids);
  const line = await result;
  const w = win.close();
  const r = parseResultLine(line[0]) ?? {};
  const secs = r.secs || w.secs;
  if (!r.pkts) throw new Error(`${receiver.label}: received nothing${receiver.tail()}`);
  return {
    pps: r.pkts / secs,
    bps: (r.bytes * 8) / secs,
    cpu: w.cpu,
    machineCpu: w.machineCpu,
    otherCpu: w.otherCpu,
    secs,
    frames: r.pkts,
    drops: r.drops,
  };
}

/** CPU to pin the sender to, and the receiver (another one when there is one). */
export function cpusFor(ctx: RowContext): { tx: number; rx: number } {
  return { tx: 0, rx: ctx.cpus > 1 ? 1 : 0 };
}

// ---------------------------------------------------------------- namespaces

/** Fixed MACs of the test frames: sender …0a:00 → receiver …0b:00, ethertype 0x88b5. */
export const SRC_MAC = "02:00:00:00:0a:00";
export const DST_MAC = "02:00:00:00:0b:00";
export const ETHERTYPE = 0x88b5;

/** A network namespace this run created; deleted (with its interfaces) by the row's cleanup. */
export class Netns {
  private constructor(readonly name: string) {}

  static async create(ctx: RowContext, suffix: string): Promise<Netns> {
    const name = `${ctx.prefix}${suffix}`;
    await run(["ip", "netns", "add", name]);
    ctx.cleanup.add(`delete netns ${name}`, () => run(["ip", "netns", "del", name]).then(() => {}));
    const ns = new Netns(name);
    await run(["ip", "-n", name, "link", "set", "lo", "up"]);
    // No IPv6 (router solicitations, MLD) or other stray traffic on the test links.
    await run(
      ns.exec([
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
      ]),
      { allowFail: true },
    );
    return ns;
  }

  /** The command run inside this namespace. */
  exec(cmd: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...cmd];
  }

  ip(...args: string[]): Promise<unknown> {
    return run(["ip", "-n", this.name, ...args]);
  }
}

/** Creates a veth pair directly between two of our namespaces (never in the root namespace). */
export async function vethPair(
  a: Netns,
  aName: string,
  aMac: string,
  b: Netns,
  bName: string,
  bMac: string,
): Promise<void> {
  await a.ip(
    "link",
    "add",
    aName,
    "address",
    aMac,
    "type",
    "veth",
    "peer",
    "name",
    bName,
    "netns",
    b.name,
    "address",
    bMac,
  );
  await a.ip("link", "set", aName, "up");
  await b.ip("link", "set", bName, "up");
}

/** The trafgen packet config for one frame of `size` bytes (without FCS). */
export function trafgenConfig(size: number): string {
  const mac = (m: string) => m.split(":").map((x) => `0x${x}`).join(",");
  const fill = size - 14;
  return `{ ${mac(DST_MAC)}, ${mac(SRC_MAC)}, c16(0x${
    ETHERTYPE.toString(16)
  }), fill(0x55, ${fill}) }\n`;
}

/** Which sender the Linux rows use: trafgen when installed (or asked for), else bench/c/tx_ring. */
export function senderKind(ctx: RowContext): "trafgen" | "tx_ring" | string {
  const want = ctx.options.sender ?? "auto";
  if (want === "tx_ring") return "tx_ring";
  if (which("trafgen")) return "trafgen";
  if (want === "trafgen") return "trafgen is not installed (scripts/install-peers.sh)";
  return "tx_ring";
}

/** The sender command for an interface inside a namespace, pinned to `cpu`. */
export function senderCommand(
  ctx: RowContext,
  ns: Netns,
  ifname: string,
  size: number,
  cpu: number,
): { cmd: string[]; label: string } {
  const kind = senderKind(ctx);
  if (kind === "trafgen") {
    const cfg = `${ctx.tmpDir}/frame-${size}.cfg`;
    Deno.writeTextFileSync(cfg, trafgenConfig(size));
    return {
      label: "trafgen",
      cmd: ns.exec([
        "taskset",
        "-c",
        String(cpu),
        "trafgen",
        "-o",
        ifname,
        "-P",
        "1",
        "-Q",
        "--no-sock-mem",
        "-i",
        cfg,
      ]),
    };
  }
  return {
    label: "tx_ring",
    cmd: ns.exec([
      "taskset",
      "-c",
      String(cpu),
      `${ctx.binDir}/tx_ring`,
      "-i",
      ifname,
      "-l",
      String(size),
      "-D",
      DST_MAC,
      "-S",
      SRC_MAC,
      "-q",
    ]),
  };
}

/** Waits until `path` exists, at most `ms` (the error adds `what()`: a log tail, say). */
export async function waitForPath(path: string, ms: number, what = () => ""): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      if (performance.now() > end) throw new Error(`${path} did not appear in ${ms} ms${what()}`);
      await sleep(50);
    }
  }
}
