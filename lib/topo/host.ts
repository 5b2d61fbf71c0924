/**
 * A host of a running topology: a network namespace and its interfaces.
 * Commands run inside it with `ip netns exec` (so `/etc/netns/NS` and the
 * namespace's sysfs apply): `run` to completion, `spawn` for long-running
 * programs (stopped at teardown).
 *
 * @module
 */
import type { PlannedInterface } from "./spec.ts";
import { run, type RunOptions, type RunResult } from "./sys.ts";

/** Options of {@link Host.spawn}. */
export interface SpawnOptions {
  /** Standard output: piped (default), inherit or null. */
  stdout?: "piped" | "inherit" | "null";
  /** Standard error: piped (default), inherit or null. */
  stderr?: "piped" | "inherit" | "null";
  /** Standard input: null (default) or piped. */
  stdin?: "piped" | "null";
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** One interface of a host. */
export interface HostInterface {
  /** Its name inside the host (`eth0`). */
  name: string;
  /** Its MAC. */
  mac: string;
  /** IPv4 addresses with prefix length. */
  ip: string[];
  /** IPv6 addresses with prefix length. */
  ip6: string[];
  /** The switch it reaches (logical name). */
  switch: string;
  /** The switch port, full name (`valeP_s1:P-h1-0`). */
  port: string;
  /** veth or tap. */
  kind: "veth" | "tap";
}

/** A host: a network namespace of the topology. */
export class Host {
  /** Name in the topology (`h1`). */
  readonly name: string;
  /** Its network namespace (`vale-P-h1`). */
  readonly netns: string;
  /** Its interfaces, in link order. */
  readonly interfaces: HostInterface[];
  #onSpawn: (pid: number) => void;

  /** @internal built by the Network. */
  constructor(
    name: string,
    netns: string,
    ifs: PlannedInterface[],
    onSpawn: (pid: number) => void,
  ) {
    this.name = name;
    this.netns = netns;
    this.interfaces = ifs.map((i) => ({
      name: i.ifname,
      mac: i.mac,
      ip: i.ip,
      ip6: i.ip6,
      switch: i.switch,
      port: `${i.sw}:${i.port}`,
      kind: i.kind,
    }));
    this.#onSpawn = onSpawn;
  }

  /** The first IPv4 address, without prefix length (`10.0.0.1`); undefined if none. */
  get ip(): string | undefined {
    return this.interfaces.flatMap((i) => i.ip)[0]?.split("/")[0];
  }

  /** The first IPv6 address, without prefix length; undefined if none. */
  get ip6(): string | undefined {
    return this.interfaces.flatMap((i) => i.ip6)[0]?.split("/")[0];
  }

  /** The MAC of the first interface. */
  get mac(): string | undefined {
    return this.interfaces[0]?.mac;
  }

  /** Run a program inside the host to completion: `await h1.run(["ping", "-c1", h2.ip!])`. */
  run(cmd: string[], o: RunOptions = {}): Promise<RunResult> {
    return run("ip", ["netns", "exec", this.netns, ...cmd], { cwd: "/", ...o });
  }

  /** Run a shell command line inside the host (`sh -c`), as Mininet's `h1.cmd(...)`. */
  sh(line: string, o: RunOptions = {}): Promise<RunResult> {
    return this.run(["sh", "-c", line], o);
  }

  /**
   * Start a long-running program inside the host (`iperf3 -s`): it is stopped
   * (SIGTERM, then SIGKILL) when the topology goes down, if it has not ended.
   */
  spawn(cmd: string[], o: SpawnOptions = {}): Deno.ChildProcess {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.netns, ...cmd],
      cwd: "/",
      stdin: o.stdin ?? "null",
      stdout: o.stdout ?? "piped",
      stderr: o.stderr ?? "piped",
      env: o.env,
    }).spawn();
    this.#onSpawn(child.pid);
    return child;
  }

  /** A counter of one of the host's interfaces (`rx_packets`, `tx_bytes`, … of /sys/class/net/IF/statistics). */
  async ifCounter(
    stat: string,
    ifname: string | undefined = this.interfaces[0]?.name,
  ): Promise<number> {
    const r = await this.run(["cat", `/sys/class/net/${ifname}/statistics/${stat}`]);
    if (!r.success) throw new Error(`${this.name}: ${ifname} ${stat}: ${r.stderr.trim()}`);
    return Number(r.stdout.trim());
  }
}
