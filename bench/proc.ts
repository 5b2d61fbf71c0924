// Process helpers for the side-by-side benchmark: spawn a child and read its
// output line by line, find a process's descendants, sample CPU time from
// /proc, and stop a process tree. Linux only (reads /proc).

const decoder = new TextDecoder();

/** Clock ticks per second for /proc times (sysconf(_SC_CLK_TCK)); 100 on Linux. */
export const CLK_TCK = 100;

/** A spawned child whose stdout and stderr lines are collected as they arrive. */
export class Child {
  readonly pid: number;
  /** The latest output lines of both streams (ANSI escapes removed), at most 20000. */
  readonly lines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  #proc: Deno.ChildProcess;
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void; stdoutOnly: boolean }[] = [];
  #listeners: ((line: string, isStdout: boolean) => void)[] = [];
  #exited = false;
  #pumps: Promise<void>[];

  constructor(readonly label: string, cmd: string[], opts: { env?: Record<string, string> } = {}) {
    this.#proc = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: opts.env,
    }).spawn();
    this.pid = this.#proc.pid;
    this.#pumps = [
      this.#pump(this.#proc.stdout, true),
      this.#pump(this.#proc.stderr, false),
    ];
    this.status = this.#proc.status.then(async (s) => {
      this.#exited = true;
      await Promise.all(this.#pumps);
      return s;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  async #pump(stream: ReadableStream<Uint8Array>, isStdout: boolean): Promise<void> {
    let buf = "";
    const dec = new TextDecoder(); // one per stream: it keeps partial UTF-8 sequences
    try {
      for await (const chunk of stream) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.search(/[\r\n]/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.length) this.#line(line, isStdout);
        }
        if (buf.length > 1 << 20) buf = buf.slice(-4096); // a runaway line without newline
      }
    } catch { /* stream closed when the child was killed */ }
    if (buf.length) this.#line(buf, isStdout);
  }

  #line(line: string, isStdout: boolean): void {
    // deno-lint-ignore no-control-regex
    line = line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ""); // testpmd clears the screen
    if (!line.trim()) return;
    this.lines.push(line);
    if (this.lines.length > 20000) this.lines.splice(0, 10000);
    for (const l of [...this.#listeners]) l(line, isStdout);
    for (const w of [...this.#waiters]) {
      if (w.stdoutOnly && !isStdout) continue;
      const m = line.match(w.re);
      if (m) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** Calls `fn` for every later output line (ANSI escapes removed); returns an unsubscribe. */
  onLine(fn: (line: string, isStdout: boolean) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      const i = this.#listeners.indexOf(fn);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /**
   * Resolves with the first line (from now on) matching `re`; rejects when the
   * child exits first or after `timeoutMs`.
   */
  waitLine(re: RegExp, timeoutMs: number, stdoutOnly = false): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const w = {
        re,
        stdoutOnly,
        resolve: (m: RegExpMatchArray) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(
          new Error(`${this.label}: no line matching ${re} within ${timeoutMs} ms${this.tail()}`),
        );
      }, timeoutMs);
      this.#waiters.push(w);
      this.status.then((s) => {
        if (!this.#waiters.includes(w)) return;
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        clearTimeout(timer);
        reject(new Error(`${this.label}: exited (code ${s.code}) before ${re}${this.tail()}`));
      });
    });
  }

  /** The last output lines, for error messages. */
  tail(n = 6): string {
    const t = this.lines.slice(-n);
    return t.length ? `\n  | ${t.join("\n  | ")}` : "";
  }

  /** SIGINT (or `signal`) the whole tree, SIGKILL what is left after `graceMs`. */
  async stop(signal: Deno.Signal = "SIGINT", graceMs = 2000): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      killTree(this.pid, signal);
      const timer = setTimeout(() => killTree(this.pid, "SIGKILL"), graceMs);
      try {
        await this.status;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.status;
  }
}

interface Stat {
  ppid: number;
  /** Kernel thread (PF_KTHREAD): ksoftirqd, kworkers… */
  kthread: boolean;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** cutime + cstime: ticks of children already reaped. */
  childTicks: number;
}

function readStat(pid: number): Stat | undefined {
  let s: string;
  try {
    s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return {
    ppid: Number(f[1]),
    kthread: (Number(f[6]) & 0x00200000) !== 0,
    ticks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
  };
}

/** Every process's /proc/<pid>/stat, by pid. */
function snapshot(): Map<number, Stat> {
  const out = new Map<number, Stat>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const st = readStat(Number(e.name));
    if (st) out.set(Number(e.name), st);
  }
  return out;
}

/** The pids and all their descendants, in a snapshot. */
function treeIn(snap: Map<number, Stat>, pids: number[]): Set<number> {
  const tree = new Set(pids.filter((p) => snap.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, st] of snap) {
      if (!tree.has(p) && tree.has(st.ppid)) {
        tree.add(p);
        grew = true;
      }
    }
  }
  return tree;
}

/** The pid and all its descendants (parents before children). */
export function processTree(pid: number): number[] {
  const snap = snapshot();
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [p, st] of snap) if (st.ppid === tree[i] && !tree.includes(p)) tree.push(p);
  }
  return tree;
}

/** Signals a process and its descendants (deepest first); ignores ones already gone. */
export function killTree(pid: number, signal: Deno.Signal): void {
  for (const p of processTree(pid).reverse()) {
    try {
      Deno.kill(p, signal);
    } catch { /* already exited */ }
  }
}

/** Busy and total CPU seconds of the whole machine so far (all CPUs), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/** What a CPU window measured, in cores (1 = one CPU busy for the whole window). */
export interface CpuUse {
  /** The row's processes and their descendants. */
  cpu: number;
  /** The whole machine (includes kernel softirq work done for the row, and anything else). */
  machineCpu: number;
  /** User-space processes that are not the row's (nor this runner): other load. */
  otherCpu: number;
  /** Wall time of the window, seconds. */
  secs: number;
}

/** A CPU-usage window over some processes, the whole machine and everything else. */
export class CpuWindow {
  #t0 = 0;
  #snap0 = new Map<number, Stat>();
  #mach0 = { busy: 0, total: 0 };
  #pids: number[] = [];

  /** Opens the window now. */
  open(pids: number[]): void {
    this.#pids = pids;
    this.#snap0 = snapshot();
    this.#mach0 = machineCpuSeconds();
    this.#t0 = performance.now();
  }

  /** Closes the window (the processes must still exist: their CPU time is read from /proc). */
  close(): CpuUse {
    const secs = (performance.now() - this.#t0) / 1000;
    const snap1 = snapshot();
    const m = machineCpuSeconds();
    const s0 = this.#snap0;
    const mine = treeIn(snap1, this.#pids);
    for (const p of treeIn(s0, this.#pids)) mine.add(p);
    mine.add(Deno.pid);
    let own = 0, other = 0;
    for (const [p, st] of snap1) {
      const before = s0.get(p);
      if (mine.has(p)) own += st.ticks - (before?.ticks ?? 0);
      else if (!st.kthread) {
        // its own time, plus children it reaped during the window (whole lifetimes) …
        other += st.ticks - (before?.ticks ?? 0) + st.childTicks - (before?.childTicks ?? 0);
      }
    }
    // … minus what those reaped children had already used when the window opened.
    for (const [p, st] of s0) {
      if (!snap1.has(p) && !mine.has(p) && !st.kthread) other -= st.ticks + st.childTicks;
    }
    other = Math.max(0, other);
    const per = (ticks: number) => (secs > 0 ? ticks / CLK_TCK / secs : 0);
    return {
      cpu: per(own),
      machineCpu: secs > 0 ? (m.busy - this.#mach0.busy) / secs : 0,
      otherCpu: per(other),
      secs,
    };
  }
}

/** Runs a command to completion; throws with its stderr on failure unless `allowFail`. */
export async function run(
  cmd: string[],
  opts: { allowFail?: boolean; stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await p.output();
  const res = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if (res.code !== 0 && !opts.allowFail) {
    throw new Error(
      `${cmd.join(" ")}: exit ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`,
    );
  }
  return res;
}

/** The absolute path of an executable on PATH (plus the sbin directories), or undefined. */
export function which(name: string): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin"]);
  for (const d of dirs) {
    if (!d) continue;
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && (st.mode ?? 0) & 0o111) return `${d}/${name}`;
    } catch { /* not here */ }
  }
  return undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function isAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until other load is gone: user-space processes that are not this
 * runner's (nor its children, e.g. a switch's busy-polling thread set up for
 * a row) use fewer than `threshold` cores over a 250 ms sample, or `maxWaitMs`
 * passed. Returns the last sample (cores).
 */
export async function waitQuiet(threshold: number, maxWaitMs: number): Promise<number> {
  const deadline = performance.now() + maxWaitMs;
  for (;;) {
    const w = new CpuWindow();
    w.open([Deno.pid]);
    await sleep(250);
    const other = w.close().otherCpu;
    if (other < threshold || performance.now() >= deadline) return other;
  }
}
