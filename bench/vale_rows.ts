// Row "vale switch": pkt-gen -f tx on vale0:a → the vale switch (learning
// lookup, forwarding in the sender) → pkt-gen -f rx on vale0:b, each pinned to
// its own CPU, on a private switch (VALE_RUN_DIR in the run's temp dir).
//
// It stays "not available" until a pkt-gen exists. pkt-gen is found as:
//   $VALE_PKTGEN (a command line, e.g. "build/pkt-gen" or "deno run -A cli/pkt-gen.ts"),
//   else bin/pkt-gen, else cli/pkt-gen.ts run with this Deno.
// The rate is the pkt-gen receiver's periodic lines (REFERENCE.md format)
// after the first few, the same way the DPDK row reads testpmd.

import { type Child, type CpuUse, CpuWindow } from "./proc.ts";
import { type Measurement, registerRow, type RowContext, VALE_REF } from "./rows.ts";
import { cpusFor, deadlineMs, spawn } from "./peers/common.ts";

/** One periodic pkt-gen line: `14.875 Mpps (14.890 Mpkts 7.140 Gbps in 1000987 usec) …`. */
export interface PktGenPeriodic {
  pps: number;
  pkts: number;
  gbps: number;
  usec: number;
}

/** Parses pkt-gen's periodic line (netmap format, also ours); undefined for any other line. */
export function parsePktGenPeriodic(line: string): PktGenPeriodic | undefined {
  const m = line.match(
    /([\d.]+)\s*([KMG]?)pps\s+\(([\d.]+)\s*([KMG]?)pkts\s+([\d.]+)\s*([KMG]?)bps\s+in\s+(\d+)\s+usec\)/,
  );
  if (!m) return undefined;
  const unit = (u: string) => ({ "": 1, K: 1e3, M: 1e6, G: 1e9 })[u] ?? 1;
  const pkts = Number(m[3]) * unit(m[4]);
  const usec = Number(m[7]);
  return {
    pps: usec > 0 ? pkts / (usec / 1e6) : Number(m[1]) * unit(m[2]),
    pkts,
    gbps: (Number(m[5]) * unit(m[6])) / 1e9,
    usec,
  };
}

/** The pkt-gen command prefix, or undefined when none is built yet. */
export function pktGenCommand(root: string): string[] | undefined {
  const env = Deno.env.get("VALE_PKTGEN");
  if (env) return env.trim().split(/\s+/);
  try {
    const st = Deno.statSync(`${root}/bin/pkt-gen`);
    if (st.isFile && (st.mode ?? 0) & 0o111) return [`${root}/bin/pkt-gen`];
  } catch { /* not there */ }
  try {
    Deno.statSync(`${root}/cli/pkt-gen.ts`);
    return [Deno.execPath(), "run", "-A", `${root}/cli/pkt-gen.ts`];
  } catch { /* not there */ }
  return undefined;
}

async function measure(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const pg = pktGenCommand(ctx.root)!;
  const cpu = cpusFor(ctx);
  // the switch's memory on tmpfs: a run dir on a disk would write the rings back
  const runDir = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: `${ctx.prefix}vale-` });
  ctx.cleanup.add(`remove ${runDir}`, () => Deno.removeSync(runDir, { recursive: true }));
  const env = { VALE_RUN_DIR: runDir };
  const rx = spawn(
    ctx,
    "pkt-gen-rx",
    ["taskset", "-c", String(cpu.rx), ...pg, "-i", "vale0:b", "-f", "rx"],
    env,
  );
  let tx: Child | undefined;
  try {
    // The receiver's port must exist before the sender floods the first frames.
    await Promise.race([
      rx.waitLine(/ready|waiting|Receiv|Mpps/i, 5_000).catch(() => {}),
      new Promise((r) => setTimeout(r, 1_000)),
    ]);
    if (rx.exited) throw new Error(`pkt-gen rx exited${rx.tail()}`);
    tx = spawn(
      ctx,
      "pkt-gen-tx",
      [
        "taskset",
        "-c",
        String(cpu.tx),
        ...pg,
        "-i",
        "vale0:a",
        "-f",
        "tx",
        "-l",
        String(size),
      ],
      env,
    );
    const skip = Math.max(2, Math.ceil(ctx.warmup));
    const n = Math.max(1, Math.round(seconds));
    const win = new CpuWindow();
    const lines: PktGenPeriodic[] = [];
    let seen = 0;
    const w = await new Promise<CpuUse>(
      (resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`pkt-gen rx: fewer than ${n} rate lines in time${rx.tail()}`)),
          deadlineMs(seconds + skip, ctx, 30),
        );
        const off = rx.onLine((line) => {
          const p = parsePktGenPeriodic(line);
          if (!p || (seen === 0 && p.pkts === 0)) return;
          seen++;
          if (seen === skip) win.open([rx.pid, tx!.pid]);
          else if (seen > skip) lines.push(p);
          if (lines.length === n) {
            clearTimeout(timer);
            off();
            resolve(win.close());
          }
        });
        rx.status.then(() => reject(new Error(`pkt-gen rx exited early${rx.tail()}`)));
        tx!.status.then(() => reject(new Error(`pkt-gen tx exited early${tx!.tail()}`)));
      },
    );
    const pkts = lines.reduce((a, p) => a + p.pkts, 0);
    const secs = lines.reduce((a, p) => a + p.usec, 0) / 1e6;
    return {
      pps: pkts / secs,
      bps: (pkts * size * 8) / secs,
      cpu: w.cpu,
      machineCpu: w.machineCpu,
      otherCpu: w.otherCpu,
      secs,
      frames: Math.round(pkts),
      notes: [`pkt-gen: ${pg.join(" ")}`],
    };
  } finally {
    await tx?.stop("SIGINT", 3000);
    await rx.stop("SIGINT", 3000);
  }
}

registerRow({
  name: VALE_REF,
  kind: "vale",
  description: "pkt-gen -f tx on vale0:a → vale switch (learning lookup, forwarding in the " +
    "sender) → pkt-gen -f rx on vale0:b, one CPU each, private VALE_RUN_DIR",
  sizes: [60, 1514],
  available(ctx) {
    if (!pktGenCommand(ctx.root)) {
      return Promise.resolve("no pkt-gen yet (bin/pkt-gen, cli/pkt-gen.ts or $VALE_PKTGEN)");
    }
    return Promise.resolve(ctx.cpus >= 2 ? true : "needs two CPUs");
  },
  run: measure,
});
