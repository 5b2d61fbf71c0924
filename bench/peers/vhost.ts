// Rows with vhost-user front-ends (DPDK virtio-user in dpdk-testpmd, no
// hugepages), txonly on one socket, rxonly on the other, each testpmd on its
// own CPU:
//
//   "vale vhost-user ports"  the two sockets are vhost-user ports of one vale
//                            switch (`vale-ctl -a valeX:vhost:SOCK`, a
//                            forwarder process each);
//   "DPDK vhost PMD pair"    the same two front-ends joined by a third
//                            dpdk-testpmd with two net_vhost ports in io mode
//                            (no switching: port 0 -> port 1).
//
// The same front-ends on Open vSwitch with DPDK are in ovs_dpdk.ts.
//
// The rate is the mean of the receiving testpmd's per-second `Rx-pps` lines
// after the first few, as in the memif row.

import { type Child, run } from "../proc.ts";
import { type Measurement, registerRow, type RowContext } from "../rows.ts";
import { cpusFor, spawn } from "./common.ts";
import { removeRuntimeDir, rxRate, testpmdArgs, testpmdAvailable } from "./testpmd.ts";
import { privateRunDir } from "../vale_common.ts";

/** The vhost-user rows' testpmds take more mbufs than the default (the rings are larger). */
const MBUFS = "--total-num-mbufs=16384";

/**
 * The two virtio-user front-ends every vhost-user row measures between:
 * testpmd rxonly on socket `rxSock` (CPU cpu.rx, prefix tag rxTag) and
 * testpmd txonly sending `size`-byte frames on `txSock` (cpu.tx, txTag).
 */
export function frontEnds(
  ctx: RowContext,
  size: number,
  cpu: { rx: number; tx: number },
  [rxTag, txTag]: string[],
  txSock: string,
  rxSock: string,
): { rx: Child; tx: Child } {
  const rx = spawn(
    ctx,
    "testpmd-rx",
    testpmdArgs(ctx, rxTag, cpu.rx, [`net_virtio_user0,path=${rxSock}`], [
      "--forward-mode=rxonly",
      MBUFS,
    ]),
  );
  const tx = spawn(
    ctx,
    "testpmd-tx",
    testpmdArgs(ctx, txTag, cpu.tx, [`net_virtio_user0,path=${txSock}`], [
      "--forward-mode=txonly",
      `--txpkts=${size}`,
      MBUFS,
    ]),
  );
  return { rx, tx };
}

/** Forwarder pids of the vale attachments (their CPU counts for the row). */
function forwarderPids(runDir: string): number[] {
  const pids: number[] = [];
  try {
    for (const e of Deno.readDirSync(`${runDir}/.attach/valevh`)) {
      if (!e.name.endsWith(".state.json")) continue;
      const st = JSON.parse(Deno.readTextFileSync(`${runDir}/.attach/valevh/${e.name}`));
      if (st.pid) pids.push(st.pid);
    }
  } catch { /* none */ }
  return pids;
}

async function measureVale(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const cpu = cpusFor(ctx);
  const rd = privateRunDir(ctx, "vhost");
  const ctl = `${ctx.root}/bin/vale-ctl`;
  const env = { VALE_RUN_DIR: rd };
  const sock = (s: string) => `${ctx.tmpDir}/${s}${size}.sock`;
  for (const s of ["a", "b"]) {
    await run([ctl, "-a", `valevh:vhost:${sock(s)}`], { env });
    ctx.cleanup.add(
      `detach valevh:${s}${size}.sock`,
      () => run([ctl, "-d", `valevh:${s}${size}.sock`], { env }).then(() => {}),
    );
  }
  const tags = [`vrx${size}`, `vtx${size}`];
  for (const t of tags) ctx.cleanup.add(`remove DPDK dir ${t}`, () => removeRuntimeDir(ctx, t));
  const { rx, tx } = frontEnds(ctx, size, cpu, tags, sock("a"), sock("b"));
  try {
    return await rxRate(rx, [tx], seconds, ctx, size, () => forwarderPids(rd));
  } finally {
    await tx.stop("SIGINT", 5000);
    await rx.stop("SIGINT", 5000);
  }
}

async function measurePmd(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const cpu = cpusFor(ctx);
  const sock = (s: string) => `${ctx.tmpDir}/p${s}${size}.sock`;
  const tags = [`prx${size}`, `ptx${size}`, `pmid${size}`];
  for (const t of tags) ctx.cleanup.add(`remove DPDK dir ${t}`, () => removeRuntimeDir(ctx, t));
  // the middle: two vhost PMD ports (servers), io forwarding 0 <-> 1
  const mid = spawn(
    ctx,
    "testpmd-vhost",
    testpmdArgs(
      ctx,
      tags[2],
      cpu.rx,
      [`net_vhost0,iface=${sock("a")},queues=1`, `net_vhost1,iface=${sock("b")},queues=1`],
      ["--forward-mode=io", MBUFS],
    ),
  );
  await mid.waitLine(/start packet forwarding|Press enter/i, 30_000);
  const { rx, tx } = frontEnds(ctx, size, cpu, tags, sock("a"), sock("b"));
  try {
    return await rxRate(rx, [tx, mid], seconds, ctx, size, () => []);
  } finally {
    await tx.stop("SIGINT", 5000);
    await rx.stop("SIGINT", 5000);
    await mid.stop("SIGINT", 5000);
  }
}

registerRow({
  name: "vale vhost-user ports",
  kind: "vale",
  description: "dpdk-testpmd txonly → virtio-user → vale vhost-user port → switch → vhost-user " +
    "port → virtio-user → dpdk-testpmd rxonly, --no-huge",
  sizes: [60, 1514],
  available: (ctx) => testpmdAvailable(ctx, 2),
  run: measureVale,
});

registerRow({
  name: "DPDK vhost PMD pair",
  kind: "peer",
  description: "the same two virtio-user front-ends joined by a dpdk-testpmd with two net_vhost " +
    "ports in io mode (no switching), --no-huge",
  sizes: [60, 1514],
  available: (ctx) => testpmdAvailable(ctx, 3),
  run: measurePmd,
});
