/**
 * The system calls of a topology, as commands: `ip` (netns, link, addr,
 * route, neigh), running a program inside a namespace, and telling whether
 * a recorded process is still the one we started (pid and start time, so a
 * recycled pid is never killed).
 *
 * @module
 */
import { Errno, ValeError } from "../errors.ts";
import { denoRun } from "../deno_run.ts";

const dec = new TextDecoder();

/** What a finished command returned. */
export interface RunResult {
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
  /** Exit status 0. */
  success: boolean;
  /** Its standard output. */
  stdout: string;
  /** Its standard error. */
  stderr: string;
}

/** Options of a command run to completion. */
export interface RunOptions {
  /** Kill it after this many milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Text fed to its standard input. */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/** Run `cmd args` to completion, output captured. */
export async function run(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: o.stdin !== undefined ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: o.env,
      cwd: o.cwd,
      signal: AbortSignal.timeout(o.timeoutMs ?? 60000),
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ValeError(Errno.ENOENT, `${cmd}: command not found (scripts/install-deps.sh)`);
    }
    throw e;
  }
  if (o.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(o.stdin)).catch(() => {});
    await w.close().catch(() => {});
  }
  const r = await child.output();
  return {
    code: r.signal ? 128 + (SIGNALS[r.signal] ?? 0) : r.code,
    success: r.success,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
  };
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGABRT: 6 };

/** `ip ARGS`, throwing the command and its error when it fails. */
export async function ip(...args: string[]): Promise<string> {
  const r = await run("ip", args);
  if (!r.success) {
    throw new ValeError(
      Errno.EINVAL,
      `ip ${args.join(" ")}: ${r.stderr.trim() || `status ${r.code}`}`,
    );
  }
  return r.stdout;
}

/** Several `ip` commands in one process (`ip [-n NS] -batch -`). */
export async function ipBatch(netns: string | undefined, lines: string[]): Promise<void> {
  if (!lines.length) return;
  const r = await run("ip", [...(netns ? ["-n", netns] : []), "-batch", "-"], {
    stdin: lines.join("\n") + "\n",
  });
  if (!r.success) {
    throw new ValeError(
      Errno.EINVAL,
      `ip${netns ? ` -n ${netns}` : ""}: ${r.stderr.trim() || `status ${r.code}`} ` +
        `(commands: ${lines.join("; ")})`,
    );
  }
}

/** Network namespaces that exist (`ip netns list`). */
export async function netnsList(): Promise<string[]> {
  const r = await run("ip", ["netns", "list"]);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((x) => x);
}

/** Does interface `name` exist (in the root namespace, or in `netns`)? */
export function linkExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the processes inside namespace `netns` (`ip netns pids`). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run("ip", ["netns", "pids", netns]);
  return r.success ? r.stdout.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number) : [];
}

/** A process as recorded: pid and kernel start time (clock ticks since boot). */
export interface ProcRef {
  /** Process id. */
  pid: number;
  /** Field 22 of /proc/PID/stat, to tell a recycled pid. */
  start: string;
}

/** The start time of `pid`, or null if there is no such live process. */
export function procStart(pid: number): string | null {
  try {
    const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    if (f[0] === "Z" || f[0] === "X") return null;
    return f[19]; // starttime is field 22; f[0] is field 3
  } catch {
    return null;
  }
}

/** A reference to a live process. */
export function procRef(pid: number): ProcRef {
  return { pid, start: procStart(pid) ?? "" };
}

/** Is the recorded process still alive (and the same one)? */
export function procAlive(p: ProcRef | null | undefined): boolean {
  return !!p && p.pid > 0 && procStart(p.pid) === p.start;
}

/** Signal a recorded process if it is still the same one. */
export function signalProc(p: ProcRef, sig: Deno.Signal): boolean {
  if (!procAlive(p)) return false;
  try {
    Deno.kill(p.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Sleep. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Stop processes: `sig`, then SIGKILL after `graceMs`; resolves when all are gone (bounded). */
export async function stopProcs(ps: ProcRef[], sig: Deno.Signal, graceMs: number): Promise<void> {
  for (const p of ps) signalProc(p, sig);
  const end = Date.now() + graceMs;
  while (ps.some(procAlive) && Date.now() < end) await sleep(25);
  for (const p of ps) signalProc(p, "SIGKILL");
  const end2 = Date.now() + 2000;
  while (ps.some(procAlive) && Date.now() < end2) await sleep(25);
}

/** The command that runs a script of this package with Deno (`deno run -A SCRIPT ARGS`). */
export function denoScript(rel: string, args: string[]): { cmd: string; args: string[] } {
  return denoRun(new URL(rel, import.meta.url), args);
}
