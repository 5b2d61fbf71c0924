/**
 * Bringing a topology up and tearing it down, and nothing else.
 *
 * Up, in order: namespaces (loopback up; IPv6 off in hosts without IPv6
 * addresses, so the kernel sends nothing on its own), host links (a veth pair
 * whose root end is attached by the supervised forwarder of lib/attach/, or a
 * TAP the forwarder creates inside the host), bridges between switches (the
 * `bridge` tool, a detached process), lookup modules, then the hosts'
 * addresses, links up, routes and static ARP. Each thing is recorded in the
 * state file before it is made, so a process killed at any instruction
 * leaves a record of all it may have created; a failed `up` tears down what
 * it made.
 *
 * Down, in reverse: processes inside the hosts, bridges, attachments
 * (forwarders, their ports and TAPs), veths, namespaces, switches, the state
 * file. Everything is looked up before it is removed, so `down` of a half-made
 * or already half-removed topology works and can be repeated.
 *
 * @module
 */
import {
  attachInterface,
  detachInterface,
  findAttachment,
  missingPrivileges,
} from "../attach/attach.ts";
import { Errno, ValeError } from "../errors.ts";
import { runDir as defaultRunDir } from "../rundir.ts";
import { configLookup, reap, removeSwitch, setLookup, switchInfo } from "../switch/control.ts";
import {
  type Plan,
  type PlannedInterface,
  planTopology,
  sameSubnet4,
  type TopologySpec,
} from "./spec.ts";
import { createState, readState, removeState, type TopologyState, writeState } from "./state.ts";
import {
  denoScript,
  ip,
  ipBatch,
  linkExists,
  netnsList,
  netnsPids,
  procAlive,
  procRef,
  run,
  sleep,
  stopProcs,
} from "./sys.ts";

/** Options of bringing a topology up. */
export interface UpOptions {
  /** Run directory of the switches (default `$VALE_RUN_DIR`, `/dev/shm/vale`). */
  runDir?: string;
  /**
   * Leave it up when this process ends (`vale topo up`): no owner process,
   * `down` removes it. Default false: this process owns it.
   */
  detached?: boolean;
  /** Progress messages (default: none). */
  log?: (msg: string) => void;
  /** Longest wait for one forwarder or bridge to be ready (default 20 s). */
  timeoutMs?: number;
  /** Abort the bring-up (between steps): what was made is torn down and `up` throws. */
  signal?: AbortSignal;
}

/** Is the topology's owner alive? */
export function ownerAlive(st: TopologyState): boolean {
  return procAlive(st.owner);
}

/**
 * Bring `spec` (valid: see validateTopology) up; returns its state. Leftovers
 * of the same topology whose process died are removed first (their
 * description is passed to `log`). EBUSY if it is up already, EEXIST if a
 * name it needs is taken by something it did not create, EPERM without the
 * privileges.
 */
export async function bringUp(spec: TopologySpec, o: UpOptions = {}): Promise<TopologyState> {
  const plan = planTopology(spec);
  const rd = defaultRunDir(o.runDir);
  const log = o.log ?? (() => {});
  const miss = missingPrivileges("auto", "netns");
  if (miss.length) {
    throw new ValeError(
      Errno.EPERM,
      `a topology needs ${miss.join(", ")} (namespaces, interfaces, attachments): run as root`,
    );
  }
  const prev = readState(spec.name, rd);
  if (prev) {
    if (ownerAlive(prev)) {
      throw new ValeError(
        Errno.EBUSY,
        `topology ${spec.name} is up, kept by process ${prev.owner!.pid} ` +
          `(end it, or: vale topo down ${spec.name})`,
      );
    }
    if (!prev.owner && prev.complete) {
      throw new ValeError(
        Errno.EBUSY,
        `topology ${spec.name} is already up (since ${prev.created}; vale topo down ${spec.name})`,
      );
    }
    const removed = await tearDown(prev);
    log(
      `removed what topology ${spec.name} left behind (its process ${
        prev.owner?.pid ?? "?"
      } died): ${removed.length ? removed.join(", ") : "nothing was left"}`,
    );
  }
  await checkFree(plan, rd);
  const st: TopologyState = {
    version: 1,
    name: spec.name,
    runDir: rd,
    spec,
    owner: procRef(Deno.pid),
    complete: false,
    created: new Date().toISOString(),
    netns: [],
    links: [],
    attachments: [],
    bridges: [],
    switches: [],
    procs: [],
  };
  if (!createState(st)) {
    throw new ValeError(
      Errno.EBUSY,
      `topology ${spec.name} is being brought up by another process`,
    );
  }
  try {
    await create(st, plan, rd, log, o.timeoutMs ?? 20000, o.signal);
    st.complete = true;
    if (o.detached) st.owner = null;
    writeState(st);
    return st;
  } catch (e) {
    log(`bringing ${spec.name} up failed; tearing down what was made`);
    await tearDown(st).catch(() => {});
    throw e;
  }
}

/** Refuse names that exist but are not ours (after our own leftovers were removed). */
async function checkFree(plan: Plan, rd: string): Promise<void> {
  const nss = await netnsList();
  for (const h of plan.hosts) {
    if (nss.includes(h.netns)) {
      throw new ValeError(
        Errno.EEXIST,
        `namespace ${h.netns} exists and is not recorded by topology ${plan.name} ` +
          `(ip netns del ${h.netns}, or choose another topology name)`,
      );
    }
  }
  for (const i of plan.ifs) {
    if (i.kind === "veth" && linkExists(i.port)) {
      throw new ValeError(
        Errno.EEXIST,
        `interface ${i.port} exists and is not recorded by topology ${plan.name} ` +
          `(ip link del ${i.port}, or choose another topology name)`,
      );
    }
  }
  for (const s of plan.switches) {
    try {
      Deno.lstatSync(`${rd}/${s.sw}`);
      throw new ValeError(
        Errno.EEXIST,
        `switch ${s.sw} exists and is not recorded by topology ${plan.name} ` +
          `(vale-ctl -r ${s.sw}, or choose another topology name)`,
      );
    } catch (e) {
      if (e instanceof ValeError) throw e;
    }
  }
}

/** What creating one thing needs: the state to record it in, the run dir, the wait limit. */
interface Ctx {
  st: TopologyState;
  rd: string;
  timeoutMs: number;
  /** Record, then persist (before the thing is made). */
  rec: (f: () => void) => void;
}

/**
 * How each kind of host link is made. Teardown needs no entry: it removes
 * what the state records (attachments, root-namespace links, processes).
 * A VM link (a QEMU guest on a vhost-user port of the switch) would be one
 * more entry: attach `valeX:vhost:SOCKET`, start QEMU detached, record its
 * process in `st.procs`.
 */
const LINK_KINDS: Record<
  PlannedInterface["kind"],
  (c: Ctx, i: PlannedInterface, ns: string) => Promise<void>
> = {
  // a veth pair: the host's end inside, the root end attached by a forwarder
  async veth(c, i, ns) {
    const mtu = i.mtu ? ["mtu", String(i.mtu)] : [];
    c.rec(() => c.st.links.push(i.port));
    await ip(
      "link",
      "add",
      i.port,
      ...mtu,
      "type",
      "veth",
      "peer",
      "name",
      i.ifname,
      ...mtu,
      "netns",
      ns,
    );
    // the root end carries nothing of its own (no IPv6 link-local chatter)
    try {
      Deno.writeTextFileSync(`/proc/sys/net/ipv6/conf/${i.port}/disable_ipv6`, "1");
    } catch { /* no IPv6 */ }
    await ipBatch(ns, [`link set ${i.ifname} address ${i.mac}`]);
    await ip("link", "set", i.port, "up");
    c.rec(() => c.st.attachments.push(`${i.sw}:${i.port}`));
    await attachInterface(`${i.sw}:${i.port}`, { runDir: c.rd, timeoutMs: c.timeoutMs });
  },
  // a TAP created inside the host by the forwarder, which serves its fd side
  async tap(c, i, ns) {
    c.rec(() => c.st.attachments.push(`${i.sw}:${i.port}`));
    await attachInterface(`${i.sw}:tap:${i.port}`, {
      runDir: c.rd,
      netns: ns,
      timeoutMs: c.timeoutMs,
    });
    await ipBatch(ns, [`link set ${i.port} address ${i.mac}${i.mtu ? ` mtu ${i.mtu}` : ""}`]);
  },
};

async function create(
  st: TopologyState,
  plan: Plan,
  rd: string,
  log: (m: string) => void,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const rec = (f: () => void) => {
    f();
    writeState(st);
  };
  const c: Ctx = { st, rd, timeoutMs, rec };
  // between steps: an interrupted bring-up stops there (and is torn down)
  const step = () => signal?.throwIfAborted();
  // hosts
  await Promise.all(plan.hosts.map(async (h) => {
    rec(() => st.netns.push(h.netns));
    await ip("netns", "add", h.netns);
    await ip("-n", h.netns, "link", "set", "lo", "up");
    const v6 = h.ifs.some((i) => i.ip6.length);
    const sysctls = v6
      ? ["net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"]
      : ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];
    const r = await run("ip", ["netns", "exec", h.netns, "sysctl", "-qw", ...sysctls]);
    if (!r.success) log(`${h.netns}: sysctl ${sysctls.join(" ")}: ${r.stderr.trim()}`);
  }));
  log(`namespaces: ${plan.hosts.map((h) => h.netns).join(" ")}`);
  for (const s of plan.switches) rec(() => st.switches.push(s.sw));
  step();

  // host links
  await Promise.all(plan.ifs.map((i) => LINK_KINDS[i.kind](c, i, `vale-${plan.name}-${i.host}`)));
  step();
  if (plan.ifs.length) {
    log(`links: ${plan.ifs.map((i) => `${i.host}:${i.ifname}-${i.switch}`).join(" ")}`);
  }

  // bridges between switches
  await Promise.all(plan.bridges.map((b) => startBridge(st, b.portA, b.portB, rd, timeoutMs, rec)));
  if (plan.bridges.length) log(`bridges: ${plan.bridges.map((b) => `${b.a}-${b.b}`).join(" ")}`);
  step();

  // lookup modules, once the switches exist
  for (const s of plan.switches) {
    if (s.lookup) setLookup(s.sw, s.lookup, { runDir: rd });
    for (const req of s.lookupConfig) configLookup(s.sw, req, { runDir: rd });
  }

  step();

  // addresses, links up, routes, neighbours
  await Promise.all(plan.hosts.map(async (h) => {
    const lines: string[] = [];
    for (const i of h.ifs) {
      for (const a of i.ip) lines.push(`addr add ${a} dev ${i.ifname}`);
      for (const a of i.ip6) lines.push(`addr add ${a} dev ${i.ifname} nodad`); // the family follows the address
      lines.push(`link set ${i.ifname} up`);
    }
    await ipBatch(h.netns, lines);
    const routes = h.routes.map((r) => {
      const v6 = r.to.includes(":") || (r.via ?? "").includes(":");
      const to = r.to === "default" && v6 ? "::/0" : r.to; // -6 is not accepted in a batch
      return `route add ${to}${r.via ? ` via ${r.via}` : ""}${r.dev ? ` dev ${r.dev}` : ""}`;
    });
    await ipBatch(h.netns, routes);
    if (plan.staticArp) {
      const neigh: string[] = [];
      for (const mine of h.ifs) {
        for (const other of plan.ifs) {
          if (other.host === h.name) continue;
          for (const a of other.ip) {
            if (mine.ip.some((m) => sameSubnet4(m, a))) {
              neigh.push(
                `neigh replace ${
                  a.split("/")[0]
                } lladdr ${other.mac} dev ${mine.ifname} nud permanent`,
              );
            }
          }
        }
      }
      await ipBatch(h.netns, neigh);
    }
  }));
}

/** Start `bridge -i A -i B` detached, record it, wait until it holds both ports. */
async function startBridge(
  st: TopologyState,
  portA: string,
  portB: string,
  rd: string,
  timeoutMs: number,
  rec: (f: () => void) => void,
): Promise<void> {
  const c = denoScript("../../cli/bridge.ts", ["-i", portA, "-i", portB]);
  const child = new Deno.Command(c.cmd, {
    args: c.args,
    cwd: "/",
    detached: true,
    env: { VALE_RUN_DIR: rd },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const ref = procRef(child.pid);
  rec(() => st.bridges.push(ref));
  child.unref();
  // keep what it says on failure; a running bridge is quiet
  let errText = "";
  (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of child.stderr) errText = (errText + dec.decode(chunk)).slice(-2000);
    } catch { /* closed */ }
  })();
  child.status.catch(() => {});
  const [swA, pA] = portA.split(":"), [swB, pB] = portB.split(":");
  const holds = (sw: string, p: string) => {
    try {
      return switchInfo(sw, { runDir: rd }).ports.some((x) =>
        x.name === p && x.owner_pid === child.pid
      );
    } catch {
      return false;
    }
  };
  const end = Date.now() + timeoutMs;
  while (!(holds(swA, pA) && holds(swB, pB))) {
    if (!procAlive(ref)) {
      await sleep(50);
      throw new ValeError(
        Errno.EINVAL,
        `bridge -i ${portA} -i ${portB} exited: ${errText.trim() || "(no message)"}`,
      );
    }
    if (Date.now() > end) {
      throw new ValeError(
        Errno.ETIMEDOUT,
        `bridge -i ${portA} -i ${portB} not ready in ${timeoutMs / 1000} s`,
      );
    }
    await sleep(50);
  }
}

/**
 * Remove everything the state records (whatever still exists), then the
 * state file. Returns what was removed, for messages. If something cannot
 * be removed, the state file stays and a ValeError (EBUSY) says what.
 */
export async function tearDown(st: TopologyState): Promise<string[]> {
  const done: string[] = [];
  const problems: string[] = [];
  const rd = st.runDir;
  // 1. processes in the hosts (host.spawn, and anything else started there)
  const inHosts = [...st.procs.filter(procAlive)];
  for (const ns of st.netns) for (const pid of await netnsPids(ns)) inHosts.push(procRef(pid));
  if (inHosts.length) {
    await stopProcs(inHosts, "SIGTERM", 1000);
    done.push(`${inHosts.length} process(es) in the hosts`);
  }
  // 2. bridges: SIGINT is bridge's clean stop
  const bridges = st.bridges.filter(procAlive);
  if (bridges.length) {
    await stopProcs(bridges, "SIGINT", 2000);
    done.push(`bridge pid ${bridges.map((b) => b.pid).join(", ")}`);
  }
  // 3. attachments: forwarders, their switch ports and TAPs
  await Promise.all(st.attachments.map(async (a) => {
    if (!findAttachment(a, { runDir: rd })) return;
    try {
      await detachInterface(a, { runDir: rd });
      done.push(`attachment ${a}`);
    } catch (e) {
      problems.push(`attachment ${a}: ${(e as Error).message}`);
    }
  }));
  // 4. veths (deleting the root end deletes the host's end)
  for (const l of st.links) {
    if (!linkExists(l)) continue;
    const r = await run("ip", ["link", "del", l]);
    if (r.success) done.push(`interface ${l}`);
    else problems.push(`interface ${l}: ${r.stderr.trim()}`);
  }
  // 5. namespaces
  const nss = await netnsList();
  for (const ns of st.netns) {
    if (!nss.includes(ns)) continue;
    const r = await run("ip", ["netns", "del", ns]);
    if (r.success) done.push(`namespace ${ns}`);
    else problems.push(`namespace ${ns}: ${r.stderr.trim()}`);
  }
  // 6. switches (empty once their ports went; ports of killed processes are reaped)
  for (const sw of st.switches) {
    let gone = false;
    for (let i = 0; i < 40 && !gone; i++) {
      try {
        reap(sw, { runDir: rd });
        removeSwitch(sw, { runDir: rd });
        done.push(`switch ${sw}`);
        gone = true;
      } catch (e) {
        const code = (e as ValeError).code;
        if (code === "ENOENT") gone = true;
        else if (code === "EBUSY") await sleep(50);
        else {
          problems.push(`switch ${sw}: ${(e as Error).message}`);
          gone = true;
        }
      }
    }
    if (!gone) problems.push(`switch ${sw}: ports still in use (vale-ctl -l ${sw})`);
    try {
      Deno.removeSync(`${rd}/.attach/${sw}`); // only when empty
    } catch { /* not there, or not empty */ }
  }
  if (problems.length) {
    // keep the record: `down` (or the next `up`) tries again
    throw new ValeError(
      Errno.EBUSY,
      `topology ${st.name}: could not remove ${problems.join("; ")} ` +
        `(removed ${done.length ? done.join(", ") : "nothing"}; vale topo down ${st.name} retries)`,
    );
  }
  removeState(st.name, rd);
  return done;
}

/** Tear down topology `name` by its state file; null if there is none. */
export async function tearDownByName(name: string, runDir?: string): Promise<string[] | null> {
  const st = readState(name, defaultRunDir(runDir));
  return st ? await tearDown(st) : null;
}
