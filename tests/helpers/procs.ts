// Spawning test peers (tests/helpers/peer.ts) as separate processes.
const PEER = new URL("./peer.ts", import.meta.url).pathname;

export interface Peer {
  proc: Deno.ChildProcess;
  pid: number;
  /** Resolves with the peer's final JSON line. */
  result: Promise<Record<string, unknown>>;
  /** Resolves when the peer printed "ready". */
  ready: Promise<void>;
  go(): Promise<void>;
  kill(sig?: Deno.Signal): void;
}

export function spawnPeer(
  runDir: string,
  args: Record<string, unknown>,
  env: Record<string, string> = {},
): Peer {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PEER, JSON.stringify(args)],
    env: { VALE_RUN_DIR: runDir, ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let readyRes!: () => void, readyRej!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyRes = res;
    readyRej = rej;
  });
  let resultRes!: (v: Record<string, unknown>) => void;
  const result = new Promise<Record<string, unknown>>((res) => (resultRes = res));
  // the first JSON line is the result; the peer may stay alive afterwards (hold)
  const done = (async () => {
    const dec = new TextDecoder();
    let buf = "", got = false;
    for await (const chunk of proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === "ready") readyRes();
        else if (line.trim() && !got) {
          got = true;
          resultRes(JSON.parse(line));
        }
      }
    }
    const err = new TextDecoder().decode(await new Response(proc.stderr).arrayBuffer());
    const st = await proc.status;
    if (!got) {
      const e = new Error(`peer ${JSON.stringify(args)} exited ${st.code}/${st.signal}: ${err}`);
      readyRej(e);
      throw e;
    }
  })();
  const failed = done.then(() => new Promise<never>(() => {}));
  const resultOrFail = Promise.race([result, failed]);
  resultOrFail.catch(() => {});
  ready.catch(() => {});
  return {
    proc,
    pid: proc.pid,
    result: resultOrFail,
    ready,
    async go() {
      const w = proc.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n"));
      w.releaseLock();
    },
    kill(sig: Deno.Signal = "SIGKILL") {
      try {
        proc.kill(sig);
      } catch { /* already gone */ }
    },
  };
}

/** A private run directory in /dev/shm for one test, removed by the returned function. */
export async function tempRunDir(): Promise<
  { dir: string; [Symbol.asyncDispose](): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-test-" });
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

export async function closeStdin(p: Peer): Promise<void> {
  try {
    await p.proc.stdin.close();
  } catch { /* closed */ }
}

/** Script-mode peer: send a command line and get its JSON reply. */
export class ScriptPeer {
  #peer: Peer;
  #lines: AsyncIterator<string>;
  constructor(runDir: string, port: string, id: number) {
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", PEER, JSON.stringify({ port, id, mode: "script" })],
      env: { VALE_RUN_DIR: runDir },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const dec = new TextDecoder();
    async function* lines() {
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          yield buf.slice(0, i);
          buf = buf.slice(i + 1);
        }
      }
    }
    this.#lines = lines();
    this.#peer = {
      proc,
      pid: proc.pid,
      result: Promise.resolve({}),
      ready: Promise.resolve(),
      go: () => Promise.resolve(),
      kill: (s: Deno.Signal = "SIGKILL") => proc.kill(s),
    };
  }
  get pid(): number {
    return this.#peer.pid;
  }
  async ready(): Promise<void> {
    const l = await this.#lines.next();
    if (l.value !== "ready") throw new Error(`peer did not start: ${l.value}`);
  }
  async cmd(line: string): Promise<Record<string, unknown>> {
    const w = this.#peer.proc.stdin.getWriter();
    await w.write(new TextEncoder().encode(line + "\n"));
    w.releaseLock();
    const l = await this.#lines.next();
    if (l.done) throw new Error(`peer exited during '${line}'`);
    return JSON.parse(l.value);
  }
  async quit(): Promise<void> {
    try {
      const w = this.#peer.proc.stdin.getWriter();
      await w.write(new TextEncoder().encode("quit\n"));
      w.releaseLock();
      await this.#peer.proc.stdin.close();
    } catch { /* gone */ }
    await this.#peer.proc.status;
  }
}

/** Is `pid` a live process (not a zombie waiting to be reaped)? */
export function alive(pid: number): boolean {
  try {
    const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return st.slice(st.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * Live processes other than this one whose command line mentions `s` (a run
 * directory, a forwarder's port, QEMU's `-name vale-P-VM`), with that
 * command line (arguments joined by spaces).
 */
export function procsMentioning(s: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      if (cmd.includes(s) && alive(Number(e.name))) found.push({ pid: Number(e.name), cmd });
    } catch { /* gone */ }
  }
  return found;
}
