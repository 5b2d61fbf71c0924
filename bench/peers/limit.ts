// Row "physical limit": bench/c/physlimit — two threads on two CPUs, a
// shared-memory SPSC ring, copy in + copy out. No switch can beat it.

import { registerRow } from "../rows.ts";
import { measureStartResult, spawn } from "./common.ts";

registerRow({
  name: "physical limit",
  kind: "limit",
  description: "two threads on two CPUs, shared-memory SPSC ring (4096 slots × 2 KiB, " +
    "batch 512), producer copies the frame in, consumer copies it out (bench/c/physlimit.c)",
  sizes: [60, 1514],
  available(ctx) {
    return Promise.resolve(ctx.cpus >= 2 ? true : "needs two CPUs");
  },
  async run(size, seconds, ctx) {
    const c = spawn(ctx, "physlimit", [
      `${ctx.binDir}/physlimit`,
      "-l",
      String(size),
      "-t",
      String(seconds),
      "-w",
      String(ctx.warmup),
      "-c",
      "0,1",
      "-k", // stay after the result line until stopped, so /proc still has its CPU time
      ...(ctx.verbose ? ["-v"] : []),
    ]);
    try {
      return await measureStartResult(c, [c.pid], seconds, ctx);
    } finally {
      await c.stop("SIGINT");
    }
  },
});
