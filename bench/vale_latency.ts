// Latency and idle rows of the vale switch (no throughput: they appear in the
// report's second table), each on a private switch in /dev/shm:
//
// "vale ping-pong RTT": `vale_probe ping` on vale0:ping (CPU 0, busy-polling,
//   one frame in flight) → switch → pkt-gen -f pong on vale0:pong (CPU 1,
//   busy-polling) → switch → back. RTT from just before the ping's txsync to
//   the reply seen by its rxsync; percentiles from a 10 ns histogram (pkt-gen
//   -f ping's power-of-two histogram cannot tell 4 from 7 µs). Bar: p50 ≤ 5 µs.
//
// "vale idle receiver": after 100 000 frames, nothing: the CPU that a pkt-gen
//   -f rx (vale0:b) and a plain C vale_wait() loop (`vale_probe idle`,
//   vale0:c) use over the window, from /proc/<pid>/task/*/schedstat
//   (nanoseconds). Bar: < 1 % each.
//
// "vale wake-up": `vale_probe wake-tx` on vale0:a (CPU 0) sends one frame
//   every millisecond, stamped just before its txsync; `vale_probe wake-rx`
//   on vale0:b (CPU 1) sleeps in vale_wait(), never busy-polls, and takes
//   now − stamp when it wakes up with the frame. Bar: p50 ≤ 50 µs.

import { type Child, CpuWindow, sleep } from "./proc.ts";
import { parseResultLine, registerRow, type RowContext } from "./rows.ts";
import type { Metric, MetricMeasurement } from "./report.ts";
import { pktGenCommand } from "./vale_rows.ts";
import { spawn } from "./peers/common.ts";
import {
  buildProbe,
  cpuNs,
  deadlineMs,
  privateRunDir,
  resultLine,
  SW,
  valeAvailable,
} from "./vale_common.ts";

function lat(name: string, ns: number, bar?: number): Metric {
  return {
    name,
    value: ns,
    unit: "ns",
    bar: bar === undefined ? undefined : { op: "<=", value: bar },
  };
}

async function stopAll(children: Child[]): Promise<void> {
  for (const c of [...children].reverse()) await c.stop("SIGINT", 3000);
}

registerRow({
  name: "vale ping-pong RTT",
  kind: "vale",
  description: "vale_probe ping on vale0:ping (CPU 0) ⇄ switch ⇄ pkt-gen -f pong on vale0:pong " +
    "(CPU 1), both busy-polling, one frame in flight; RTT percentiles (10 ns histogram)",
  sizes: [60],
  available: valeAvailable,
  async run(size, seconds, ctx): Promise<MetricMeasurement> {
    const probe = await buildProbe(ctx);
    const pg = pktGenCommand(ctx.root)!;
    const env = { VALE_RUN_DIR: privateRunDir(ctx, "rtt") };
    const children: Child[] = [];
    try {
      const pong = spawn(ctx, "pkt-gen pong", [
        "taskset",
        "-c",
        "1",
        ...pg,
        "-i",
        `${SW}:pong`,
        "-f",
        "pong",
      ], env);
      children.push(pong);
      await pong.waitLine(/^Working on/, 20_000);
      const warm = Math.max(1, ctx.warmup);
      const ping = spawn(ctx, "vale_probe ping", [
        "taskset",
        "-c",
        "0",
        probe,
        "ping",
        `${SW}:ping`,
        String(warm),
        String(seconds),
        String(size),
      ], env);
      children.push(ping);
      const result = resultLine(ping, deadlineMs(seconds, ctx, 30));
      result.catch(() => {});
      await ping.waitLine(/^start$/, deadlineMs(0, ctx, 30), true);
      const win = new CpuWindow();
      win.open([ping.pid, pong.pid]);
      const r = await result;
      const w = win.close();
      if (!r.count) throw new Error(`no reply${ping.tail()}${pong.tail()}`);
      ctx.log(
        `  RTT p50 ${(r.p50_ns / 1e3).toFixed(2)} µs p99 ${(r.p99_ns / 1e3).toFixed(2)} µs ` +
          `max ${(r.max_ns / 1e3).toFixed(1)} µs over ${r.count} round trips`,
      );
      return {
        pps: r.count / r.secs,
        bps: (r.count * size * 8) / r.secs,
        cpu: w.cpu,
        machineCpu: w.machineCpu,
        otherCpu: w.otherCpu,
        secs: r.secs,
        frames: r.count,
        rateless: true,
        notes: [`round trips ${r.count}, timeouts ${r.timeouts}, avg ${r.avg_ns} ns`],
        metrics: [
          lat("RTT p50", r.p50_ns, 5000),
          lat("RTT p90", r.p90_ns),
          lat("RTT p99", r.p99_ns),
          lat("RTT p99.9", r.p999_ns),
          lat("RTT max", r.max_ns),
          { name: "round trips / s", value: r.count / r.secs, unit: "n" },
        ],
      };
    } finally {
      await stopAll(children);
    }
  },
});

async function idle(size: number, seconds: number, ctx: RowContext): Promise<MetricMeasurement> {
  const probe = await buildProbe(ctx);
  const pg = pktGenCommand(ctx.root)!;
  const env = { VALE_RUN_DIR: privateRunDir(ctx, "idle") };
  const children: Child[] = [];
  try {
    const rx = spawn(ctx, "pkt-gen rx", [
      "taskset",
      "-c",
      "1",
      ...pg,
      "-i",
      `${SW}:b`,
      "-f",
      "rx",
    ], env);
    children.push(rx);
    const c = spawn(ctx, "vale_probe idle", ["taskset", "-c", "1", probe, "idle", `${SW}:c`], env);
    children.push(c);
    await Promise.all([
      rx.waitLine(/^Receiving from/, 20_000),
      c.waitLine(/^ready$/, 10_000, true),
    ]);
    // some traffic first: the receivers go through their busy-poll phase and fall asleep
    const tx = spawn(ctx, "pkt-gen tx", [
      "taskset",
      "-c",
      "0",
      ...pg,
      "-i",
      `${SW}:a`,
      "-f",
      "tx",
      "-l",
      String(size),
      "-n",
      "100000",
    ], env);
    await tx.status;
    if (!rx.lines.some((l) => /[1-9][\d.]* [KM]?pps/.test(l))) {
      await rx.waitLine(/[1-9][\d.]* [KM]?pps/, 5000).catch(() => {});
    }
    await sleep(Math.max(1, ctx.warmup) * 1000);
    const secs = Math.max(2, seconds);
    const win = new CpuWindow();
    win.open([rx.pid, c.pid]);
    const a = [cpuNs(rx.pid), cpuNs(c.pid)], t0 = performance.now();
    await sleep(secs * 1000);
    const b = [cpuNs(rx.pid), cpuNs(c.pid)], dt = (performance.now() - t0) / 1000;
    const w = win.close();
    if (rx.exited || c.exited) throw new Error(`a receiver exited${rx.tail()}${c.tail()}`);
    const share = (i: number) => (b[i] - a[i]) / 1e9 / dt;
    const bar = { op: "<" as const, value: 0.01 };
    ctx.log(
      `  idle: pkt-gen rx ${(share(0) * 100).toFixed(3)} %, vale_wait loop ` +
        `${(share(1) * 100).toFixed(3)} % of a CPU over ${dt.toFixed(1)} s`,
    );
    return {
      pps: 0,
      bps: 0,
      cpu: w.cpu,
      machineCpu: w.machineCpu,
      otherCpu: w.otherCpu,
      secs: dt,
      rateless: true,
      metrics: [
        { name: "CPU of a sleeping pkt-gen -f rx", value: share(0), unit: "%", bar },
        { name: "CPU of a sleeping vale_wait() loop (C)", value: share(1), unit: "%", bar },
      ],
    };
  } finally {
    await stopAll(children);
  }
}

registerRow({
  name: "vale idle receiver",
  kind: "vale",
  description: "after 100 000 frames, no traffic: CPU used by a sleeping pkt-gen -f rx and by a " +
    "C vale_wait() loop over ≥ 2 s (/proc schedstat, ns)",
  sizes: [60],
  available: valeAvailable,
  run: idle,
});

registerRow({
  name: "vale wake-up",
  kind: "vale",
  description: "vale_probe wake-tx on vale0:a (CPU 0), one frame per ms stamped before its " +
    "txsync → vale_probe wake-rx on vale0:b (CPU 1) asleep in vale_wait(): time to wake up",
  sizes: [60],
  available: valeAvailable,
  async run(_size, seconds, ctx): Promise<MetricMeasurement> {
    const probe = await buildProbe(ctx);
    const env = { VALE_RUN_DIR: privateRunDir(ctx, "wake") };
    const children: Child[] = [];
    try {
      const warm = Math.max(1, ctx.warmup);
      const rx = spawn(ctx, "vale_probe wake-rx", [
        "taskset",
        "-c",
        "1",
        probe,
        "wake-rx",
        `${SW}:b`,
        String(warm),
        String(seconds),
      ], env);
      children.push(rx);
      await rx.waitLine(/^ready$/, 10_000, true);
      const result = resultLine(rx, deadlineMs(seconds, ctx, 30));
      result.catch(() => {});
      const tx = spawn(ctx, "vale_probe wake-tx", [
        "taskset",
        "-c",
        "0",
        probe,
        "wake-tx",
        `${SW}:a`,
        "1000",
      ], env);
      children.push(tx);
      await rx.waitLine(/^start$/, deadlineMs(0, ctx, 30), true);
      const win = new CpuWindow();
      win.open([rx.pid, tx.pid]);
      const r = await result;
      const w = win.close();
      await tx.stop("SIGINT", 3000);
      const t = parseResultLine(tx.lines.findLast((l) => l.startsWith("result ")) ?? "") ?? {};
      if (!r.count) throw new Error(`the receiver never woke up${rx.tail()}${tx.tail()}`);
      ctx.log(
        `  wake-up p50 ${(r.p50_ns / 1e3).toFixed(1)} µs p99 ${(r.p99_ns / 1e3).toFixed(1)} µs ` +
          `max ${(r.max_ns / 1e3).toFixed(1)} µs over ${r.count} wake-ups`,
      );
      const metrics: Metric[] = [
        lat("wake-up p50", r.p50_ns, 50_000),
        lat("wake-up p90", r.p90_ns),
        lat("wake-up p99", r.p99_ns),
        lat("wake-up max", r.max_ns),
        { name: "receiver CPU at 1000 wake-ups/s", value: r.cpu_ns / 1e9 / r.secs, unit: "%" },
      ];
      if (t.txsync_p50_ns !== undefined) {
        metrics.push(lat("sender's txsync incl. the wake-up, p50", t.txsync_p50_ns));
      }
      return {
        pps: r.count / r.secs,
        bps: 0,
        cpu: w.cpu,
        machineCpu: w.machineCpu,
        otherCpu: w.otherCpu,
        secs: r.secs,
        frames: r.count,
        rateless: true,
        notes: [`wake-ups ${r.count}, found before sleeping ${r.early}, spurious ${r.spurious}`],
        metrics,
      };
    } finally {
      await stopAll(children);
    }
  },
});
