// Summaries and the markdown/JSON reports of the side-by-side benchmark.

import { type Measurement, type RowProvider, VALE_REF } from "./rows.ts";

/** Cores busy machine-wide before a run above which it is marked as disturbed by other load. */
export const BUSY = 0.25;

/**
 * A quantity a row measures besides (or instead of) the rate: a latency, a CPU
 * share, a ratio to another row. Rows return them in {@link MetricMeasurement};
 * the report gives their medians in a second table, with the DESIGN.md bar.
 */
export interface Metric {
  /** What it is, e.g. "RTT p50", "rate ÷ 2 ports". */
  name: string;
  value: number;
  /** "ns" (shown in µs), "%" (a fraction: 0.5 = 50 %), "pps" (shown in Mpps), "n" (a count). */
  unit: "ns" | "%" | "pps" | "n";
  /** The bar it is held to, in the same unit (met when the median satisfies it). */
  bar?: { op: "<=" | ">=" | "<" | "="; value: number };
}

/** A Measurement with metrics (rows that measure more than a rate). */
export interface MetricMeasurement extends Measurement {
  metrics?: Metric[];
  /** Its pps is no throughput (latency, idle rows): it is left out of the rate table. */
  rateless?: boolean;
}

/** The median of one metric over a row's runs. */
export interface MetricSummary {
  name: string;
  unit: Metric["unit"];
  bar?: Metric["bar"];
  median: number;
  min: number;
  max: number;
  /** Runs that reported it. */
  runs: number;
  /** Whether the median meets the bar (undefined without one). */
  met?: boolean;
}

/** All measurements of one row at one frame size. */
export interface Cell {
  row: RowProvider;
  size: number;
  runs: Measurement[];
  errors: string[];
  /** Runs repeated because other load disturbed them (kept for the record, not in the median). */
  disturbed: Measurement[];
}

export interface Summary {
  name: string;
  kind: RowProvider["kind"];
  size: number;
  /** Medians (each field separately) over the undisturbed runs, or all if none was clean. */
  pps: number;
  bps: number;
  cpu: number;
  machineCpu: number | undefined;
  minPps: number;
  maxPps: number;
  /** Runs the medians are taken over (the undisturbed ones when there are any). */
  runs: number;
  /** Runs measured (after retries), disturbed or not. */
  measured: number;
  /** Runs in the median that other load disturbed (≥ BUSY cores before or during the run). */
  disturbed: number;
  /** Reference pps ÷ this row's pps at the same size (undefined without a reference). */
  refRatio: number | undefined;
  /** This row's pps as a fraction of the physical limit at the same size. */
  ofLimit: number | undefined;
  errors: string[];
  /** Medians of the metrics the runs reported, in the order they first appear. */
  metrics?: MetricSummary[];
  /** The row measures no throughput (see MetricMeasurement.rateless). */
  rateless?: boolean;
}

export interface Report {
  date: string;
  host: { kernel: string; cpus: number; cpuModel: string };
  options: { seconds: number; runs: number; warmup: number; sizes: number[]; sender: string };
  ref: string | undefined;
  summaries: Summary[];
  cells: {
    name: string;
    size: number;
    runs: Measurement[];
    errors: string[];
    disturbed: Measurement[];
  }[];
  unavailable: { name: string; reason: string }[];
  descriptions: { name: string; kind: string; description: string }[];
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Picks the ratio reference: `--ref`, else "vale switch", else "physical limit", else none. */
export function chooseRef(cells: Cell[], wanted?: string): string | undefined {
  const measured = new Set(cells.filter((c) => c.runs.length).map((c) => c.row.name));
  if (wanted) {
    const hit = [...measured].find((n) => n.toLowerCase() === wanted.toLowerCase()) ??
      [...measured].find((n) => n.toLowerCase().includes(wanted.toLowerCase()));
    if (hit) return hit;
  }
  if (measured.has(VALE_REF)) return VALE_REF;
  if (measured.has("physical limit")) return "physical limit";
  return [...measured][0];
}

/** Whether other load disturbed a run (≥ BUSY cores before or during it). */
export function isDisturbed(m: Measurement): boolean {
  return Math.max(m.background ?? 0, m.otherCpu ?? 0) >= BUSY;
}

/** The runs a summary is made of: the undisturbed ones when there are any, else all. */
export function usedRuns(c: Cell): Measurement[] {
  const clean = c.runs.filter((m) => !isDisturbed(m));
  return clean.length ? clean : c.runs;
}

export function summarize(cells: Cell[], ref: string | undefined): Summary[] {
  const medianPps = (name: string | undefined, size: number) => {
    const c = cells.find((c) => c.row.name === name && c.size === size && c.runs.length);
    return c ? median(usedRuns(c).map((r) => r.pps)) : NaN;
  };
  return cells.map((c) => {
    const runs = usedRuns(c);
    const pps = median(runs.map((r) => r.pps));
    const mc = runs.map((r) => r.machineCpu).filter((x): x is number => x !== undefined);
    const refPps = medianPps(ref, c.size);
    const limitPps = medianPps("physical limit", c.size);
    return {
      name: c.row.name,
      kind: c.row.kind,
      size: c.size,
      pps,
      bps: median(runs.map((r) => r.bps)),
      cpu: median(runs.map((r) => r.cpu)),
      machineCpu: mc.length ? median(mc) : undefined,
      minPps: Math.min(...runs.map((r) => r.pps)),
      maxPps: Math.max(...runs.map((r) => r.pps)),
      runs: runs.length,
      measured: c.runs.length,
      disturbed: runs.filter(isDisturbed).length,
      refRatio: runs.length && refPps > 0 ? refPps / pps : undefined,
      ofLimit: runs.length && limitPps > 0 ? pps / limitPps : undefined,
      errors: c.errors,
      ...summarizeMetrics(runs),
    };
  });
}

function meets(v: number, bar: NonNullable<Metric["bar"]>): boolean {
  switch (bar.op) {
    case "<=":
      return v <= bar.value;
    case ">=":
      return v >= bar.value;
    case "<":
      return v < bar.value;
    case "=":
      return v === bar.value;
  }
}

function summarizeMetrics(runs: Measurement[]): { metrics?: MetricSummary[]; rateless?: boolean } {
  const ms = runs as MetricMeasurement[];
  const names: string[] = [];
  for (const m of ms) {
    for (const x of m.metrics ?? []) if (!names.includes(x.name)) names.push(x.name);
  }
  const out: { metrics?: MetricSummary[]; rateless?: boolean } = {};
  if (ms.some((m) => m.rateless)) out.rateless = true;
  if (!names.length) return out;
  out.metrics = names.map((name) => {
    const xs = ms.flatMap((m) => (m.metrics ?? []).filter((x) => x.name === name));
    const vals = xs.map((x) => x.value).filter(Number.isFinite);
    const med = median(vals);
    const bar = xs.find((x) => x.bar)?.bar;
    return {
      name,
      unit: xs[0].unit,
      bar,
      median: med,
      min: Math.min(...vals),
      max: Math.max(...vals),
      runs: vals.length,
      met: bar && Number.isFinite(med) ? meets(med, bar) : undefined,
    };
  });
  return out;
}

const f = (x: number, digits: number) => Number.isFinite(x) ? x.toFixed(digits) : "–";
const mpps = (x: number) => f(x / 1e6, x < 1e7 ? 3 : 2);
const pct = (cores: number | undefined) =>
  cores === undefined ? "–" : `${Math.round(cores * 100)} %`;

function ratio(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  return x >= 10 ? `${x.toFixed(0)}×` : `${x.toFixed(2)}×`;
}

/** A metric value in its unit. */
export function metricText(v: number, unit: Metric["unit"]): string {
  if (!Number.isFinite(v)) return "–";
  switch (unit) {
    case "ns":
      return `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} µs`;
    case "%":
      return `${(v * 100).toFixed(Math.abs(v) < 0.01 ? 3 : Math.abs(v) < 0.1 ? 2 : 1)} %`;
    case "pps":
      return `${mpps(v)} Mpps`;
    case "n":
      return String(Math.round(v));
  }
}

const OPS = { "<=": "≤", ">=": "≥", "<": "<", "=": "=" };

/** The second table: every row's metrics (medians, spread, bar and verdict). */
export function metricsTable(summaries: Summary[]): string {
  const with_ = summaries.filter((s) => s.metrics?.length);
  if (!with_.length) return "";
  const lines = [
    "| system | frame | measure | median | runs: min–max | bar |",
    "|---|---|---|---:|---:|---|",
  ];
  for (const s of with_) {
    for (const m of s.metrics!) {
      const spread = m.runs > 1 && m.min !== m.max
        ? `${metricText(m.min, m.unit)}–${metricText(m.max, m.unit)} (${m.runs})`
        : `(${m.runs})`;
      const bar = m.bar
        ? `${OPS[m.bar.op]} ${metricText(m.bar.value, m.unit)}: ${m.met ? "met" : "**missed**"}`
        : "";
      lines.push(
        `| ${s.name} | ${s.size} B | ${m.name} | ${metricText(m.median, m.unit)}` +
          `${s.disturbed ? " \\*" : ""} | ${spread} | ${bar} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The results table (markdown), then the metrics table when rows reported metrics. */
export function table(summaries: Summary[], ref: string | undefined): string {
  const withRate = summaries.filter((s) => !s.rateless);
  const more = metricsTable(summaries);
  const rates = withRate.length || !more ? rateTable(withRate, ref) : "";
  const lines = [[rates, more].filter(Boolean).join("\n\n")];
  if (summaries.some((s) => s.disturbed)) {
    lines.push(
      "",
      `\\* every run of this row was disturbed: other processes used ≥ ${BUSY * 100} % of a ` +
        "CPU before or during it, also after the retries.",
    );
  }
  return lines.join("\n");
}

function rateTable(summaries: Summary[], ref: string | undefined): string {
  const head = [
    "system",
    "frame",
    "Mpps",
    "Gbit/s",
    "runs: min–max Mpps",
    "CPU, row",
    "CPU, machine",
    `${ref ?? "ref"} ÷ row`,
    "% of limit",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const s of summaries) {
    if (!s.runs) {
      lines.push(`| ${s.name} | ${s.size} B | failed | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${
        [
          s.name,
          `${s.size} B`,
          mpps(s.pps) + (s.disturbed ? " \\*" : ""),
          f(s.bps / 1e9, 2),
          (s.runs > 1 ? `${mpps(s.minPps)}–${mpps(s.maxPps)} ` : "") +
          (s.runs === s.measured ? `(${s.runs})` : `(${s.runs} of ${s.measured})`),
          pct(s.cpu),
          pct(s.machineCpu),
          ratio(s.refRatio),
          s.ofLimit === undefined ? "–" : `${(s.ofLimit * 100).toFixed(s.ofLimit < 0.1 ? 1 : 0)} %`,
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

export function markdown(r: Report): string {
  const o = r.options;
  const out = [
    "# Side by side: vale and its peers",
    "",
    `${r.date} · Linux ${r.host.kernel} · ${r.host.cpus} CPUs (${r.host.cpuModel}) · ` +
    `median of ${o.runs} run${o.runs > 1 ? "s" : ""} × ${o.seconds} s after ${o.warmup} s ` +
    `warm-up, rows interleaved · Linux rows' sender: ${o.sender}`,
    "",
    table(r.summaries, r.ref),
    "",
    `Frame sizes without FCS; Gbit/s = frames × size × 8. "CPU, row" = CPU time of the row's ` +
    `own processes over the window (100 % = one core); "CPU, machine" = all CPUs busy ` +
    `(includes kernel softirq work and anything else running). Medians are over the runs ` +
    `that other load did not disturb ("(2 of 3)"), or over all runs when none was clean (\\*). ` +
    (r.ref
      ? `"${r.ref} ÷ row" = the reference's Mpps divided by this row's (30× = the ` +
        `reference moves 30 times as many frames).`
      : ""),
  ];
  if (r.summaries.some((s) => s.metrics?.length)) {
    out.push(
      "",
      "The second table: what rows measure besides the rate (latencies, CPU shares, ratios " +
        "to a row of the same run), medians over the same runs as the first; a bar " +
        "(DESIGN.md §5) is judged on the median.",
    );
  }
  const failed = r.summaries.filter((s) => s.errors.length);
  if (failed.length) {
    out.push("", "## Errors", "");
    for (const s of failed) {
      for (const e of s.errors) out.push(`- ${s.name}, ${s.size} B: ${e.split("\n")[0]}`);
    }
  }
  if (r.unavailable.length) {
    out.push("", "## Not measured", "");
    for (const u of r.unavailable) out.push(`- ${u.name}: ${u.reason}`);
  }
  out.push("", "## Rows", "");
  for (const d of r.descriptions) out.push(`- **${d.name}** (${d.kind}): ${d.description}`);
  return out.join("\n") + "\n";
}
