/**
 * `vale topo`: topologies from a JSON file (lib/topo/). `up FILE` brings one
 * up and returns (it stays up: forwarders and bridges are their own
 * processes) or, with `-f`, stays in the foreground until Ctrl-C and tears
 * it down then; `down FILE|NAME` removes it (also what a killed process left);
 * `status [FILE|NAME]` shows hosts, links, bridges, switch ports and
 * counters; `check FILE` validates a file and prints the names it would
 * create.
 *
 * @module
 */
import { ValeError } from "../lib/errors.ts";
import { runDir as defaultRunDir } from "../lib/rundir.ts";
import { bringUp, tearDown } from "../lib/topo/lifecycle.ts";
import { Network, type TopologyStatus } from "../lib/topo/network.ts";
import {
  planTopology,
  TopologyError,
  type TopologySpec,
  validateTopology,
} from "../lib/topo/spec.ts";
import { listStates, readState, statePath } from "../lib/topo/state.ts";
import { procAlive, signalProc, sleep } from "../lib/topo/sys.ts";
import { Topology } from "../lib/topo/topology.ts";
import { err, out, parseCommand } from "./common.ts";

/** The usage text. */
export const USAGE = `Usage: vale topo up [-f] [-n NAME] FILE
       vale topo down [-n NAME] FILE|NAME
       vale topo status [--json] [-n NAME] [FILE|NAME]
       vale topo check [-n NAME] FILE

Test topologies from a JSON file (docs/topology.md): switches, hosts (network
namespaces with addresses, routes, MTU), host links (veth or TAP, attached by
supervised forwarders), VMs (QEMU guests on vhost-user ports or TAPs), bridges
between switches, lookup modules.

Commands:
  up FILE        bring the topology up and return; it stays up until "down"
                 (leftovers of a killed run of the same topology are removed first)
  down FILE|NAME tear it down: processes in its hosts, VMs, bridges, forwarders,
                 interfaces, namespaces, switches, its state file
  status         every topology of the run directory, one line each;
                 with FILE|NAME: its hosts, VMs, links, bridges, switch ports, counters
  check FILE     validate FILE and print the names it would create

Options:
  -f, --foreground  up: stay in the foreground; Ctrl-C (SIGINT) or SIGTERM tears
                    the topology down, then vale exits with status 0
  -n, --name NAME   use NAME as the topology name (the prefix of every name it
                    creates) instead of the file's "name": one file, several copies
      --json        status: print JSON
  -q, --quiet       up, down: no progress messages
  -h, --help        this text

Exit status: 0 done; 1 failed (the message says why; a failed up leaves nothing
behind); 2 bad usage or an invalid topology file (the message names the field);
130 up interrupted by Ctrl-C (what it had made is torn down).
Environment: VALE_RUN_DIR, where switches and topology state live (default /dev/shm/vale).
`;

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** The spec of FILE, renamed by --name. */
async function loadSpec(file: string, name?: string): Promise<TopologySpec> {
  const t = await Topology.load(file);
  return name ? validateTopology({ ...t.spec, name }, file) : t.spec;
}

/** FILE or NAME → the topology name. */
async function nameOf(arg: string, name?: string): Promise<string> {
  if (name) return name;
  if (isFile(arg) || arg.endsWith(".json")) return (await loadSpec(arg)).name;
  return arg;
}

/** vale topo's main(); returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const p = parseCommand("vale topo", USAGE, args, {
    foreground: { type: "boolean", short: "f" },
    name: { type: "string", short: "n" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
  }, 2);
  if (typeof p === "number") return p;
  const o = p.values;
  const [cmd, ...rest] = p.positionals;
  const log = o.quiet ? () => {} : (m: string) => err(`vale topo: ${m}\n`);
  const need = (n: number, what: string): boolean => {
    if (rest.length === n) return true;
    err(`vale topo ${cmd}: expected ${what}\n\n${USAGE}`);
    return false;
  };
  try {
    switch (cmd) {
      case "up":
        if (!need(1, "one topology FILE")) return 2;
        return await up(await loadSpec(rest[0], o.name), !!o.foreground, log);
      case "down":
        if (!need(1, "a topology FILE or NAME")) return 2;
        return await down(await nameOf(rest[0], o.name), log);
      case "status":
        if (rest.length > 1) return need(1, "at most one FILE or NAME") ? 0 : 2;
        return await status(rest.length ? await nameOf(rest[0], o.name) : o.name, !!o.json);
      case "check": {
        if (!need(1, "one topology FILE")) return 2;
        const plan = planTopology(await loadSpec(rest[0], o.name));
        out(`${rest[0]}: valid; topology ${plan.name} would create:\n`);
        for (const s of plan.switches) {
          out(`  switch ${s.sw}${s.lookup ? ` (lookup ${s.lookup})` : ""}\n`);
        }
        for (const h of plan.hosts) out(`  namespace ${h.netns}\n`);
        for (const v of plan.vms) out(`  VM ${v.name} (QEMU, ${v.spec.memoryMiB ?? 256} MiB)\n`);
        for (const i of plan.ifs) {
          out(
            `  ${i.kind} ${
              i.kind === "veth" || i.vm
                ? `${i.port} <-> ${i.host}:${i.ifname}`
                : `${i.host}:${i.port}`
            }` +
              ` on ${i.sw}, MAC ${i.mac}\n`,
          );
        }
        for (const b of plan.bridges) out(`  bridge ${b.portA} <-> ${b.portB}\n`);
        return 0;
      }
      case undefined:
        err(USAGE);
        return 2;
      default:
        err(`vale topo: unknown command '${cmd}'\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof TopologyError) {
      err(`vale topo: ${e.message}\n`);
      return 2;
    }
    err(`vale topo: ${e instanceof ValeError || e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function up(
  spec: TopologySpec,
  foreground: boolean,
  log: (m: string) => void,
): Promise<number> {
  // a Ctrl-C during bring-up stops it at the next step; it tears down what it made
  const ac = new AbortController();
  const onSig = () => {
    log("interrupted; tearing down what was made");
    ac.abort(new Error(`bringing ${spec.name} up was interrupted (torn down)`));
  };
  for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, onSig);
  let st;
  try {
    st = await bringUp(spec, { detached: !foreground, log, signal: ac.signal });
  } catch (e) {
    if (ac.signal.aborted) {
      err(`vale topo: ${(e as Error).message}\n`);
      return 130;
    }
    throw e;
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(s, onSig);
  }
  const plan = planTopology(spec);
  const what = `${plan.hosts.length} hosts, ${plan.vms.length ? `${plan.vms.length} VMs, ` : ""}` +
    `${plan.switches.length} switches, ` +
    `${plan.ifs.length + plan.bridges.length} links`;
  if (ac.signal.aborted) { // after the last step: finished, but not wanted any more
    await tearDown(st);
    log(`topology ${spec.name} torn down`);
    return 130;
  }
  if (!foreground) {
    out(
      `topology ${spec.name} is up: ${what} (vale topo status ${spec.name}; vale topo down ${spec.name})\n`,
    );
    return 0;
  }
  // foreground: up until SIGINT/SIGTERM, then down
  const net = new Network(st, true, false);
  const stop = Promise.withResolvers<string>();
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => {
    const h = () => stop.resolve(s);
    Deno.addSignalListener(s, h);
    return [s, h] as const;
  });
  out(`topology ${spec.name} is up: ${what}; Ctrl-C tears it down\n`);
  const sig = await stop.promise;
  log(`${sig}: tearing ${spec.name} down`);
  const removed = await net.down();
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  log(`topology ${spec.name} torn down (${removed.length} things removed)`);
  return 0;
}

async function down(name: string, log: (m: string) => void): Promise<number> {
  const rd = defaultRunDir();
  const st = readState(name, rd);
  if (!st) {
    log(`topology ${name} is not up (no ${statePath(name, rd)})`);
    return 0;
  }
  if (st.owner && procAlive(st.owner)) {
    // a process keeps it up (vale topo up -f, a script): ask it to tear down
    log(`asking process ${st.owner.pid}, which keeps ${name} up, to tear it down (SIGTERM)`);
    signalProc(st.owner, "SIGTERM");
    const end = Date.now() + 20000;
    while (readState(name, rd) && procAlive(st.owner) && Date.now() < end) await sleep(100);
  }
  const left = readState(name, rd);
  const removed = left ? await tearDown(left) : [];
  log(`topology ${name} is down${removed.length ? `: removed ${removed.join(", ")}` : ""}`);
  return 0;
}

async function status(name: string | undefined, json: boolean): Promise<number> {
  const rd = defaultRunDir();
  if (!name) {
    const all = await Promise.all(
      listStates(rd).map((st) => new Network(st, false, false).status()),
    );
    if (json) {
      out(JSON.stringify(all, null, 1) + "\n");
      return 0;
    }
    if (!all.length) {
      out(`no topologies in ${rd}\n`);
      return 0;
    }
    out(`${"NAME".padEnd(10)} ${"STATE".padEnd(9)} ${"OWNER".padEnd(8)} HOSTS SWITCHES LINKS\n`);
    for (const s of all) {
      out(
        `${s.name.padEnd(10)} ${s.state.padEnd(9)} ${String(s.owner || "-").padEnd(8)} ` +
          `${String(s.hosts.length).padEnd(5)} ${String(s.switches.length).padEnd(8)} ` +
          `${s.links.length + s.bridges.length}\n`,
      );
    }
    return 0;
  }
  const st = readState(name, rd);
  if (!st) {
    err(`vale topo: no topology ${name} is up in ${rd}\n`);
    return 1;
  }
  const s = await new Network(st, false, false).status();
  if (json) out(JSON.stringify(s, null, 1) + "\n");
  else out(formatStatus(s));
  return 0;
}

/** The text of `vale topo status NAME`. */
export function formatStatus(s: TopologyStatus): string {
  const L: string[] = [];
  L.push(
    `topology ${s.name}: ${s.state}${s.owner ? ` (kept up by pid ${s.owner})` : " (detached)"}, ` +
      `run dir ${s.runDir}`,
  );
  L.push("hosts:");
  for (const h of s.hosts) {
    L.push(`  ${h.name.padEnd(8)} ${h.netns}${h.present ? "" : " (namespace missing)"}`);
    for (const i of h.interfaces) {
      L.push(
        `    ${i.name.padEnd(15)} ${i.mac} ${
          [...i.ip, ...i.ip6].join(" ") || "-"
        } -> ${i.switch} (${i.kind})`,
      );
    }
  }
  if (s.vms.length) L.push("vms:");
  for (const v of s.vms) {
    L.push(
      `  ${v.name.padEnd(8)} QEMU pid ${v.pid || "-"} ${
        v.running ? "running" : "NOT RUNNING"
      }, console ${v.log}`,
    );
    for (const i of v.interfaces) {
      L.push(
        `    ${i.name.padEnd(15)} ${i.mac} ${
          [...i.ip, ...i.ip6].join(" ") || "-"
        } -> ${i.switch} (${i.kind})`,
      );
    }
  }
  if (s.links.length) L.push("links:");
  for (const l of s.links) {
    L.push(
      `  ${`${l.host}:${l.ifname}`.padEnd(20)} ${l.port.padEnd(30)} ${l.kind.padEnd(4)} ` +
        `forwarder ${l.forwarder}${l.pid ? ` pid ${l.pid}` : ""}`,
    );
  }
  if (s.bridges.length) L.push("bridges:");
  for (const b of s.bridges) {
    L.push(`  ${b.a} <-> ${b.b}  pid ${b.pid || "-"} ${b.running ? "running" : "NOT RUNNING"}`);
  }
  L.push("switches:");
  for (const sw of s.switches) {
    L.push(`  ${sw.name} = ${sw.sw}, lookup ${sw.lookup}, ${sw.ports.length} ports`);
    if (sw.ports.length) {
      L.push(
        `    ${"PORT".padEnd(16)} ${"TX_PKTS".padStart(10)} ${"TX_BYTES".padStart(12)} ` +
          `${"RX_PKTS".padStart(10)} ${"RX_BYTES".padStart(12)} ${"DROPS".padStart(7)}  OWNER`,
      );
    }
    for (const p of sw.ports) {
      const c = p.counters, d = c.drops;
      const drops = d.ring_full + d.bad_slot + d.no_dest + d.lookup;
      L.push(
        `    ${p.name.padEnd(16)} ${String(c.tx_packets).padStart(10)} ${
          String(c.tx_bytes).padStart(12)
        } ` +
          `${String(c.rx_packets).padStart(10)} ${String(c.rx_bytes).padStart(12)} ` +
          `${String(drops).padStart(7)}  ${p.owner_pid || p.fwd_pid || "-"}`,
      );
    }
  }
  return L.join("\n") + "\n";
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
