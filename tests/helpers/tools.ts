// Running the command-line tools as a user would: bin/<tool> in a subprocess,
// with real arguments and a private VALE_RUN_DIR, reading what they print.
import { switchInfo } from "../../lib/switch/control.ts";
import type { PortInfo } from "../../lib/switch/control.ts";

const BIN = new URL("../../bin/", import.meta.url).pathname;

/** A tool running in the background. */
export interface RunningTool {
  proc: Deno.ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when `re` matches stdout+stderr (rejects after timeoutMs or if the tool exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit status and all output once the tool exits. */
  done: Promise<{ code: number; signal: Deno.Signal | null; stdout: string; stderr: string }>;
  /** `done`, but SIGKILL the tool and fail if it has not exited within timeoutMs. */
  within(timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  signal(sig?: Deno.Signal): void;
}

/** Start `bin/<tool> args...` with VALE_RUN_DIR = runDir. */
export function startTool(tool: string, args: string[], runDir: string): RunningTool {
  const proc = new Deno.Command(BIN + tool, {
    args,
    env: { VALE_RUN_DIR: runDir, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "", errs = "";
  const waiters: { re: RegExp; res: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const m = (out + errs).match(waiters[i].re);
      if (m) {
        waiters[i].res(m);
        waiters.splice(i, 1);
      }
    }
  };
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const c of s) {
      add(dec.decode(c, { stream: true }));
      check();
    }
  };
  const p1 = pump(proc.stdout, (t) => out += t), p2 = pump(proc.stderr, (t) => errs += t);
  const done = (async () => {
    const st = await proc.status;
    await Promise.all([p1, p2]);
    return { code: st.code, signal: st.signal, stdout: out, stderr: errs };
  })();
  return {
    proc,
    stdout: () => out,
    stderr: () => errs,
    waitFor(re: RegExp, timeoutMs = 15000) {
      const m = (out + errs).match(re);
      if (m) return Promise.resolve(m);
      return new Promise((res, rej) => {
        const t = setTimeout(() => {
          rej(
            new Error(`${tool} ${args.join(" ")}: no ${re} within ${timeoutMs} ms:\n${out}${errs}`),
          );
        }, timeoutMs);
        const w = {
          re,
          res: (m: RegExpMatchArray) => {
            clearTimeout(t);
            res(m);
          },
        };
        waiters.push(w);
        done.then(() => {
          clearTimeout(t);
          const m = (out + errs).match(re);
          if (m) res(m);
          else rej(new Error(`${tool} ${args.join(" ")} exited before ${re}:\n${out}${errs}`));
        });
      });
    },
    done,
    async within(timeoutMs = 20000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<"timeout">((r) =>
        timer = setTimeout(() => r("timeout"), timeoutMs)
      );
      const r = await Promise.race([done, expired]);
      clearTimeout(timer);
      if (r === "timeout") {
        try {
          proc.kill("SIGKILL");
        } catch { /* gone */ }
        await done;
        throw new Error(
          `${tool} ${args.join(" ")}: still running after ${timeoutMs} ms:\n${out}${errs}`,
        );
      }
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
    signal(sig: Deno.Signal = "SIGINT") {
      try {
        proc.kill(sig);
      } catch { /* gone */ }
    },
  };
}

/** Run a tool to completion (killed with SIGKILL after timeoutMs). */
export async function runTool(
  tool: string,
  args: string[],
  runDir: string,
  timeoutMs = 30000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const t = startTool(tool, args, runDir);
  const timer = setTimeout(() => t.signal("SIGKILL"), timeoutMs);
  try {
    const { code, stdout, stderr } = await t.done;
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** A port's entry, or undefined. */
export function portOf(runDir: string, sw: string, name: string): PortInfo | undefined {
  try {
    return switchInfo(sw, { runDir }).ports.find((p) => p.name === name);
  } catch {
    return undefined;
  }
}

/** What `until` returns: its condition's value, known to be truthy. */
export type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/**
 * Polls `f` (which may be async) until it returns a truthy value and returns
 * that value; fails with `what` after timeoutMs. Every test's waits go
 * through this one loop, so a condition reported late (a worker's 500 ms
 * state report) is awaited the same way everywhere.
 */
export async function until<T>(
  f: () => T | Promise<T>,
  timeoutMs = 10000,
  what = "condition",
): Promise<Truthy<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v as Truthy<T>;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** pkt-gen's summary: "Sent|Received N packets B bytes E events S bytes each in T seconds." */
export function summary(
  stdout: string,
):
  | { verb: string; pkts: number; bytes: number; events: number; size: number; secs: number }
  | null {
  const m = stdout.match(
    /^(Sent|Received) (\d+) packets (\d+) bytes (\d+) events (\d+) bytes each in ([\d.]+) seconds\.$/m,
  );
  if (!m) return null;
  return {
    verb: m[1],
    pkts: +m[2],
    bytes: +m[3],
    events: +m[4],
    size: +m[5],
    secs: +m[6],
  };
}

/** The periodic rate lines pkt-gen printed (pps values). */
export function rateLines(stderr: string): { pps: number; pkts: number; usec: number }[] {
  const unit = (u: string) => ({ "": 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[u] ?? NaN);
  const re =
    /^\d{3}\.\d{6} main_thread \[\d+\] ([\d.]+) ([KMGT]?)pps (?:\[avg\/std [^\]]*\])?\(([\d.]+) ([KMGT]?)pkts ([\d.]+) ([KMGT]?)bps in (\d+) usec\) ([\d.]+) avg_batch (\d+) min_space$/gm;
  return [...stderr.matchAll(re)].map((m) => ({
    pps: +m[1] * unit(m[2]),
    pkts: +m[3] * unit(m[4]),
    usec: +m[7],
  }));
}

/**
 * Every drop the switch counted on a port (0 once the port is gone: a
 * receiver exits by itself only when it got all it waited for).
 */
export function ringDrops(runDir: string, sw: string, name: string): number {
  const d = portOf(runDir, sw, name)?.counters.drops;
  return d ? d.ring_full + d.bad_slot + d.no_dest + d.lookup + d.bad_vnet + d.too_big : 0;
}

/**
 * Reads a child's decoded output from `reader` onto `text` until it includes
 * `what` or the stream ends; returns the text read so far (the caller asserts
 * on it and may read on from there).
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  text: string,
  what: string,
): Promise<string> {
  while (!text.includes(what)) {
    const r = await reader.read();
    if (r.done) break;
    text += r.value;
  }
  return text;
}
