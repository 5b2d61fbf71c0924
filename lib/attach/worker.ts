/**
 * The forwarder process of an attachment (`vale-fwd --worker CONF`, started
 * by ./vale-fwd.ts): opens the interface and the persistent switch port(s),
 * runs the C forwarder on each {@link Side}, follows their state, reports it
 * in `IF.state.json`, and detaches on SIGTERM or when the interface goes.
 *
 * @module
 */
import { KernelIo, type KernelIoOptions } from "../backends/kernel_io.ts";
import { KernelFastPath } from "../backends/kfast.ts";
import { asValeError, Errno } from "../errors.ts";
import { cstr, vale } from "../../ffi/lib.ts";
import {
  type AttachConfig,
  attachFiles,
  cleanupLeftovers,
  DEFAULT_VNET_HDR,
  isVhost,
  readJson,
  type WorkerState,
  writeJson,
} from "./attach.ts";
import { logger, onStopSignal, sleep, type Wake } from "./log.ts";
import { closeSide, linkExists, openSide, reopenSide, type Side } from "./side.ts";
import { setPortInfo } from "../switch/control.ts";

/** Exit status: detached (SIGTERM). */
export const EXIT_DETACHED = 0;
/** Exit status: the supervisor gave up. */
export const EXIT_GAVE_UP = 1;
/** Exit status: could not start. */
export const EXIT_FAILED = 2;
/** Exit status: the interface was removed (detached). */
export const EXIT_GONE = 3;

/** A running worker: its configuration, report and sides. */
interface Run {
  conf: AttachConfig;
  /** `valeX:IF`. */
  name: string;
  log: (msg: string) => void;
  st: WorkerState;
  report: () => void;
  sides: Side[];
  stopping: boolean;
  wake: Wake;
  exitCode: number;
  lastReport: number;
  lastMtu: number;
  lastTrunc: number;
  lastTruncLog: number;
  truncated: number;
  /** The kernel fast path of the interface's side (null: off). */
  kfast: KernelFastPath | null;
}

/** Reads the configuration and writes the first report ("starting"); null if unreadable. */
function startRun(confPath: string): Run | null {
  const conf = readJson<AttachConfig>(confPath);
  if (!conf) {
    console.error(`vale-fwd: cannot read ${confPath}`);
    return null;
  }
  const f = attachFiles(conf.switch, conf.port, conf.runDir);
  const prev = readJson<WorkerState>(f.state);
  const now = () => new Date().toISOString();
  const st: WorkerState = {
    pid: Deno.pid,
    state: "starting",
    message: "opening the interface",
    errno: 0,
    tapCreated: prev?.tapCreated,
    hostTapCreated: prev?.hostTapCreated,
    starts: (prev?.starts ?? 0) + 1,
    started: now(),
    updated: now(),
  };
  const report = () => {
    st.updated = now();
    try {
      writeJson(f.state, st);
    } catch { /* the run dir went away */ }
  };
  const t = Date.now();
  const run: Run = {
    conf,
    name: `${conf.switch}:${conf.port}`,
    log: logger(f.log, "fwd"),
    st,
    report,
    sides: [],
    stopping: false,
    wake: {},
    exitCode: EXIT_DETACHED,
    lastReport: t,
    lastMtu: t,
    lastTrunc: t,
    lastTruncLog: 0,
    truncated: 0,
    kfast: null,
  };
  report();
  run.log(
    `starting (${st.starts > 1 ? `start #${st.starts}` : "first start"}): ` +
      `${run.name} <-> ${conf.iface}${conf.netns ? ` in ${conf.netns}` : ""} ` +
      `method ${conf.method}${conf.host ? ` + host stack tap ${conf.host.tap}` : ""}`,
  );
  return run;
}

/** How the attached interface itself is opened. */
function interfaceOptions(conf: AttachConfig): KernelIoOptions {
  const vnetHdr = vnetOf(conf);
  if (conf.method === "tap") return { kind: "tap", up: conf.up, tapPersist: true, vnetHdr };
  // offloads: a guest's 64 KiB TCP frames cross the switch whole (c-src/fwd gives the
  // port the guest's virtio-net header once it negotiated them)
  if (isVhost(conf.method)) return { kind: conf.method, vhostOffloads: true };
  // AF_XDP carries no header: forced, it runs without (MTU-sized frames)
  return {
    kind: conf.method,
    up: conf.up,
    promisc: true,
    vnetHdr: conf.method === "xdp" ? undefined : vnetHdr,
  };
}

/** The header the configuration asks for (undefined: none). */
function vnetOf(conf: AttachConfig): 10 | 12 | undefined {
  const v = conf.vnetHdr ?? DEFAULT_VNET_HDR;
  return v === 10 || v === 12 ? v : undefined;
}

/** The switch port's info text (`vale-ctl -l -v`): the interface and backend, or a vhost-user front-end's state. */
function portInfoText(conf: AttachConfig, io: KernelIo): string {
  const i = io.info();
  return isVhost(conf.method) ? i.mode : `${conf.iface} ${i.kind} (${i.mode})`;
}

/** vhost-user: the front-end's state into the report and the port's info text. True if it changed. */
function followVhost(run: Run): boolean {
  const { conf, st } = run;
  if (!isVhost(conf.method) || run.stopping) return false;
  const s = run.sides[0];
  try {
    const v = s.io.vhostStatus();
    const mode = s.io.info().mode;
    // new refusals or (dis)connections are reported at once, not with the 5 s report
    const moved = JSON.stringify(v.counters) !== JSON.stringify(st.vhost?.counters);
    st.vhost = v;
    if (mode === st.mode) return moved;
    st.mode = mode;
    setPortInfo(`${conf.switch}:${s.portName}`, Deno.pid, mode.slice(0, 63), {
      runDir: conf.runDir,
    });
    run.log(`${conf.iface}: ${mode}`);
    return true;
  } catch {
    return false;
  }
}

/** The interface's side: opened, and what it runs on recorded in the report. */
function openInterface(run: Run): void {
  const { conf, st } = run;
  if (conf.method === "tap" && !linkExists(conf.iface, conf.netns)) st.tapCreated = true;
  run.sides.push(openSide(
    conf,
    conf.iface,
    conf.iface,
    conf.netns,
    interfaceOptions(conf),
    conf.port,
    (io) => portInfoText(conf, io),
  ));
  const i = run.sides[0].io.info();
  st.kind = i.kind;
  st.mode = i.mode;
  st.why = i.why;
  st.mtu = i.mtu;
  st.vnetHdr = i.vnetHdrLen;
  run.log(
    `${conf.iface}: ${i.mode} (${i.why}), MTU ${i.mtu}` +
      (i.vnetHdrLen ? `, ${i.vnetHdrLen}-byte virtio-net header (offloads kept)` : ""),
  );
}

/**
 * The kernel fast path of the interface's side, where it applies: AF_PACKET with a
 * header (veth, a VM's TAP), in our namespace, not turned off. Failing to start it
 * is not fatal: every frame then takes the forwarder, as said in the log and report.
 */
function startKfast(run: Run): void {
  const { conf, st } = run;
  const s = run.sides[0];
  const i = s.io.info();
  let reason = "";
  if (conf.kfast === false) reason = "turned off (--no-kfast)";
  else if (i.kind !== "packet") reason = `not on AF_PACKET (${i.kind})`;
  else if (!i.vnetHdrLen) reason = "no virtio-net header (--vnet-hdr 0)";
  else if (conf.netns) reason = "the interface is in another namespace";
  if (!reason) {
    try {
      run.kfast = new KernelFastPath(s.io, s.port);
    } catch (e) {
      reason = (e as Error).message;
    }
  }
  st.kfast = run.kfast ? { on: true, active: true, fastPkts: 0, dests: 0 } : { on: false, reason };
  run.log(
    run.kfast
      ? `${conf.iface}: kernel fast path on (tc program at its ingress: frames to other ` +
        `kernel ports of ${conf.switch} learned by the switch are handed over by the kernel)`
      : `${conf.iface}: kernel fast path off: ${reason}`,
  );
}

/** The fast path's state into the report; true if it changed (not the counters). */
function followKfast(run: Run): boolean {
  if (!run.kfast || !run.st.kfast) return false;
  try {
    const x = run.kfast.stats();
    const reason = x.active
      ? undefined
      : x.why === "monitor"
      ? "a monitor is open on the port"
      : "the switch runs another lookup module";
    const changed = run.st.kfast.active !== x.active;
    run.st.kfast = { on: true, active: x.active, reason, fastPkts: x.fastPkts, dests: x.dests };
    if (changed) {
      run.log(`kernel fast path ${x.active ? "redirecting again" : `paused: ${reason}`}`);
    }
    return changed;
  } catch {
    return false;
  }
}

function stopKfast(run: Run): void {
  run.kfast?.stop();
  run.kfast = null;
}

/** `-h`: the host stack's side, through a TAP with the interface's MAC. */
function openHostStack(run: Run): void {
  const { conf, st, log } = run;
  const host = conf.host!;
  const created = !linkExists(host.tap);
  const hs = openSide(
    conf,
    "host stack",
    host.tap,
    undefined,
    { kind: "tap", up: true, tapPersist: true, vnetHdr: vnetOf(conf) },
    host.port,
    () => `host stack of ${conf.iface} (tap ${host.tap})`,
  );
  run.sides.push(hs);
  if (created) {
    st.hostTapCreated = true;
    try {
      KernelIo.setMac(host.tap, KernelIo.link(conf.iface, conf.netns).mac);
    } catch (e) {
      log(`could not give ${host.tap} the MAC of ${conf.iface}: ${(e as Error).message}`);
    }
    log(`host stack: TAP ${host.tap} created`);
  }
  st.hostMode = hs.io.info().mode;
  if (st.kind === "packet") {
    log(
      `note: ${conf.iface} is on AF_PACKET, which does not take frames away from the host ` +
        `stack: the host receives them directly and through ${host.tap}`,
    );
  }
}

/** Opening failed: report why; a restart that finds the interface gone detaches. */
function failedStart(run: Run, e: unknown): number {
  const { conf, st, log } = run;
  for (const s of run.sides) closeSide(s);
  const err = asValeError(e);
  st.errno = err.errno;
  st.message = err.message;
  if (st.starts > 1 && st.errno === Errno.ENODEV) {
    // a restart finds the interface gone: detach, as a running forwarder would
    cleanupLeftovers(conf, st);
    st.state = "gone";
    st.message = `${st.message}: detached from ${conf.switch}`;
    run.report();
    log(`gone: ${st.message}`);
    return EXIT_GONE;
  }
  st.state = "failed";
  run.report();
  log(`failed: ${st.message}`);
  return EXIT_FAILED;
}

/** The report's counters: per side, frames each way and the kernel's drops. */
function counters(sides: Side[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sides) {
    const x = s.fwd.stats();
    const p = s === sides[0] ? "" : "host_";
    out[`${p}to_switch`] = x.k2vPkts;
    out[`${p}to_kernel`] = x.v2kPkts;
    out[`${p}dropped`] = x.v2kDrops;
    out[`${p}to_switch_batches`] = x.k2vBatches;
    out[`${p}to_kernel_batches`] = x.v2kBatches;
    out[`${p}sleeps`] = x.kSleeps + x.vSleeps;
    out[`${p}to_kernel_waits`] = x.v2kFull;
    out[`${p}to_switch_waits`] = x.k2vWaits;
    try {
      const k = s.io.stats();
      out[`${p}kernel_rx_drops`] = Number(k.rxKernelDrops);
      out[`${p}kernel_rx_truncated`] = Number(k.rxTruncated + k.rxOversize);
      out[`${p}kernel_tx_drops`] = Number(k.txDrops + k.txErrors);
      out[`${p}kernel_tx_full`] = Number(k.txRingFull);
    } catch { /* closed */ }
  }
  return out;
}

/** Follows each forwarder's state; the interface gone or failed stops the worker. True if the report changed. */
function followForwarders(run: Run): boolean {
  const { conf, st } = run;
  let changed = false;
  for (const s of run.sides) {
    const x = s.fwd.stats();
    if (x.state === s.state) continue;
    s.state = x.state;
    run.log(`${s.label}: ${x.state}: ${x.message}`);
    if (s !== run.sides[0]) continue;
    if (x.state === "gone" || x.state === "error") {
      st.state = x.state === "gone" ? "gone" : "failed";
      st.errno = -x.err || Errno.ENODEV;
      st.message = x.state === "gone" ? `${x.message}: detached from ${conf.switch}` : x.message;
      run.exitCode = x.state === "gone" ? EXIT_GONE : EXIT_FAILED;
      run.stopping = true;
    } else {
      st.state = x.state === "down" ? "down" : "running";
      st.message = x.state === "down"
        ? `${x.message}: frames to it are dropped until it is up`
        : `forwarding ${run.name} <-> ${conf.iface} (${st.mode})`;
    }
    changed = true;
  }
  return changed;
}

/** MTU raised or lowered: the kernel rings were sized at open, so reopen. True if reopened. */
function reopenOnMtuChange(run: Run, t: number): boolean {
  if (run.stopping || t - run.lastMtu < 2000 || isVhost(run.conf.method)) return false;
  run.lastMtu = t;
  const s = run.sides[0];
  try {
    const mtu = KernelIo.link(s.iface, s.netns).mtu;
    if (mtu === s.mtu) return false;
    run.log(`${s.iface}: MTU ${s.mtu} -> ${mtu}: reopening`);
    const fast = run.kfast !== null;
    stopKfast(run);
    reopenSide(s, mtu);
    if (fast) startKfast(run);
    run.st.mtu = mtu;
    run.st.mode = s.io.info().mode;
    return true;
  } catch {
    return false; // removed: the forwarder says so
  }
}

/** Super-frames cut by the kernel ring: the sender segments too late (TSO/GSO). True if new. */
function warnOfTruncation(run: Run, t: number): boolean {
  if (run.stopping || t - run.lastTrunc < 2000 || isVhost(run.conf.method)) return false;
  run.lastTrunc = t;
  try {
    const cut = Number(run.sides[0].io.stats().rxTruncated);
    if (cut <= run.truncated) return false;
    run.st.warning = `${cut} frames larger than the MTU were cut and dropped: the sender ` +
      `uses segmentation offloads (turn them off on it: ethtool -K PEER tso off gso off; ` +
      `AF_XDP avoids this on veth)`;
    if (t - run.lastTruncLog >= 60000) {
      run.lastTruncLog = t;
      run.log(`warning: ${run.st.warning}`);
    }
    run.truncated = cut;
    return true;
  } catch {
    return false; // reopening
  }
}

/** Stop forwarding, take the ports off the switch, delete our TAPs; the exit status. */
function detach(run: Run): number {
  const { conf, st } = run;
  followKfast(run);
  stopKfast(run); // before its handle and port close; its last counts reach the switch
  st.counters = counters(run.sides);
  const lib = vale();
  for (const s of run.sides) {
    const main = s === run.sides[0];
    closeSide(s, main ? !!st.tapCreated : !!st.hostTapCreated);
    const r = lib.vale_remove_port(cstr(conf.runDir), cstr(conf.switch), cstr(s.portName));
    if (r < 0 && r !== -Errno.ENXIO) {
      run.log(`could not remove port ${conf.switch}:${s.portName} (${r})`);
    }
  }
  if (run.exitCode === EXIT_DETACHED) {
    st.state = "stopped";
    st.message = "detached";
  }
  run.report();
  run.log(`${st.state}: ${st.message}`);
  return run.exitCode;
}

/** `vale-fwd --worker CONF`: forwards until detached; returns the exit status. */
export async function worker(confPath: string): Promise<number> {
  const run = startRun(confPath);
  if (!run) return EXIT_FAILED;
  onStopSignal(() => {
    run.stopping = true;
    run.wake.fn?.();
  });
  try {
    openInterface(run);
    if (run.conf.host) openHostStack(run);
  } catch (e) {
    return failedStart(run, e);
  }
  startKfast(run);
  run.st.state = run.sides[0].fwd.stats().state === "down" ? "down" : "running";
  run.st.message = `forwarding ${run.name} <-> ${run.conf.iface} (${run.st.mode})`;
  run.report();
  run.log(run.st.message);

  while (!run.stopping) {
    await sleep(500, run.wake);
    if (run.stopping) break;
    let changed = followForwarders(run);
    const t = Date.now();
    changed = reopenOnMtuChange(run, t) || changed;
    changed = warnOfTruncation(run, t) || changed;
    changed = followVhost(run) || changed;
    changed = followKfast(run) || changed;
    if (changed || t - run.lastReport >= 5000) {
      run.lastReport = t;
      run.st.counters = counters(run.sides);
      run.report();
    }
  }
  return detach(run);
}
