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

import { type Child, type CpuUse, CpuWindow, run, which } from "../proc.ts";
import { type Measurement, registerRow, type RowContext } from "../rows.ts";
import { cpusFor, deadlineMs, spawn } from "./common.ts";
import { privateRunDir } from "../vale_common.ts";

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

/** A dpdk-testpmd command line: EAL on `cpu` (no PCI, no hugepages), `vdevs`, then `fwd`. */
export function testpmd(ctx: RowContext, tag: string, cpu: number, vdevs: string[], fwd: string[]) {
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
    "--total-num-mbufs=16384",
  ];
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

/** The mean of `rx`'s Rx-pps lines over `seconds`, after warm-up; CPU of `pids`. */
export async function rxRate(
  rx: Child,
  others: Child[],
  seconds: number,
  ctx: RowContext,
  size: number,
  extraPids: () => number[],
): Promise<Measurement> {
  const skip = Math.max(2, Math.ceil(ctx.warmup));
  const n = Math.max(1, Math.round(seconds));
  const win = new CpuWindow();
  const rates: number[] = [];
  let seen = 0;
  const w = await new Promise<CpuUse>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`testpmd: fewer than ${n} Rx-pps lines in time${rx.tail()}`)),
      deadlineMs(seconds + skip, ctx, 40),
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
      c.status.then(() => reject(new Error(`a testpmd exited early${c.tail()}`)));
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

/** Can `processes` testpmd-sized DPDK processes run here (testpmd, CPUs, memory)? */
export function vhostAvailable(ctx: RowContext, processes: number): Promise<true | string> {
  if (!which("dpdk-testpmd")) {
    return Promise.resolve("dpdk-testpmd is not installed (Debian: dpdk-dev)");
  }
  if (ctx.cpus < 2) return Promise.resolve("needs two CPUs");
  if (memAvailableMb() < processes * MEM_MB + 256) {
    return Promise.resolve(`needs ${processes * MEM_MB + 256} MiB of free memory`);
  }
  return Promise.resolve(true);
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
  const rx = spawn(
    ctx,
    "testpmd-rx",
    testpmd(ctx, tags[0], cpu.rx, [`net_virtio_user0,path=${sock("b")}`], [
      "--forward-mode=rxonly",
    ]),
  );
  const tx = spawn(
    ctx,
    "testpmd-tx",
    testpmd(ctx, tags[1], cpu.tx, [`net_virtio_user0,path=${sock("a")}`], [
      "--forward-mode=txonly",
      `--txpkts=${size}`,
    ]),
  );
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
    testpmd(
      ctx,
      tags[2],
      cpu.rx,
      [`net_vhost0,iface=${sock("a")},queues=1`, `net_vhost1,iface=${sock("b")},queues=1`],
      ["--forward-mode=io"],
    ),
  );
  await mid.waitLine(/start packet forwarding|Press enter/i, 30_000);
  const rx = spawn(
    ctx,
    "testpmd-rx",
    testpmd(ctx, tags[0], cpu.rx, [`net_virtio_user0,path=${sock("b")}`], [
      "--forward-mode=rxonly",
    ]),
  );
  const tx = spawn(
    ctx,
    "testpmd-tx",
    testpmd(ctx, tags[1], cpu.tx, [`net_virtio_user0,path=${sock("a")}`], [
      "--forward-mode=txonly",
      `--txpkts=${size}`,
    ]),
  );
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
  available: (ctx) => vhostAvailable(ctx, 2),
  run: measureVale,
});

registerRow({
  name: "DPDK vhost PMD pair",
  kind: "peer",
  description: "the same two virtio-user front-ends joined by a dpdk-testpmd with two net_vhost " +
    "ports in io mode (no switching), --no-huge",
  sizes: [60, 1514],
  available: (ctx) => vhostAvailable(ctx, 3),
  run: measurePmd,
});
