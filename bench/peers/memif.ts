// Row "DPDK memif pair": two dpdk-testpmd processes joined by a memif
// shared-memory interface (no switch between them), txonly → rxonly, without
// hugepages, each on its own CPU. The rate is the mean of testpmd's per-second
// `Rx-pps` lines after the first few.

import type { Child } from "../proc.ts";
import { type Measurement, registerRow, type RowContext } from "../rows.ts";
import { cpusFor, spawn } from "./common.ts";
import { removeRuntimeDir, rxRate, testpmdArgs, testpmdAvailable } from "./testpmd.ts";

function testpmd(
  ctx: RowContext,
  role: "server" | "client",
  cpu: number,
  socket: string,
  fwd: string[],
): string[] {
  const side = role === "server" ? "rx" : "tx";
  return testpmdArgs(ctx, side, cpu, [`net_memif0,role=${role},socket=${socket}`], fwd);
}

async function measure(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const cpu = cpusFor(ctx);
  const socket = `${ctx.tmpDir}/memif-${size}.sock`;
  for (const side of ["rx", "tx"]) {
    ctx.cleanup.add(
      `remove DPDK runtime dir ${ctx.prefix}${side}`,
      () => removeRuntimeDir(ctx, side),
    );
  }
  const rx = spawn(
    ctx,
    "testpmd-rx",
    testpmd(ctx, "server", cpu.rx, socket, ["--forward-mode=rxonly"]),
  );
  let tx: Child | undefined;
  try {
    await rx.waitLine(/start packet forwarding/i, 30_000);
    tx = spawn(
      ctx,
      "testpmd-tx",
      testpmd(ctx, "client", cpu.tx, socket, ["--forward-mode=txonly", `--txpkts=${size}`]),
    );
    return await rxRate(rx, [tx], seconds, ctx, size, () => [], 30);
  } finally {
    await tx?.stop("SIGINT", 5000);
    await rx.stop("SIGINT", 5000);
    removeRuntimeDir(ctx, "rx");
    removeRuntimeDir(ctx, "tx");
  }
}

registerRow({
  name: "DPDK memif pair",
  kind: "peer",
  description: "dpdk-testpmd txonly ↔ memif ↔ dpdk-testpmd rxonly (no switch), " +
    "--no-huge, one CPU each",
  sizes: [60, 1514],
  available: (ctx) => testpmdAvailable(ctx, 2),
  run: measure,
});
