// Unit tests of the report's metrics table (the vale rows' latencies, CPU
// shares and ratios):  deno test -A bench/report_metrics_test.ts

import assert from "node:assert/strict";
import type { RowProvider } from "./rows.ts";
import { type Cell, type MetricMeasurement, metricText, summarize, table } from "./report.ts";

const row = (name: string): RowProvider => ({
  name,
  kind: "vale",
  description: "",
  sizes: [60],
  available: () => Promise.resolve(true),
  run: () => Promise.reject(new Error("not run")),
});

Deno.test("metric values in their units", () => {
  assert.equal(metricText(1350, "ns"), "1.35 µs");
  assert.equal(metricText(123_000, "ns"), "123.0 µs");
  assert.equal(metricText(0.929, "%"), "92.9 %");
  assert.equal(metricText(0.00004, "%"), "0.004 %");
  assert.equal(metricText(14.7e6, "pps"), "14.70 Mpps");
  assert.equal(metricText(0, "n"), "0");
});

Deno.test("metrics: medians, bars, rateless rows only in the second table", () => {
  const rtt = (p50: number): MetricMeasurement => ({
    pps: 5e5,
    bps: 0,
    cpu: 2,
    secs: 3,
    rateless: true,
    metrics: [{ name: "RTT p50", value: p50, unit: "ns", bar: { op: "<=", value: 5000 } }],
  });
  const share = (v: number): MetricMeasurement => ({
    pps: 20e6,
    bps: 20e6 * 480,
    cpu: 2,
    secs: 3,
    metrics: [{ name: "rate ÷ 2 ports", value: v, unit: "%", bar: { op: ">=", value: 0.9 } }],
  });
  const cells: Cell[] = [
    {
      row: row("vale ping-pong RTT"),
      size: 60,
      runs: [1400, 1300, 9000].map(rtt),
      errors: [],
      disturbed: [],
    },
    {
      row: row("vale 1000 ports"),
      size: 60,
      runs: [0.8, 0.85, 0.95].map(share),
      errors: [],
      disturbed: [],
    },
  ];
  const s = summarize(cells, "vale 1000 ports");
  assert.equal(s[0].rateless, true);
  assert.equal(s[0].metrics![0].median, 1400);
  assert.equal(s[0].metrics![0].met, true);
  assert.equal(s[1].metrics![0].median, 0.85);
  assert.equal(s[1].metrics![0].met, false);
  const t = table(s, "vale 1000 ports");
  assert.doesNotMatch(t, /\| vale ping-pong RTT \| 60 B \| 0\.500 \|/); // not a rate row
  assert.match(
    t,
    /\| vale ping-pong RTT \| 60 B \| RTT p50 \| 1\.40 µs \| 1\.30 µs–9\.00 µs \(3\) \| ≤ 5\.00 µs: met \|/,
  );
  assert.match(
    t,
    /\| vale 1000 ports \| 60 B \| rate ÷ 2 ports \| 85\.0 % \| .* \| ≥ 90\.0 %: \*\*missed\*\* \|/,
  );
  assert.match(t, /\| vale 1000 ports \| 60 B \| 20\.00 \|/);
});
