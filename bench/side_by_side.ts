// The side-by-side benchmark: measures every row (the physical limit, the
// peers users would pick instead of vale, and vale itself once pkt-gen exists)
// in one run, interleaved, and prints one table. Results are also written to
// bench/results/<timestamp>.{md,json}.
//
//   deno run -A bench/side_by_side.ts [--seconds 5] [--runs 3] [--warmup 1]
//       [--sizes 60,1514] [--only NAME]… [--skip NAME]… [--ref NAME]
//       [--sender auto|trafgen|tx_ring] [--out DIR] [--no-write] [--list] [--verbose]
//
// Needs root for the Linux rows (namespaces, AF_PACKET); rows that cannot run
// are listed with the reason. Everything created (namespaces, veths, bridges,
// processes, sockets, DPDK runtime files, temp dirs) is removed at the end,
// on error and on Ctrl-C; leftovers of a run killed with SIGKILL are removed
// by the next run.

import { parseArgs } from "node:util";
import { buildPeers, PEER_BIN_DIR } from "./build_peers.ts";
import { Cleanup, ownPrefix, removeStale } from "./cleanup.ts";
import { BUSY, type Cell, chooseRef, markdown, type Report, summarize, table } from "./report.ts";
import { allRows, type RowContext, type RowProvider } from "./rows.ts";
import { waitQuiet } from "./proc.ts";
import { senderKind } from "./peers/common.ts";

// Row providers register themselves when imported. Add new row files here.
import "./peers/limit.ts";
import "./vale_rows.ts";
import "./vale_pipe.ts";
import "./vale_scaling.ts";
import "./vale_fanout.ts";
import "./vale_latency.ts";
import "./peers/memif.ts";
import "./peers/linux.ts";
import "./peers/ovs.ts";
import "./kernel_rows.ts";
import "./peers/vhost.ts";
import "./peers/ovs_dpdk.ts";

const HELP = `usage: deno run -A bench/side_by_side.ts [options]

  --seconds N     measured window per run (default 5)
  --runs N        runs per row and size; the median is reported (default 3)
  --warmup N      seconds before each window opens (default 1)
  --sizes LIST    frame sizes without FCS (default 60,1514)
  --only NAME     run only rows whose name contains NAME (repeatable, or comma list)
  --skip NAME     leave out rows whose name contains NAME (repeatable)
  --ref NAME      ratio reference (default: "vale switch" if measured, else "physical limit")
  --sender S      Linux rows' sender: auto (trafgen if installed), trafgen, tx_ring
  --out DIR       where to write <timestamp>.md/.json (default bench/results)
  --no-write      print only
  --list          list the rows and whether they can run here, then exit
  --quiet-wait N  before each measurement wait up to N s for other load to end (default 10)
  --retries N     repeat a run disturbed by other load (≥ 25 % of a CPU) up to N times (default 2)
  --verbose       show the commands and every output line
`;

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function log(msg: string): void {
  console.error(msg);
}

function cpuModel(): string {
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m);
    return m ? m[1].trim() : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

function matches(name: string, patterns: string[]): boolean {
  return patterns.some((p) => name.toLowerCase().includes(p.toLowerCase()));
}

function list(vals: string[] | undefined): string[] {
  return (vals ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
}

function positive(name: string, v: string | undefined, def: number, allowZero = false): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new Error(`--${name}: expected a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: "string" },
      runs: { type: "string" },
      warmup: { type: "string" },
      sizes: { type: "string" },
      only: { type: "string", multiple: true },
      skip: { type: "string", multiple: true },
      ref: { type: "string" },
      sender: { type: "string" },
      out: { type: "string" },
      "no-write": { type: "boolean" },
      "quiet-wait": { type: "string" },
      retries: { type: "string" },
      list: { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const seconds = positive("seconds", values.seconds, 5);
  const runs = Math.round(positive("runs", values.runs, 3));
  const warmup = positive("warmup", values.warmup, 1, true);
  const sizes = (values.sizes ?? "60,1514").split(",").map(Number);
  if (sizes.some((s) => !Number.isInteger(s) || s < 60 || s > 1514)) {
    throw new Error("--sizes: frame sizes are integers in 60..1514");
  }
  if (values.sender && !["auto", "trafgen", "tx_ring"].includes(values.sender)) {
    throw new Error("--sender: auto, trafgen or tx_ring");
  }
  const quietWait = positive("quiet-wait", values["quiet-wait"], 10, true);
  const retries = Math.round(positive("retries", values.retries, 2, true));
  const only = list(values.only);
  const skip = list(values.skip);

  const cleanup = new Cleanup();
  cleanup.installSignalHandlers(log);
  try {
    const stale = await removeStale();
    if (stale.length) log(`removed leftovers of earlier runs: ${stale.join(", ")}`);
    await buildPeers({ quiet: !values.verbose });
    const tmpDir = Deno.makeTempDirSync({ prefix: ownPrefix() });
    cleanup.add(`remove ${tmpDir}`, () => Deno.removeSync(tmpDir, { recursive: true }));

    const cpus = navigator.hardwareConcurrency;
    const baseCtx: Omit<RowContext, "cleanup"> = {
      root,
      binDir: PEER_BIN_DIR,
      tmpDir,
      prefix: ownPrefix(),
      warmup,
      cpus,
      options: { sender: values.sender },
      log,
      verbose: !!values.verbose,
    };
    const ctxFor = (c: Cleanup): RowContext => ({ ...baseCtx, cleanup: c });

    let rows = allRows();
    if (only.length) rows = rows.filter((r) => matches(r.name, only));
    if (skip.length) rows = rows.filter((r) => !matches(r.name, skip));
    if (!rows.length) {
      log(`no row matches; rows: ${allRows().map((r) => r.name).join(", ")}`);
      return 2;
    }

    const unavailable: { name: string; reason: string }[] = [];
    const ready: RowProvider[] = [];
    for (const r of rows) {
      const ok = await r.available(ctxFor(cleanup)).catch((e) => String(e?.message ?? e));
      if (ok === true) ready.push(r);
      else unavailable.push({ name: r.name, reason: ok });
    }
    if (values.list) {
      for (const r of rows) {
        const u = unavailable.find((x) => x.name === r.name);
        console.log(`${r.name} [${r.kind}]: ${u ? `not available: ${u.reason}` : "available"}`);
        console.log(`    ${r.description}`);
      }
      return 0;
    }

    let cells: Cell[] = [];
    for (const r of ready) {
      for (const size of sizes.filter((s) => r.sizes.includes(s))) {
        cells.push({ row: r, size, runs: [], errors: [], disturbed: [] });
      }
    }
    const perRun = cells.length * (seconds + warmup + 2);
    log(
      `side by side: ${ready.map((r) => r.name).join(", ") || "nothing"} · ` +
        `${runs} × ${seconds} s · about ${Math.ceil((perRun * runs) / 60)} min`,
    );

    const measureCell = async (cell: Cell, run: number, rowScope: Cleanup): Promise<void> => {
      const scope = rowScope.scope(`${cell.row.name} ${cell.size} B run ${run}`);
      const label = `run ${run}/${runs} · ${cell.row.name} · ${cell.size} B`;
      try {
        for (let attempt = 0;; attempt++) {
          // a retry starts clean: the last attempt's attachments (a vhost-user socket still
          // listened on), processes and directories are undone first
          if (attempt > 0) await scope.runAll();
          const background = await waitQuiet(BUSY, quietWait * 1000);
          const m = await cell.row.run(cell.size, seconds, ctxFor(scope));
          m.background = background;
          const other = Math.max(background, m.otherCpu ?? 0);
          log(
            `${label}: ${(m.pps / 1e6).toFixed(3)} Mpps ${(m.bps / 1e9).toFixed(2)} Gbit/s ` +
              `cpu ${pct(m.cpu)} machine ${pct(m.machineCpu)} other ${pct(m.otherCpu)}` +
              (m.drops ? ` drops ${m.drops}` : "") + (other >= BUSY ? " (disturbed)" : ""),
          );
          if (other >= BUSY && attempt < retries) {
            cell.disturbed.push(m);
            continue;
          }
          cell.runs.push(m);
          break;
        }
      } catch (e) {
        cell.errors.push(errText(e));
        log(`${label}: FAILED: ${errText(e)}`);
      } finally {
        await scope.close();
      }
    };

    // Interleave: every row and size once per run, then the next run. A row is
    // set up before its measurements and torn down right after, so nothing of
    // it (namespaces, busy-polling daemons) runs during another row's window.
    const broken = new Set<RowProvider>();
    for (let run = 1; run <= runs; run++) {
      for (const row of ready) {
        const rowCells = cells.filter((c) => c.row === row);
        if (broken.has(row) || !rowCells.length) continue;
        const rowScope = cleanup.scope(row.name);
        try {
          try {
            await row.setup?.(ctxFor(rowScope));
          } catch (e) {
            const msg = `setup failed: ${errText(e)}`;
            log(`run ${run}/${runs} · ${row.name}: ${msg}`);
            if (run === 1) {
              broken.add(row);
              unavailable.push({ name: row.name, reason: msg });
            } else {
              for (const c of rowCells) c.errors.push(msg);
            }
            continue;
          }
          for (const cell of rowCells) await measureCell(cell, run, rowScope);
        } finally {
          await rowScope.close();
        }
      }
    }
    cells = cells.filter((c) => !broken.has(c.row));

    await cleanup.runAll();

    const ref = chooseRef(cells, values.ref);
    const summaries = summarize(cells, ref);
    const date = new Date();
    const report: Report = {
      date: date.toISOString().replace(/\.\d+Z$/, "Z"),
      host: { kernel: Deno.osRelease(), cpus, cpuModel: cpuModel() },
      options: { seconds, runs, warmup, sizes, sender: senderKind(ctxFor(cleanup)) },
      ref,
      summaries,
      cells: cells.map((c) => ({
        name: c.row.name,
        size: c.size,
        runs: c.runs,
        errors: c.errors,
        disturbed: c.disturbed,
      })),
      unavailable,
      descriptions: rows.map((r) => ({ name: r.name, kind: r.kind, description: r.description })),
    };
    console.log(table(summaries, ref));
    if (unavailable.length) {
      console.log("\nnot measured:");
      for (const u of unavailable) console.log(`  ${u.name}: ${u.reason}`);
    }
    if (!values["no-write"]) {
      const dir = values.out ?? `${root}/bench/results`;
      Deno.mkdirSync(dir, { recursive: true });
      const stamp = report.date.replace(/:/g, "-");
      Deno.writeTextFileSync(`${dir}/${stamp}.md`, markdown(report));
      Deno.writeTextFileSync(`${dir}/${stamp}.json`, JSON.stringify(report, null, 2) + "\n");
      log(`\nwrote ${dir}/${stamp}.md and .json`);
    }
    return cells.some((c) => c.runs.length) ? 0 : 1;
  } finally {
    await cleanup.runAll();
    cleanup.removeSignalHandlers();
  }
}

function pct(cores: number | undefined): string {
  return cores === undefined ? "–" : `${Math.round(cores * 100)} %`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`side_by_side: ${errText(e)}`);
    Deno.exit(2);
  }
}
