// DPDK's testpmd as a vhost-user front-end (virtio-user) for the tests: one
// interactive dpdk-testpmd per call, without hugepages, its commands written
// to stdin, its output read back. `--file-prefix` is unique per instance and
// the runtime directory DPDK leaves in /var/run/dpdk is removed on close.

const enc = new TextEncoder();

/** Is dpdk-testpmd installed (scripts/install-deps.sh: dpdk-dev)? */
export function haveTestpmd(): boolean {
  try {
    return new Deno.Command("dpdk-testpmd", { args: ["--help"], stdout: "null", stderr: "null" })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

let seq = 0;

/** Port counters of `show port stats 0`. */
export interface PmdStats {
  rxPackets: number;
  txPackets: number;
}

/** One testpmd with a virtio-user port on a vhost-user socket. */
export class Testpmd {
  readonly prefix: string;
  readonly #proc: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  // stdout alone is matched: testpmd writes warnings to stderr, and a
  // combined stream can split its prompt ("testpmd" + "Error during
  // enabling promiscuous mode..." + "> "), which once made ready() wait out
  // its 30 s on a loaded CI machine. #all keeps both, for error messages.
  #out = "";
  #all = "";
  readonly #done: Promise<Deno.CommandStatus>;

  /**
   * `mode`: txonly, rxonly, io, macswap...; `server`: testpmd listens on the
   * socket (virtio-user's server=1) instead of connecting. `cpu`: the core.
   */
  constructor(
    sock: string,
    mode: string,
    opts: { server?: boolean; cpu?: number; txpkts?: number } = {},
  ) {
    this.prefix = `vhu${Deno.pid}x${seq++}`;
    const cpu = opts.cpu ?? 1;
    const vdev = `net_virtio_user0,path=${sock}${opts.server ? ",server=1" : ""}`;
    const args = [
      "--lcores",
      `0@${cpu},1@${cpu}`,
      "--no-pci",
      "--no-huge",
      "-m",
      "1024",
      "--file-prefix",
      this.prefix,
      "--log-level",
      "lib.eal:warning",
      "--vdev",
      vdev,
      "--",
      "-i",
      `--forward-mode=${mode}`,
      "--nb-cores=1",
      "--total-num-mbufs=8192",
      ...(opts.txpkts ? [`--txpkts=${opts.txpkts}`] : []),
    ];
    // stdbuf: testpmd's printf output is block-buffered on a pipe; line
    // buffering lets us read each command's answer as it comes
    const proc = new Deno.Command("stdbuf", {
      args: ["-oL", "dpdk-testpmd", ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#proc = proc;
    this.#stdin = proc.stdin.getWriter();
    const pump = async (s: ReadableStream<Uint8Array>, isStdout: boolean) => {
      const dec = new TextDecoder();
      for await (const c of s) {
        const t = dec.decode(c, { stream: true });
        if (isStdout) this.#out += t;
        this.#all += t;
      }
    };
    const pumps = Promise.all([pump(proc.stdout, true), pump(proc.stderr, false)]);
    this.#done = (async () => {
      const st = await proc.status;
      await pumps;
      return st;
    })();
  }

  /** Everything printed so far (stdout and stderr). */
  get output(): string {
    return this.#all;
  }

  /** Waits until standard output (from offset `from`) matches `re`. */
  async waitFor(re: RegExp, timeoutMs = 30000, from = 0): Promise<RegExpMatchArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#out.slice(from).match(re);
      if (m) return m;
      if (Date.now() > end) {
        throw new Error(`testpmd: no ${re} within ${timeoutMs} ms:\n${this.#all.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Ready for commands (the port is probed and started). */
  ready(timeoutMs = 30000): Promise<RegExpMatchArray> {
    return this.waitFor(/testpmd> /, timeoutMs);
  }

  /** Sends one command line. */
  async cmd(line: string): Promise<void> {
    await this.#stdin.write(enc.encode(line + "\n"));
  }

  /** `show port stats 0`: the port's packet counters. */
  async stats(): Promise<PmdStats> {
    const from = this.#out.length;
    await this.cmd("show port stats 0");
    const m = await this.waitFor(
      /RX-packets:\s+(\d+)\s+RX-missed[\s\S]*?TX-packets:\s+(\d+)\s+TX-errors/,
      10000,
      from,
    );
    return { rxPackets: Number(m[1]), txPackets: Number(m[2]) };
  }

  /** `quit`, then SIGKILL if it has not exited within timeoutMs; removes DPDK's runtime dir. */
  async close(timeoutMs = 10000): Promise<void> {
    try {
      await this.cmd("quit");
      await this.#stdin.close();
    } catch { /* gone */ }
    const t = setTimeout(() => this.kill(), timeoutMs);
    await this.#done;
    clearTimeout(t);
    this.removeRuntimeDir();
  }

  /** SIGKILL (a crashed front-end). */
  kill(): void {
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* gone */ }
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  removeRuntimeDir(): void {
    for (
      const base of ["/var/run/dpdk", `${Deno.env.get("XDG_RUNTIME_DIR") ?? "/nonexistent"}/dpdk`]
    ) {
      try {
        Deno.removeSync(`${base}/${this.prefix}`, { recursive: true });
      } catch { /* not there */ }
    }
  }
}
