// Rows "vale broadcast 1→2", "1→4", "1→8": pkt-gen -f tx on vale0:a (CPU 0,
// broadcast frames) → the switch copies each frame to every other port →
// K pkt-gen -f rx on vale0:r0 … r<K−1> (all on CPU 1). Mpps is the total
// delivered; the metrics give the per-receiver rates, the sender's rate and
// the ring-full drops (a receiver that is not running while its ring fills).
//
// Row "vale 2 senders → 1": pkt-gen -f tx on vale0:a1 and vale0:a2, both on
// CPU 0, unicast to the learned MAC of vale0:b, pkt-gen -f rx on vale0:b
// (CPU 1, alone as in the other rows): two producers leasing slots of one RX
// ring. With two CPUs the senders take turns on theirs, so one is often
// preempted while it holds a lease.

import { registerRow } from "./rows.ts";
import type { MetricMeasurement } from "./report.ts";
import { median } from "./report.ts";
import {
  dropShareMetric,
  measureTopology,
  unaccountedMetric,
  valeAvailable,
} from "./vale_common.ts";
import { RX_MAC } from "./vale_scaling.ts";

for (const k of [2, 4, 8]) {
  registerRow({
    name: `vale broadcast 1→${k}`,
    kind: "vale",
    description:
      `pkt-gen -f tx (broadcast) on vale0:a, CPU 0 → vale switch → ${k} × pkt-gen -f rx ` +
      `on vale0:r0…r${k - 1}, all on CPU 1; Mpps = total delivered, per receiver in the metrics`,
    sizes: [60],
    available: valeAvailable,
    async run(size, seconds, ctx): Promise<MetricMeasurement> {
      const receivers = Array.from({ length: k }, (_, i) => ({ port: `r${i}`, cpu: 1 }));
      const r = await measureTopology(size, seconds, ctx, {
        label: `bcast${k}`,
        senders: [{ port: "a", cpu: 0 }],
        receivers,
        fanout: k,
        holdEndpoints: true,
      });
      return {
        ...r.m,
        metrics: [
          { name: "per receiver (median)", value: median(r.perRx), unit: "pps" },
          { name: "slowest receiver", value: Math.min(...r.perRx), unit: "pps" },
          { name: "sender (frames into the switch)", value: r.perTx[0], unit: "pps" },
          { name: "receivers' CPU (sum)", value: r.rxCpu.reduce((a, b) => a + b, 0), unit: "%" },
          dropShareMetric(r, k),
          unaccountedMetric(r),
        ],
      };
    },
  });
}

registerRow({
  name: "vale 2 senders → 1",
  kind: "vale",
  description: "pkt-gen -f tx on vale0:a1 and vale0:a2 (both CPU 0), unicast to vale0:b's " +
    "learned MAC → pkt-gen -f rx on vale0:b (CPU 1); two producers on one RX ring",
  sizes: [60],
  available: valeAvailable,
  async run(size, seconds, ctx): Promise<MetricMeasurement> {
    const r = await measureTopology(size, seconds, ctx, {
      label: "2to1",
      senders: [
        { port: "a1", cpu: 0, args: ["-D", RX_MAC, "-S", "02:00:00:00:0a:01"] },
        { port: "a2", cpu: 0, args: ["-D", RX_MAC, "-S", "02:00:00:00:0a:02"] },
      ],
      receivers: [{ port: "b", cpu: 1, mac: RX_MAC }],
      fanout: 1,
      holdEndpoints: true,
    });
    return {
      ...r.m,
      metrics: [
        { name: "sender 1 (frames into the switch)", value: r.perTx[0], unit: "pps" },
        { name: "sender 2 (frames into the switch)", value: r.perTx[1], unit: "pps" },
        { name: "receiver CPU", value: r.rxCpu[0], unit: "%" },
        dropShareMetric(r, 1),
        unaccountedMetric(r),
      ],
    };
  },
});
