/**
 * vale-fwd: the forwarder process of a kernel-interface attachment
 * (`vale-ctl -a valeX:IF`, `-h`). Started by lib/attach.ts, not by hand:
 *
 *   vale-fwd --supervise CONF   supervisor: runs `--worker CONF`, restarts it
 *                               when it dies abnormally (≤ 5 times a minute)
 *   vale-fwd --worker CONF      the forwarder: opens the interface and the
 *                               persistent switch port(s), runs the C
 *                               forwarder (c-src/fwd/fwd.c), reports its state
 *
 * CONF is `RUN/.attach/valeX/IF.conf.json` (lib/attach.ts AttachConfig). The
 * worker reports in `IF.state.json`, the supervisor in `IF.sup.json`, both
 * log to `IF.log`. SIGTERM (or SIGINT) detaches: the forwarder stops, the
 * switch ports are removed, TAPs it created are deleted. An interface that
 * disappears detaches the same way (exit status 3, state `gone`). `--worker`
 * can also run under systemd (Restart=on-failure) instead of `--supervise`.
 *
 * Exit status: 0 detached, 1 supervisor gave up, 2 could not start, 3 the
 * interface was removed.
 *
 * @module
 */
import { cstr, vale } from "../ffi/lib.ts";
import {
  type AttachConfig,
  attachFiles,
  forwarderCommand,
  type SupervisorState,
  type WorkerState,
  writeJson,
} from "../lib/attach.ts";
import { Forwarder, type ForwarderStats } from "../lib/backends.ts";
import { ValeError } from "../lib/errors.ts";
import { KernelIo, KernelIoError, type KernelIoOptions } from "../lib/kernel_io.ts";
import { openPort, type Port } from "../lib/port.ts";
import { setPortInfo } from "../lib/switch.ts";

const EXIT_DETACHED = 0, EXIT_GAVE_UP = 1, EXIT_FAILED = 2, EXIT_GONE = 3;
const MAX_RESTARTS = 5, RESTART_WINDOW_MS = 60_000;
/** Ring slots of an attachment's switch port(s) when the configuration says 0. */
const DEFAULT_SLOTS = 2048;

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch {
    return null;
  }
}

function logger(path: string, who: string): (msg: string) => void {
  try {
    if (Deno.statSync(path).size > 1 << 20) Deno.renameSync(path, `${path}.old`);
  } catch { /* no log yet */ }
  return (msg: string) => {
    try {
      Deno.writeTextFileSync(path, `${new Date().toISOString()} ${who}[${Deno.pid}] ${msg}\n`, {
        append: true,
      });
    } catch { /* the run dir went away */ }
  };
}

function errnoOf(e: unknown): number {
  if (e instanceof ValeError || e instanceof KernelIoError) return e.errno;
  return 22;
}

function sleep(ms: number, wake?: { fn?: () => void }): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    if (wake) {
      wake.fn = () => {
        clearTimeout(t);
        r();
      };
    }
  });
}

// ---------------------------------------------------------------- worker

interface Side {
  label: string; // "veth1" or "host stack"
  iface: string;
  netns?: string;
  ioOpts: KernelIoOptions;
  portName: string;
  io: KernelIo;
  port: Port;
  fwd: Forwarder;
  mtu: number;
  state: string;
}

function linkExists(ifname: string, netns?: string): boolean {
  try {
    KernelIo.link(ifname, netns);
    return true;
  } catch {
    return false;
  }
}

function createPortIfMissing(conf: AttachConfig, name: string): void {
  const req = new Uint8Array(32);
  const dv = new DataView(req.buffer);
  // kernel traffic comes in bursts (TCP, softirq batches): deeper rings than a switch
  // port's default 1024 save drops (and TCP retransmits)
  const slots = conf.slots || DEFAULT_SLOTS;
  dv.setUint32(8, slots, true);
  dv.setUint32(12, slots, true);
  dv.setInt32(20, -1, true);
  // words 24..31 (group, spare) stay 0: a switch this creates is private, or
  // shared with $VALE_GROUP (inherited from vale-ctl --group)
  const lib = vale();
  const r = lib.vale_create_persistent(cstr(conf.runDir), cstr(conf.switch), cstr(name), req);
  if (r < 0 && r !== -17) {
    const p = lib.vale_last_error();
    throw new ValeError(-r, p ? Deno.UnsafePointerView.getCString(p) : "cannot create port");
  }
}

function openSide(
  conf: AttachConfig,
  label: string,
  iface: string,
  netns: string | undefined,
  ioOpts: KernelIoOptions,
  portName: string,
  info: (io: KernelIo) => string,
): Side {
  const io = KernelIo.open(iface, { ...ioOpts, netns });
  let port: Port | undefined;
  try {
    createPortIfMissing(conf, portName);
    // exclusive: nobody else may use the rings the forwarder fills
    port = openPort(`${conf.switch}:${portName}/x`, { runDir: conf.runDir });
    setPortInfo(`${conf.switch}:${portName}`, Deno.pid, info(io).slice(0, 63), {
      runDir: conf.runDir,
    });
    const fwd = new Forwarder(io, port);
    return {
      label,
      iface,
      netns,
      ioOpts,
      portName,
      io,
      port,
      fwd,
      mtu: io.info().mtu,
      state: "running",
    };
  } catch (e) {
    port?.close();
    io.close();
    throw e;
  }
}

function closeSide(s: Side): void {
  s.fwd.close();
  s.port.close();
  s.io.close();
}

/** Take the attachment's ports off the switch and delete the TAPs it created (nothing open). */
function removeAll(conf: AttachConfig, st: WorkerState, log: (m: string) => void): void {
  const lib = vale();
  for (const p of [conf.port, ...(conf.host ? [conf.host.port] : [])]) {
    const r = lib.vale_remove_port(cstr(conf.runDir), cstr(conf.switch), cstr(p));
    if (r < 0 && r !== -6) log(`could not remove port ${conf.switch}:${p} (${r})`);
  }
  const taps: [string, string | undefined][] = [];
  if (st.tapCreated) taps.push([conf.iface, conf.netns]);
  if (st.hostTapCreated && conf.host) taps.push([conf.host.tap, undefined]);
  for (const [tap, ns] of taps) {
    try {
      const io = KernelIo.open(tap, { kind: "tap", tapNoCreate: true, netns: ns });
      io.setPersist(false);
      io.close();
    } catch { /* gone */ }
  }
}

async function worker(confPath: string): Promise<number> {
  const conf = readJson<AttachConfig>(confPath);
  if (!conf) {
    console.error(`vale-fwd: cannot read ${confPath}`);
    return EXIT_FAILED;
  }
  const f = attachFiles(conf.switch, conf.port, conf.runDir);
  const log = logger(f.log, "fwd");
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
  report();
  const name = `${conf.switch}:${conf.port}`;
  log(
    `starting (${
      st.starts > 1 ? `start #${st.starts}` : "first start"
    }): ${name} <-> ${conf.iface}` +
      `${conf.netns ? ` in ${conf.netns}` : ""} method ${conf.method}${
        conf.host ? ` + host stack tap ${conf.host.tap}` : ""
      }`,
  );

  const sides: Side[] = [];
  let stopping = false;
  const wake: { fn?: () => void } = {};
  const onSig = () => {
    stopping = true;
    wake.fn?.();
  };
  Deno.addSignalListener("SIGTERM", onSig);
  Deno.addSignalListener("SIGINT", onSig);

  const mainOpts = (): KernelIoOptions => {
    if (conf.method === "tap") {
      return { kind: "tap", up: conf.up, tapPersist: true };
    }
    return { kind: conf.method, up: conf.up, promisc: true };
  };

  try {
    // the interface
    if (conf.method === "tap" && !linkExists(conf.iface, conf.netns)) st.tapCreated = true;
    sides.push(openSide(
      conf,
      conf.iface,
      conf.iface,
      conf.netns,
      mainOpts(),
      conf.port,
      (io) => {
        const i = io.info();
        return `${conf.iface} ${i.kind} (${i.mode})`;
      },
    ));
    const i = sides[0].io.info();
    st.kind = i.kind;
    st.mode = i.mode;
    st.why = i.why;
    st.mtu = i.mtu;
    log(`${conf.iface}: ${i.mode} (${i.why}), MTU ${i.mtu}`);
    // the host stack, through a TAP with the interface's MAC
    if (conf.host) {
      const created = !linkExists(conf.host.tap);
      const hs = openSide(
        conf,
        "host stack",
        conf.host.tap,
        undefined,
        { kind: "tap", up: true, tapPersist: true },
        conf.host.port,
        () => `host stack of ${conf.iface} (tap ${conf.host!.tap})`,
      );
      sides.push(hs);
      if (created) {
        st.hostTapCreated = true;
        try {
          KernelIo.setMac(conf.host.tap, KernelIo.link(conf.iface, conf.netns).mac);
        } catch (e) {
          log(`could not give ${conf.host.tap} the MAC of ${conf.iface}: ${(e as Error).message}`);
        }
        log(`host stack: TAP ${conf.host.tap} created`);
      }
      st.hostMode = hs.io.info().mode;
      if (st.kind === "packet") {
        log(
          `note: ${conf.iface} is on AF_PACKET, which does not take frames away from the host ` +
            `stack: the host receives them directly and through ${conf.host.tap}`,
        );
      }
    }
  } catch (e) {
    for (const s of sides) closeSide(s);
    st.errno = errnoOf(e);
    st.message = (e as Error).message;
    if (st.starts > 1 && st.errno === 19) {
      // a restart finds the interface gone: detach, as a running forwarder would
      removeAll(conf, st, log);
      st.state = "gone";
      st.message = `${st.message}: detached from ${conf.switch}`;
      report();
      log(`gone: ${st.message}`);
      return EXIT_GONE;
    }
    st.state = "failed";
    report();
    log(`failed: ${st.message}`);
    return EXIT_FAILED;
  }
  st.state = sides[0].fwd.stats().state === "down" ? "down" : "running";
  st.message = `forwarding ${name} <-> ${conf.iface} (${st.mode})`;
  report();
  log(st.message);

  let exitCode = EXIT_DETACHED;
  let lastReport = Date.now(), lastMtu = Date.now(), lastTrunc = Date.now(), lastTruncLog = 0;
  let truncated = 0;
  const counters = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const s of sides) {
      const x: ForwarderStats = s.fwd.stats();
      const p = s === sides[0] ? "" : "host_";
      out[`${p}to_switch`] = x.k2vPkts;
      out[`${p}to_kernel`] = x.v2kPkts;
      out[`${p}dropped`] = x.v2kDrops;
      out[`${p}to_switch_batches`] = x.k2vBatches;
      out[`${p}to_kernel_batches`] = x.v2kBatches;
      out[`${p}sleeps`] = x.kSleeps + x.vSleeps;
      try {
        const k = s.io.stats();
        out[`${p}kernel_rx_drops`] = Number(k.rxKernelDrops);
        out[`${p}kernel_rx_truncated`] = Number(k.rxTruncated + k.rxOversize);
        out[`${p}kernel_tx_drops`] = Number(k.txDrops + k.txErrors);
      } catch { /* closed */ }
    }
    return out;
  };
  while (!stopping) {
    await sleep(500, wake);
    if (stopping) break;
    let changed = false;
    for (const s of sides) {
      const x = s.fwd.stats();
      if (x.state === s.state) continue;
      s.state = x.state;
      log(`${s.label}: ${x.state}: ${x.message}`);
      if (s === sides[0]) {
        if (x.state === "gone" || x.state === "error") {
          st.state = x.state === "gone" ? "gone" : "failed";
          st.errno = -x.err || 19;
          st.message = x.state === "gone"
            ? `${x.message}: detached from ${conf.switch}`
            : x.message;
          exitCode = x.state === "gone" ? EXIT_GONE : EXIT_FAILED;
          stopping = true;
        } else {
          st.state = x.state === "down" ? "down" : "running";
          st.message = x.state === "down"
            ? `${x.message}: frames to it are dropped until it is up`
            : `forwarding ${name} <-> ${conf.iface} (${st.mode})`;
        }
        changed = true;
      }
    }
    const t = Date.now();
    // MTU raised or lowered: the kernel rings were sized at open
    if (!stopping && t - lastMtu >= 2000) {
      lastMtu = t;
      const s = sides[0];
      try {
        const mtu = KernelIo.link(s.iface, s.netns).mtu;
        if (mtu !== s.mtu) {
          log(`${s.iface}: MTU ${s.mtu} -> ${mtu}: reopening`);
          s.fwd.close();
          s.io.close();
          s.io = KernelIo.open(s.iface, { ...s.ioOpts, netns: s.netns });
          s.fwd = new Forwarder(s.io, s.port);
          s.mtu = mtu;
          st.mtu = mtu;
          st.mode = s.io.info().mode;
          changed = true;
        }
      } catch { /* removed: the forwarder says so */ }
    }
    // super-frames cut by the kernel ring: the sender segments too late (TSO/GSO)
    if (!stopping && t - lastTrunc >= 2000) {
      lastTrunc = t;
      try {
        const k = sides[0].io.stats();
        const cut = Number(k.rxTruncated);
        if (cut > truncated) {
          st.warning = `${cut} frames larger than the MTU were cut and dropped: the sender ` +
            `uses segmentation offloads (turn them off on it: ethtool -K PEER tso off gso off; ` +
            `AF_XDP avoids this on veth)`;
          if (t - lastTruncLog >= 60000) {
            lastTruncLog = t;
            log(`warning: ${st.warning}`);
          }
          truncated = cut;
          changed = true;
        }
      } catch { /* reopening */ }
    }
    if (changed || t - lastReport >= 5000) {
      lastReport = t;
      st.counters = counters();
      report();
    }
  }

  // detach: stop forwarding, take the ports off the switch, delete our TAPs
  st.counters = counters();
  const lib = vale();
  for (const s of sides) {
    const persistOff = (s === sides[0] && st.tapCreated) || (s !== sides[0] && st.hostTapCreated);
    s.fwd.close();
    s.port.close();
    if (persistOff) {
      try {
        s.io.setPersist(false); // the device goes with the close
      } catch { /* already gone */ }
    }
    s.io.close();
    const r = lib.vale_remove_port(cstr(conf.runDir), cstr(conf.switch), cstr(s.portName));
    if (r < 0 && r !== -6) log(`could not remove port ${conf.switch}:${s.portName} (${r})`);
  }
  if (exitCode === EXIT_DETACHED) {
    st.state = "stopped";
    st.message = "detached";
  }
  report();
  log(`${st.state}: ${st.message}`);
  return exitCode;
}

// ---------------------------------------------------------------- supervisor

async function supervise(confPath: string): Promise<number> {
  const conf = readJson<AttachConfig>(confPath);
  if (!conf) {
    console.error(`vale-fwd: cannot read ${confPath}`);
    return EXIT_FAILED;
  }
  const f = attachFiles(conf.switch, conf.port, conf.runDir);
  const log = logger(f.log, "supervisor");
  const sup: SupervisorState = { pid: Deno.pid, state: "supervising", restarts: 0 };
  const report = () => {
    try {
      writeJson(f.sup, sup);
    } catch { /* the run dir went away */ }
  };
  report();
  let stopping = false;
  let child: Deno.ChildProcess | null = null;
  const wake: { fn?: () => void } = {};
  const onSig = () => {
    stopping = true;
    if (child) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    wake.fn?.();
  };
  Deno.addSignalListener("SIGTERM", onSig);
  Deno.addSignalListener("SIGINT", onSig);
  const recent: number[] = [];
  let ranOnce = false;
  for (;;) {
    const c = forwarderCommand(["--worker", confPath]);
    child = new Deno.Command(c.cmd, {
      args: c.args,
      cwd: "/",
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const pid = child.pid;
    // it counts as started once it reported running (then nothing to poll until it exits)
    const watch = setInterval(() => {
      const st = readJson<WorkerState>(f.state);
      if (st?.pid === pid && (st.state === "running" || st.state === "down")) {
        ranOnce = true;
        clearInterval(watch);
      }
    }, 100);
    if (stopping) child.kill("SIGTERM");
    const status = await child.status;
    clearInterval(watch);
    child = null;
    const st = readJson<WorkerState>(f.state);
    if (st?.pid === pid && (st.state === "running" || st.state === "down")) ranOnce = true;
    if (stopping || status.code === EXIT_DETACHED && !status.signal) {
      sup.state = "exited";
      report();
      log(`forwarder pid ${pid} detached; supervisor exits`);
      return EXIT_DETACHED;
    }
    if (status.code === EXIT_GONE) {
      sup.state = "exited";
      report();
      log(`forwarder pid ${pid}: interface gone; supervisor exits`);
      return EXIT_DETACHED;
    }
    if (!ranOnce || st?.state === "failed" && st.pid === pid) {
      sup.state = "exited";
      report();
      log(`forwarder pid ${pid} could not start (${st?.message ?? `status ${status.code}`})`);
      return EXIT_FAILED;
    }
    // died: a crash or a kill
    const t = Date.now();
    recent.push(t);
    while (recent.length && t - recent[0] > RESTART_WINDOW_MS) recent.shift();
    sup.lastExit = { code: status.code, signal: status.signal, at: new Date(t).toISOString() };
    if (recent.length > MAX_RESTARTS) {
      sup.state = "gave-up";
      report();
      log(`forwarder died ${recent.length} times within a minute; giving up`);
      return EXIT_GAVE_UP;
    }
    sup.restarts++;
    report();
    const backoff = Math.min(5000, 200 * 2 ** (recent.length - 1));
    log(
      `forwarder pid ${pid} ended ${
        status.signal ? `by ${status.signal}` : `with status ${status.code}`
      }` +
        `; restart #${sup.restarts} in ${backoff} ms`,
    );
    await sleep(backoff, wake);
    if (stopping) {
      sup.state = "exited";
      report();
      return EXIT_DETACHED;
    }
  }
}

/** vale-fwd's main(); returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [mode, conf] = args;
  if (mode === "--worker" && conf) return await worker(conf);
  if (mode === "--supervise" && conf) return await supervise(conf);
  console.error(
    "usage: vale-fwd --supervise CONF | --worker CONF\n" +
      "  started by 'vale-ctl -a/-h' (lib/attach.ts); CONF is RUN/.attach/valeX/IF.conf.json",
  );
  return 2;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
