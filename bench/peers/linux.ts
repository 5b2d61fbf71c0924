// Rows "Linux veth pair" and "Linux bridge": trafgen (or bench/c/tx_ring)
// sends from one network namespace, bench/c/rx_mmap counts in another.
// Everything lives in namespaces this run creates (vbench-<pid>-*); the root
// namespace and its interfaces are never touched.
//
//   veth pair:  [tx ns] vs0 ══ vr0 [rx ns]
//   bridge:     [tx ns] vs0 ══ ps ┐
//                                 br0 [bridge ns]   stp_state 0, mcast_snooping 0,
//               [rx ns] vr0 ══ pr ┘                 static fdb entries: never floods

import { type Child, run, which } from "../proc.ts";
import { registerRow, type RowContext, type RowProvider } from "../rows.ts";
import {
  cpusFor,
  DST_MAC,
  measureStartResult,
  Netns,
  senderCommand,
  senderKind,
  spawn,
  SRC_MAC,
  vethPair,
} from "./common.ts";

/** Sender side (interface vs0) and receiver side (interface vr0) of a Linux row. */
export interface Topology {
  tx: Netns;
  rx: Netns;
  /** Processes of the switch in between (counted in the row's CPU), e.g. ovs-vswitchd. */
  switchPids?: number[];
}

function linuxAvailable(ctx: RowContext, needBridge: boolean): Promise<true | string> {
  return Promise.resolve(linuxCheck(ctx, needBridge));
}

/** `true` when namespaces, veths and a sender are usable here, else why not. */
export function linuxCheck(ctx: RowContext, needBridge: boolean): true | string {
  if (Deno.uid() !== 0) return "needs root (network namespaces, AF_PACKET)";
  if (!which("ip")) return "iproute2 is not installed";
  if (needBridge && !which("bridge")) return "iproute2's bridge tool is not installed";
  if (!which("taskset")) return "taskset (util-linux) is not installed";
  const s = senderKind(ctx);
  if (s !== "trafgen" && s !== "tx_ring") return s;
  return true;
}

/** One measurement: receiver pinned to the rx CPU, sender to the tx CPU. */
export async function measureLinux(topo: Topology, size: number, seconds: number, ctx: RowContext) {
  const cpu = cpusFor(ctx);
  const rx = spawn(
    ctx,
    "rx_mmap",
    topo.rx.exec([
      "taskset",
      "-c",
      String(cpu.rx),
      `${ctx.binDir}/rx_mmap`,
      "-i",
      "vr0",
      "-t",
      String(seconds),
      "-w",
      String(ctx.warmup),
      "-T",
      "10",
      "-k", // stay after the result line until stopped, so /proc still has its CPU time
    ]),
  );
  await rx.waitLine(/listening on/, 10_000);
  const s = senderCommand(ctx, topo.tx, "vs0", size, cpu.tx);
  let tx: Child | undefined;
  try {
    tx = spawn(ctx, s.label, s.cmd);
    const pids = [rx.pid, tx.pid, ...(topo.switchPids ?? [])];
    const m = await measureStartResult(rx, pids, seconds, ctx).catch((e) => {
      if (tx?.exited) throw new Error(`${e.message}\n  ${s.label} exited:${tx.tail()}`);
      throw e;
    });
    m.notes = [`sender ${s.label}`];
    return m;
  } finally {
    await tx?.stop("SIGINT");
    await rx.stop("SIGINT");
  }
}

function linuxRow(
  name: string,
  description: string,
  bridge: boolean,
): RowProvider {
  let topo: Topology | undefined;
  return {
    name,
    kind: "peer",
    description,
    sizes: [60, 1514],
    available: (ctx) => linuxAvailable(ctx, bridge),
    async setup(ctx) {
      const tag = bridge ? "br" : "veth";
      const tx = await Netns.create(ctx, `${tag}-tx`);
      const rx = await Netns.create(ctx, `${tag}-rx`);
      if (!bridge) {
        await vethPair(tx, "vs0", SRC_MAC, rx, "vr0", DST_MAC);
      } else {
        const br = await Netns.create(ctx, `${tag}-sw`);
        await br.ip(
          "link",
          "add",
          "br0",
          "type",
          "bridge",
          "stp_state",
          "0",
          "mcast_snooping",
          "0",
        );
        await vethPair(tx, "vs0", SRC_MAC, br, "ps", "02:00:00:00:1a:00");
        await vethPair(rx, "vr0", DST_MAC, br, "pr", "02:00:00:00:1b:00");
        for (const p of ["ps", "pr"]) await br.ip("link", "set", p, "master", "br0");
        await br.ip("link", "set", "br0", "up");
        await run([
          "bridge",
          "-n",
          br.name,
          "fdb",
          "replace",
          DST_MAC,
          "dev",
          "pr",
          "master",
          "static",
        ]);
        await run([
          "bridge",
          "-n",
          br.name,
          "fdb",
          "replace",
          SRC_MAC,
          "dev",
          "ps",
          "master",
          "static",
        ]);
      }
      topo = { tx, rx };
    },
    run(size, seconds, ctx) {
      if (!topo) throw new Error(`${name}: not set up`);
      return measureLinux(topo, size, seconds, ctx);
    },
  };
}

registerRow(linuxRow(
  "Linux bridge",
  "Linux bridge (stp off, static fdb) between two veth pairs in network namespaces; " +
    "trafgen → bridge → PACKET_MMAP TPACKET_V3 receiver (bench/c/rx_mmap.c)",
  true,
));

registerRow(linuxRow(
  "Linux veth pair",
  "one veth pair between two network namespaces, no switch; " +
    "trafgen → PACKET_MMAP TPACKET_V3 receiver",
  false,
));
