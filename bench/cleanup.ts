// Everything the benchmark creates (namespaces, processes, files) is
// registered here when created and undone in reverse order: at the end of a
// row, on error, and on SIGINT/SIGTERM. Nothing else is ever deleted.

import { isAlive, run } from "./proc.ts";

type Undo = { what: string; fn: () => unknown };

export class Cleanup {
  #stack: Undo[] = [];
  #running: Promise<void> | undefined;
  #signalsInstalled = false;
  #onSignal = () => {};

  /** Registers an undo step; returns a function that runs (and unregisters) just this step. */
  add(what: string, fn: () => unknown): () => Promise<void> {
    const u = { what, fn };
    this.#stack.push(u);
    return async () => {
      const i = this.#stack.indexOf(u);
      if (i < 0) return;
      this.#stack.splice(i, 1);
      await runUndo(u);
    };
  }

  /** Runs every registered step, newest first. Safe to call more than once. */
  runAll(): Promise<void> {
    this.#running ??= (async () => {
      while (this.#stack.length) await runUndo(this.#stack.pop()!);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** A child scope: its steps also run when the parent runs all. */
  scope(what: string): Cleanup {
    const child = new Cleanup();
    const remove = this.add(what, () => child.runAll());
    child.#detach = remove;
    return child;
  }
  #detach: (() => Promise<void>) | undefined;

  /** Runs this scope's steps and removes it from its parent. */
  async close(): Promise<void> {
    await this.runAll();
    await this.#detach?.();
  }

  /** On SIGINT/SIGTERM: run everything, then exit 130/143. */
  installSignalHandlers(log: (msg: string) => void): void {
    if (this.#signalsInstalled) return;
    this.#signalsInstalled = true;
    let exiting = false;
    const handler = (sig: "SIGINT" | "SIGTERM") => () => {
      if (exiting) return; // a second Ctrl-C while cleaning up: keep cleaning
      exiting = true;
      log(`\n${sig}: cleaning up…`);
      this.runAll().finally(() => Deno.exit(sig === "SIGINT" ? 130 : 143));
    };
    const onInt = handler("SIGINT");
    const onTerm = handler("SIGTERM");
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
    this.#onSignal = () => {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
    };
  }

  removeSignalHandlers(): void {
    this.#onSignal();
    this.#signalsInstalled = false;
  }
}

async function runUndo(u: Undo): Promise<void> {
  try {
    await u.fn();
  } catch (e) {
    console.error(`cleanup: ${u.what}: ${e instanceof Error ? e.message : e}`);
  }
}

/** Prefix of every namespace, DPDK file prefix and temp dir this tool creates: `vbench-<pid>-`. */
export function ownPrefix(pid = Deno.pid): string {
  return `vbench-${pid}-`;
}

/**
 * Removes leftovers of earlier runs that died without cleaning up (SIGKILL):
 * their processes (marked with VBENCH_OWNER in the environment), namespaces,
 * DPDK runtime dirs and temp dirs named `vbench-<pid>-*` whose pid no longer
 * exists. Returns what was removed.
 */
export async function removeStale(): Promise<string[]> {
  const removed: string[] = [];
  const stale = (name: string) => {
    const m = name.match(/^vbench-(\d+)-/);
    return m !== null && Number(m[1]) !== Deno.pid && !isAlive(Number(m[1]));
  };
  // Processes a dead run started: every child gets VBENCH_OWNER=vbench-<pid>- in its environment.
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let env = "";
    try {
      env = Deno.readTextFileSync(`/proc/${e.name}/environ`);
    } catch { /* gone, or not readable */ }
    const m = env.match(/(?:^|\0)VBENCH_OWNER=(vbench-\d+-)(?:\0|$)/);
    if (m && stale(m[1])) {
      try {
        Deno.kill(Number(e.name), "SIGKILL");
        removed.push(`process ${e.name}`);
      } catch { /* already gone */ }
    }
  }
  for (const dir of ["/run/netns", "/var/run/netns"]) {
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch { /* no namespaces */ }
    for (const n of names.filter(stale)) {
      const r = await run(["ip", "netns", "del", n], { allowFail: true });
      if (r.code === 0) removed.push(`netns ${n}`);
    }
  }
  for (const dir of ["/var/run/dpdk", Deno.env.get("TMPDIR") ?? "/tmp"]) {
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch { /* none */ }
    for (const n of names.filter(stale)) {
      try {
        Deno.removeSync(`${dir}/${n}`, { recursive: true });
        removed.push(`${dir}/${n}`);
      } catch { /* not ours to remove after all */ }
    }
  }
  return removed;
}
