// Row "DPDK memif pair": two dpdk-testpmd processes joined by a memif
// shared-memory interface (no switch between them), txonly → rxonly, without
// hugepages, each on its own CPU. The rate is the mean of testpmd's per-second
// `Rx-pps` lines after the first few.

import { type Child, type CpuUse, CpuWindow, which } from "../proc.ts";
import { type Measurement, registerRow, type RowContext } from "../rows.ts";
import { cpusFor, deadlineMs, spawn } from "./common.ts";

/** testpmd's EAL memory per process, MiB (no hugepages: ordinary memory). */
const MEM_MB = 1024;

function memAvailableMb(): number {
  try {
    const m = Deno.readTextFileSync("/proc/meminfo").match(/^MemAvailable:\s+(\d+)/m);
    return m ? Number(m[1]) / 1024 : Infinity;
  } catch {
    return Infinity;
  }
}

function testpmd(
  ctx: RowContext,
  role: "server" | "client",
  cpu: number,
  socket: string,
  fwd: string[],
): string[] {
  const side = role === "server" ? "rx" : "tx";
  return [
    "dpdk-testpmd",
    "--lcores",
    `0@${cpu},1@${cpu}`,
    "--no-pci",
    "--no-huge",
    "-m",
    String(MEM_MB),
    "--file-prefix",
    `${ctx.prefix}${side}`,
    "--log-level",
    "lib.eal:warning",
    `--vdev=net_memif0,role=${role},socket=${socket}`,
    "--",
    ...fwd,
    "--auto-start",
    "--stats-period",
    "1",
    "--nb-cores=1",
  ];
}

/** Removes the runtime directory DPDK made for one of our file prefixes. */
function removeRuntimeDir(ctx: RowContext, side: string): void {
  for (
    const base of ["/var/run/dpdk", `${Deno.env.get("XDG_RUNTIME_DIR") ?? "/nonexistent"}/dpdk`]
  ) {
    try {
      Deno.removeSync(`${base}/${ctx.prefix}${side}`, { recursive: true });
    } catch { /* not there */ }
  }
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
    // Per-second Rx-pps lines of the receiver: skip the zero ones (link not up
    // yet) and the first `skip` non-zero ones (warm-up), then average `n`.
    const skip = Math.max(2, Math.ceil(ctx.warmup));
    const n = Math.max(1, Math.round(seconds));
    const win = new CpuWindow();
    const rates: number[] = [];
    let seen = 0;
    const done = new Promise<CpuUse>(
      (resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`testpmd: fewer than ${n} Rx-pps lines in time${rx.tail()}`)),
          deadlineMs(seconds + skip, ctx, 30),
        );
        const off = rx.onLine((line) => {
          const m = line.match(/Rx-pps:\s+(\d+)/);
          if (!m) return;
          const pps = Number(m[1]);
          if (seen === 0 && pps === 0) return;
          seen++;
          if (seen === skip) win.open([rx.pid, tx!.pid]);
          else if (seen > skip) rates.push(pps);
          if (rates.length === n) {
            clearTimeout(timer);
            off();
            resolve(win.close());
          }
        });
        rx.status.then(() => reject(new Error(`testpmd-rx exited early${rx.tail()}`)));
        tx!.status.then(() => reject(new Error(`testpmd-tx exited early${tx!.tail()}`)));
      },
    );
    const w = await done;
    const pps = rates.reduce((a, b) => a + b, 0) / rates.length;
    return {
      pps,
      bps: pps * size * 8,
      cpu: w.cpu,
      machineCpu: w.machineCpu,
      otherCpu: w.otherCpu,
      secs: w.secs,
      frames: Math.round(pps * w.secs),
      notes: [`mean of ${n} Rx-pps lines after ${skip}`],
    };
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
  available(ctx) {
    if (!which("dpdk-testpmd")) {
      return Promise.resolve("dpdk-testpmd is not installed (Debian: dpdk-dev)");
    }
    if (ctx.cpus < 2) return Promise.resolve("needs two CPUs");
    if (memAvailableMb() < 2 * MEM_MB + 256) {
      return Promise.resolve(`needs ${2 * MEM_MB + 256} MiB of free memory`);
    }
    return Promise.resolve(true);
  },
  run: measure,
});
