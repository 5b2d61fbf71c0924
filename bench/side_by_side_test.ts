// Unit tests of the side-by-side benchmark's parsing and summarizing (no
// root, no peers needed):  deno test -A bench/side_by_side_test.ts

import assert from "node:assert/strict";
import { parseResultLine, type RowProvider, VALE_REF } from "./rows.ts";
import { parsePktGenPeriodic } from "./vale_rows.ts";
import { type Cell, chooseRef, median, summarize, table } from "./report.ts";
import { trafgenConfig } from "./peers/common.ts";

Deno.test("result lines of the bench/c programs", () => {
  assert.deepEqual(
    parseResultLine("result pkts=10 bytes=600 secs=2.000000 cpu=0.5 drops=0"),
    { pkts: 10, bytes: 600, secs: 2, cpu: 0.5, drops: 0 },
  );
  assert.equal(parseResultLine("start"), undefined);
});

Deno.test("pkt-gen periodic lines", () => {
  const p = parsePktGenPeriodic(
    "259.052821 main_thread [2783] 14.920 Mpps (14.952 Mpkts 7.162 Gbps in 1002151 usec) " +
      "511.98 avg_batch 1 min_space",
  )!;
  assert.ok(Math.abs(p.pps - 14.952e6 / 1.002151) < 1);
  assert.equal(p.pkts, 14.952e6);
  assert.equal(p.usec, 1002151);
  const z = parsePktGenPeriodic(
    "main_thread [2783] 0.000 pps (0.000 pkts 0.000 bps in 1001370 usec)",
  );
  assert.equal(z!.pkts, 0);
  assert.equal(parsePktGenPeriodic("Sent 10 packets 600 bytes"), undefined);
});

Deno.test("trafgen frame config has the requested size", () => {
  const cfg = trafgenConfig(60);
  assert.match(cfg, /c16\(0x88b5\), fill\(0x55, 46\)/);
  assert.equal(cfg.split("0x").length - 1, 6 + 6 + 2); // 12 MAC bytes, the type, the fill byte
});

Deno.test("median, reference choice and ratios", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const row = (name: string, kind: RowProvider["kind"]): RowProvider => ({
    name,
    kind,
    description: "",
    sizes: [60],
    available: () => Promise.resolve(true),
    run: () => Promise.reject(new Error("not run")),
  });
  const m = (pps: number) => ({ pps, bps: pps * 480, cpu: 1, secs: 1 });
  const cells: Cell[] = [
    { row: row("physical limit", "limit"), size: 60, runs: [m(50e6)], errors: [], disturbed: [] },
    {
      row: row("Linux bridge", "peer"),
      size: 60,
      runs: [m(0.5e6), m(0.7e6), m(0.6e6)],
      errors: [],
      disturbed: [],
    },
  ];
  assert.equal(chooseRef(cells), "physical limit");
  assert.equal(chooseRef(cells, "bridge"), "Linux bridge");
  const withVale = [
    ...cells,
    { row: row(VALE_REF, "vale"), size: 60, runs: [m(20e6)], errors: [], disturbed: [] },
  ];
  assert.equal(chooseRef(withVale), VALE_REF);
  const s = summarize(withVale, VALE_REF);
  const bridge = s.find((x) => x.name === "Linux bridge")!;
  assert.equal(bridge.pps, 0.6e6);
  assert.ok(Math.abs(bridge.refRatio! - 20 / 0.6) < 1e-9);
  assert.ok(Math.abs(bridge.ofLimit! - 0.012) < 1e-9);
  assert.match(table(s, VALE_REF), /\| Linux bridge \| 60 B \| 0\.600 \|/);
});
