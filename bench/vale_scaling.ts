// Rows "vale 2 ports unicast", "vale 10 ports", "vale 100 ports", "vale 1000 ports":
// pkt-gen -f tx on vale0:a (CPU 0) → unicast through the learning switch →
// pkt-gen -f rx on vale0:b (CPU 1), while N − 2 other ports exist on the same
// switch (opened and held, idle, by `vale_probe hold`). The receiver's MAC is
// learned first (`vale_probe announce` sends one frame from vale0:b with it),
// and the sender's -D is that MAC, so every frame is a unicast lookup hit
// (checked: nothing reaches the idle ports during the window).
//
// Each N-port row reports its rate as a share of the 2-port row's rate in the
// same run (the 2-port row runs just before it; a row run without it, e.g.
// with --only, measures its own 2-port baseline first). DESIGN.md §5's bar:
// 1000 ports ≥ 90 % of 2 ports.

import { registerRow, type RowContext } from "./rows.ts";
import type { Metric, MetricMeasurement } from "./report.ts";
import {
  dropShareMetric,
  measureTopology,
  type TopologyResult,
  unaccountedMetric,
  valeAvailable,
} from "./vale_common.ts";

export const RX_MAC = "02:00:00:00:0b:00";
export const TX_MAC = "02:00:00:00:0a:00";
const TWO = "vale 2 ports unicast";

/** The latest 2-port measurement, numbered so each N-port row knows whether it is new. */
let baseline: { pps: number; seq: number } | undefined;
let seq = 0;
/** The 2-port row is in this invocation's rotation (it ran at least once). */
let twoPortRows = false;
const used = new Map<number, number>(); // N → baseline seq it last used

function unicast(n: number, size: number, seconds: number, ctx: RowContext) {
  return measureTopology(size, seconds, ctx, {
    label: `ports${n}`,
    idlePorts: n - 2,
    senders: [{ port: "a", cpu: 0, args: ["-D", RX_MAC, "-S", TX_MAC] }],
    receivers: [{ port: "b", cpu: 1, mac: RX_MAC }],
    fanout: 1,
    holdEndpoints: true,
  });
}

function common(r: TopologyResult): Metric[] {
  return [
    { name: "receiver CPU", value: r.rxCpu[0], unit: "%" },
    {
      name: "flooded to idle ports (window)",
      value: r.idleRx,
      unit: "n",
      bar: { op: "=", value: 0 },
    },
    dropShareMetric(r, 1),
    unaccountedMetric(r),
  ];
}

for (const n of [2, 10, 100, 1000]) {
  registerRow({
    name: n === 2 ? TWO : `vale ${n} ports`,
    kind: "vale",
    description: n === 2
      ? "pkt-gen -f tx on vale0:a -D <b's MAC> → vale switch, unicast (MAC learned) → " +
        "pkt-gen -f rx on vale0:b, CPUs 0 and 1; the baseline of the port-scaling rows"
      : `the same with ${n - 2} more ports on the switch (held idle by vale_probe hold); ` +
        `rate as a share of "${TWO}" in the same run`,
    sizes: [60],
    available: valeAvailable,
    async run(size, seconds, ctx): Promise<MetricMeasurement> {
      if (n === 2) {
        twoPortRows = true;
        const r = await unicast(2, size, seconds, ctx);
        baseline = { pps: r.m.pps, seq: ++seq };
        return { ...r.m, metrics: common(r) };
      }
      const notes: string[] = [];
      if (!baseline || (!twoPortRows && used.get(n) === baseline.seq)) {
        // the 2-port row is not run (--only, --skip, or it never succeeded): take one now.
        // (With it in the rotation, the same baseline again is a retry of this run.)
        const b = await unicast(2, size, seconds, ctx);
        baseline = { pps: b.m.pps, seq: ++seq };
        notes.push(`2-port baseline measured by this row: ${(b.m.pps / 1e6).toFixed(3)} Mpps`);
      }
      used.set(n, baseline.seq);
      const r = await unicast(n, size, seconds, ctx);
      const share = r.m.pps / baseline.pps;
      ctx.log(`  ${n} ports: ${(share * 100).toFixed(1)} % of the 2-port rate`);
      return {
        ...r.m,
        notes: [...(r.m.notes ?? []), ...notes],
        metrics: [
          {
            name: "rate ÷ 2 ports (same run)",
            value: share,
            unit: "%",
            bar: n === 1000 ? { op: ">=", value: 0.9 } : undefined,
          },
          ...common(r),
        ],
      };
    },
  });
}
