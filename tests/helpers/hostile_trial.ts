// One trial of the hostile-client tests (tests/hostile_test.ts,
// tests/sanitize_test.ts): two honest peers exchange traffic on a fresh
// switch while tests/hostile/hostile.c attacks it, then the hostile one is
// SIGKILLed, the honest ones get SIGINT with a deadline, and a fresh pair
// checks the switch still works (or vale-ctl can at least remove it).
import { CProc, type Exit, runProg, symbolize } from "./cprog.ts";
import { runTool } from "./tools.ts";

export const CASES = [
  "own-ring",
  "own-region",
  "other-kring",
  "ctl",
  "truncate",
  "unlink",
  "monitor",
] as const;
export type Case = typeof CASES[number];

export interface Bins {
  honest: string;
  hostile: string;
  /** the libvale.so they are linked against, for addr2line */
  lib: string;
}

export interface TrialResult {
  seed: number;
  /** honest processes that died of a signal, aborted or exited non-zero */
  crashed: number;
  /** honest processes still running 3 s after SIGINT (then SIGKILLed) */
  hung: number;
  /** a fresh pair on the switch exchanged frames */
  works: boolean;
  /** when it did not: vale-ctl --remove-switch removed it */
  removable: boolean;
  /** what vale-ctl -l said about the broken switch */
  listing: string;
  /** crash output (symbolized backtrace, assertion, sanitizer report) per crashed process */
  crashes: string[];
  /** own-ring: the hostile port's counters while it was still open */
  counters?: { sync_errors: number; bad_slot: number } | null;
  /** the hostile client's JSON summary, if it printed one */
  hostile?: Record<string, unknown>;
  /** sanitizer reports of any process (sanitize runs) */
  sanitizer: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SAN_RE = /(ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer)/;

function classify(e: Exit): "ok" | "crashed" | "hung" {
  if (e.hung) return "hung";
  if (e.signal !== null || e.code !== 0) return "crashed";
  return "ok";
}

function crashText(e: Exit, max = 3000): string {
  const why = e.signal ? `signal ${e.signal}` : `exit ${e.code}`;
  return `${why}\n${e.stderr.slice(0, max)}`;
}

export async function runTrial(
  c: Case,
  seed: number,
  bins: Bins,
  opts: { ms?: number; env?: Record<string, string>; counters?: boolean } = {},
): Promise<TrialResult> {
  const ms = opts.ms ?? 600;
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "hostile-" });
  const env = { VALE_RUN_DIR: dir, ...(opts.env ?? {}) };
  const res: TrialResult = {
    seed,
    crashed: 0,
    hung: 0,
    works: false,
    removable: false,
    listing: "",
    crashes: [],
    sanitizer: [],
  };
  const procs: CProc[] = [];
  try {
    const a = new CProc(bins.honest, ["run", "vale0:a", "1", "2", "20000"], env);
    const b = new CProc(bins.honest, ["run", "vale0:b", "2", "1", "20000"], env);
    procs.push(a, b);
    const started = await Promise.all([a.waitOut(/^ready$/m, 8000), b.waitOut(/^ready$/m, 8000)]);
    if (!started.every(Boolean)) {
      throw new Error(`honest peers did not start:\n${a.err}\n${b.err}`);
    }
    const h = new CProc(bins.hostile, [c, String(seed), String(ms), "vale0:h"], env);
    procs.push(h);
    await h.waitOut(/^ready$/m, 8000);
    await h.waitOut(/^\{.*\}$/m, ms + 4000);
    const line = h.out.split("\n").find((l) => l.startsWith("{"));
    if (line) res.hostile = JSON.parse(line);
    if (opts.counters) {
      // read while the hostile port is still open: once it dies the port is reaped
      const r = await runTool("vale-ctl", ["-l", "vale0", "--json"], dir, 15000);
      try {
        const p = JSON.parse(r.stdout).ports.find((p: { name: string }) => p.name === "h");
        res.counters = p
          ? { sync_errors: p.counters.sync_errors, bad_slot: p.counters.drops.bad_slot }
          : null;
      } catch {
        res.counters = null;
      }
    }
    h.signal("SIGKILL");
    const he = await h.exit(3000);
    if (SAN_RE.test(he.stderr)) res.sanitizer.push(`hostile: ${he.stderr.slice(0, 4000)}`);
    await sleep(150); // the honest peers keep flooding into what the hostile left behind
    a.signal("SIGINT");
    b.signal("SIGINT");
    const exits = await Promise.all([a.exit(3000), b.exit(3000)]);
    for (const e of exits) {
      const k = classify(e);
      if (k === "crashed") {
        res.crashed++;
        res.crashes.push(await symbolize(crashText(e), bins.lib));
      } else if (k === "hung") {
        res.hung++;
      }
      if (SAN_RE.test(e.stderr)) res.sanitizer.push(e.stderr.slice(0, 4000));
    }
    const probe = await runProg(bins.honest, ["probe", "vale0"], env, 6000);
    if (SAN_RE.test(probe.stderr)) res.sanitizer.push(`probe: ${probe.stderr.slice(0, 4000)}`);
    res.works = classify(probe) === "ok";
    if (!res.works) {
      // (bounded: on a damaged switch today's vale-ctl may hang in the same lock)
      const l = await runTool("vale-ctl", ["-l", "vale0"], dir, 6000);
      res.listing = (l.stdout + l.stderr).trim().slice(0, 300) ||
        `(probe: ${probe.hung ? "hung" : crashText(probe, 300)})`;
      const rm = await runTool("vale-ctl", ["--remove-switch", "vale0"], dir, 6000);
      let gone = false;
      try {
        Deno.statSync(`${dir}/vale0/ctl`);
      } catch {
        gone = true;
      }
      res.removable = rm.code === 0 && gone;
    }
  } finally {
    for (const p of procs) p.signal("SIGKILL");
    await Promise.all(procs.map((p) => p.exit(5000)));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return res;
}

export interface CaseRow {
  case: Case;
  trials: number;
  crashed: number;
  hung: number;
  broken: number;
  dead: number;
  secs: number;
}

/** Trials with a crashed / hung honest process; switches broken (probe failed) and dead (not removable either). */
export function row(c: Case, rs: TrialResult[], secs: number): CaseRow {
  return {
    case: c,
    trials: rs.length,
    crashed: rs.filter((r) => r.crashed > 0).length,
    hung: rs.filter((r) => r.hung > 0).length,
    broken: rs.filter((r) => !r.works).length,
    dead: rs.filter((r) => !r.works && !r.removable).length,
    secs,
  };
}

export function table(rows: CaseRow[]): string {
  const h = "case         trials crashed   hung broken   dead   secs";
  const l = rows.map((r) =>
    `${r.case.padEnd(12)} ${String(r.trials).padStart(6)} ${String(r.crashed).padStart(7)} ` +
    `${String(r.hung).padStart(6)} ${String(r.broken).padStart(6)} ${String(r.dead).padStart(6)} ` +
    `${r.secs.toFixed(1).padStart(6)}`
  );
  return [h, ...l].join("\n");
}
