// What the rows built of dpdk-testpmd processes share (the memif pair, the
// vhost-user rows, OVS-DPDK): the command line without hugepages, whether
// this machine can run N of them, the rate read from the receiver's
// per-second `Rx-pps` lines, and removing the runtime directory DPDK leaves
// for each `--file-prefix`.

import { type Child, type CpuUse, CpuWindow, which } from "../proc.ts";
import type { Measurement, RowContext } from "../rows.ts";
import { deadlineMs } from "./common.ts";

/** testpmd's EAL memory per process, MiB (no hugepages: ordinary memory). */
export const MEM_MB = 1024;

function memAvailableMb(): number {
  try {
    const m = Deno.readTextFileSync("/proc/meminfo").match(/^MemAvailable:\s+(\d+)/m);
    return m ? Number(m[1]) / 1024 : Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * A dpdk-testpmd command line: EAL on `cpu` (no PCI, no hugepages, file
 * prefix `<prefix><tag>`), `vdevs`, then testpmd's `fwd` options; it starts
 * forwarding at once and prints its port statistics every second.
 */
export function testpmdArgs(
  ctx: RowContext,
  tag: string,
  cpu: number,
  vdevs: string[],
  fwd: string[],
): string[] {
  return [
    "dpdk-testpmd",
    "--lcores",
    `0@${cpu},1@${cpu}`,
    "--no-pci",
    "--no-huge",
    "-m",
    String(MEM_MB),
    "--file-prefix",
    `${ctx.prefix}${tag}`,
    "--log-level",
    "lib.eal:warning",
    ...vdevs.map((v) => `--vdev=${v}`),
    "--",
    ...fwd,
    "--auto-start",
    "--stats-period",
    "1",
    "--nb-cores=1",
  ];
}

/** Can `processes` testpmd-sized DPDK processes run here (testpmd, CPUs, memory)? */
export function testpmdAvailable(ctx: RowContext, processes: number): Promise<true | string> {
  if (!which("dpdk-testpmd")) {
    return Promise.resolve("dpdk-testpmd is not installed (Debian: dpdk-dev)");
  }
  if (ctx.cpus < 2) return Promise.resolve("needs two CPUs");
  if (memAvailableMb() < processes * MEM_MB + 256) {
    return Promise.resolve(`needs ${processes * MEM_MB + 256} MiB of free memory`);
  }
  return Promise.resolve(true);
}

/** Removes the DPDK runtime directory of the `--file-prefix` `<prefix><tag>`. */
export function removeRuntimeDir(ctx: RowContext, tag: string): void {
  for (
    const base of ["/var/run/dpdk", `${Deno.env.get("XDG_RUNTIME_DIR") ?? "/nonexistent"}/dpdk`]
  ) {
    try {
      Deno.removeSync(`${base}/${ctx.prefix}${tag}`, { recursive: true });
    } catch { /* not there */ }
  }
}

/**
 * The mean of the receiver `rx`'s per-second Rx-pps lines over `seconds`:
 * the zero ones (link not up yet) and the first few non-zero ones (warm-up)
 * are skipped. CPU is measured over the same window for `rx`, `others` and
 * `extraPids()` (a switch's forwarders). Fails when any of them exits or the
 * lines do not come within the row's deadline (`slackS` seconds of start-up).
 */
export async function rxRate(
  rx: Child,
  others: Child[],
  seconds: number,
  ctx: RowContext,
  size: number,
  extraPids: () => number[],
  slackS = 40,
): Promise<Measurement> {
  const skip = Math.max(2, Math.ceil(ctx.warmup));
  const n = Math.max(1, Math.round(seconds));
  const win = new CpuWindow();
  const rates: number[] = [];
  let seen = 0;
  const w = await new Promise<CpuUse>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`testpmd: fewer than ${n} Rx-pps lines in time${rx.tail()}`)),
      deadlineMs(seconds + skip, ctx, slackS),
    );
    const off = rx.onLine((line) => {
      const m = line.match(/Rx-pps:\s+(\d+)/);
      if (!m) return;
      const pps = Number(m[1]);
      if (seen === 0 && pps === 0) return;
      seen++;
      if (seen === skip) win.open([rx.pid, ...others.map((c) => c.pid), ...extraPids()]);
      else if (seen > skip) rates.push(pps);
      if (rates.length === n) {
        clearTimeout(timer);
        off();
        resolve(win.close());
      }
    });
    for (const c of [rx, ...others]) {
      c.status.then(() => reject(new Error(`${c.label} exited early${c.tail()}`)));
    }
  });
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
}
