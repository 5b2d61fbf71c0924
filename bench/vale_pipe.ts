// Row "vale pipe": pkt-gen -f tx on vale0:p{1 (a pipe's master end) → the
// pipe (slots moved by swapping buffers, back-pressure instead of drops) →
// pkt-gen -f rx on vale0:p}1 (its slave end), one CPU each, on a private
// switch in /dev/shm. The rate is the switch's own counters over the window;
// at the end everything sent must have been received (pipes drop nothing).

import { registerRow } from "./rows.ts";
import type { MetricMeasurement } from "./report.ts";
import { measureTopology, unaccountedMetric, valeAvailable } from "./vale_common.ts";

registerRow({
  name: "vale pipe",
  kind: "vale",
  description: "pkt-gen -f tx on vale0:p{1 → the pipe (buffer swap, back-pressure) → " +
    "pkt-gen -f rx on vale0:p}1, CPUs 0 and 1, private VALE_RUN_DIR in /dev/shm; rate from " +
    "the switch's counters; sent = received checked at the end",
  sizes: [60, 1514],
  available: valeAvailable,
  async run(size, seconds, ctx): Promise<MetricMeasurement> {
    const r = await measureTopology(size, seconds, ctx, {
      label: "pipe",
      senders: [{ port: "p{1", cpu: 0 }],
      receivers: [{ port: "p}1", cpu: 1 }],
      fanout: 1,
      // the pipe's counters vanish with pkt-gen: the end check uses pkt-gen's own totals
      holdEndpoints: false,
    });
    return { ...r.m, metrics: [unaccountedMetric(r)] };
  },
});
