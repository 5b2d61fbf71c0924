// The row-provider interface of the side-by-side benchmark.
//
// A row is one system that moves frames from one sender to one receiver on
// this machine (the physical limit, a Linux bridge, a DPDK memif pair, the vale
// switch…). Each provider says whether it can run here, prepares what it needs
// once, and measures one frame size for a bounded time. The runner
// (side_by_side.ts) interleaves runs, takes medians and prints one table.
//
// Add a row from another file:
//
//   import { registerRow } from "./rows.ts";
//   registerRow({ name: "vale switch", kind: "vale", sizes: [60, 1514], … });
//
// and import that file from side_by_side.ts (see ROW_MODULES there). The row
// named "vale switch" is the reference of the ratio column when it is present.

import type { Cleanup } from "./cleanup.ts";

/** The result of one bounded measurement of one row at one frame size. */
export interface Measurement {
  /** Frames per second received during the measured window. */
  pps: number;
  /** Bits per second of frame data received (frame bytes without FCS × 8). */
  bps: number;
  /** CPU used by the row's own processes (and their children), in cores: 1 = one core busy. */
  cpu: number;
  /** CPU busy machine-wide during the window, in cores (includes kernel softirq work, and noise). */
  machineCpu?: number;
  /**
   * CPU used by other user-space processes during the window, in cores (set by
   * rows that use CpuWindow): load that disturbed the measurement.
   */
  otherCpu?: number;
  /** Length of the measured window, seconds. */
  secs: number;
  /** Frames received in the window. */
  frames?: number;
  /** Frames counted as dropped in the window, when the system reports it. */
  drops?: number;
  /**
   * Cores busy machine-wide just before the run started (set by the runner): other
   * load that may have disturbed the measurement.
   */
  background?: number;
  /** Anything worth reading next to the number (which sender was used, …). */
  notes?: string[];
}

/** What a provider gets from the runner. */
export interface RowContext {
  /** Undo steps registered here run at the end of the row, on error and on Ctrl-C. */
  cleanup: Cleanup;
  /** Absolute path of the repository root (ends without a slash). */
  root: string;
  /** Where build_peers.ts put the peer programs (build/bench). */
  binDir: string;
  /** A private temporary directory for this run (removed at the end). */
  tmpDir: string;
  /** Unique prefix for names this run creates (namespaces, DPDK prefixes): `vbench-<pid>-`. */
  prefix: string;
  /** Seconds to let a row settle before its measured window opens. */
  warmup: number;
  /** Number of online CPUs. */
  cpus: number;
  /** Options given on the command line that a provider may honour (e.g. `sender`). */
  options: Record<string, string | undefined>;
  /** Progress/debug output (stderr). */
  log(msg: string): void;
  verbose: boolean;
}

export interface RowProvider {
  /** Row label in the table; "vale switch" is the preferred ratio reference. */
  name: string;
  /** "limit": a physical bound; "peer": a system users would pick instead; "vale": ours. */
  kind: "limit" | "peer" | "vale";
  /** One line for the docs and the markdown report: what is measured, how. */
  description: string;
  /** Frame sizes (bytes, without FCS) this row can measure. */
  sizes: number[];
  /** `true` when it can run here, else the reason it cannot (shown in the report). */
  available(ctx: RowContext): Promise<true | string>;
  /**
   * Before this row's measurements in each run (create namespaces, start daemons…);
   * register undo steps in ctx.cleanup: they run right after those measurements, so
   * nothing of a row is left running while another row is measured.
   */
  setup?(ctx: RowContext): Promise<void>;
  /** One bounded measurement: `seconds` of measured window after `ctx.warmup`. */
  run(size: number, seconds: number, ctx: RowContext): Promise<Measurement>;
}

const registry: RowProvider[] = [];

/** Adds a row; a later registration with the same name replaces the earlier one. */
export function registerRow(row: RowProvider): void {
  const i = registry.findIndex((r) => r.name === row.name);
  if (i >= 0) registry[i] = row;
  else registry.push(row);
}

/** Rows in table order: limit rows, then vale rows, then peers (registration order within). */
export function allRows(): RowProvider[] {
  const order = { limit: 0, vale: 1, peer: 2 };
  return [...registry].sort((a, b) => order[a.kind] - order[b.kind]);
}

/** The name of the row vale is compared against when present. */
export const VALE_REF = "vale switch";

/** Parses the `result k=v …` line every peer program in bench/c prints on stdout. */
export function parseResultLine(line: string): Record<string, number> | undefined {
  if (!line.startsWith("result ")) return undefined;
  const out: Record<string, number> = {};
  for (const kv of line.slice(7).trim().split(/\s+/)) {
    const [k, v] = kv.split("=");
    if (k && v !== undefined && v !== "" && !Number.isNaN(Number(v))) out[k] = Number(v);
  }
  return out;
}
