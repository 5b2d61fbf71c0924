/**
 * Attaching kernel interfaces to a switch (`vale-ctl -a valeX:IF`, `-h`, `-d`).
 *
 * An attachment is a small forwarder process (./vale-fwd.ts) that opens a
 * persistent, exclusive port `valeX:IF` and runs the C forwarder
 * (c-src/fwd/fwd.c) between it and the interface — AF_XDP when it can be set up,
 * PACKET_MMAP otherwise (`info` says which and why), or the fd side of a TAP.
 * With `host` (`-h`) it also creates a TAP standing for the host stack,
 * `IF-h` by default, with the interface's MAC, attached as a second port.
 *
 * Supervision: the forwarder runs under a supervisor process (same script)
 * that restarts it when it dies abnormally (crash, SIGKILL: at most 5 times
 * a minute, with back-off); the persistent port and TAPs survive a restart,
 * so only frames in flight are lost. The port table records the forwarder's
 * pid and "IF method" (`vale-ctl -l -v`); {@link listAttachments} tells
 * running / down / restarting / dead / gone. SIGTERM to either process, or
 * {@link detachInterface}, detaches cleanly; an interface that disappears
 * detaches itself (state `gone`, kept for the listing until `-d` or a new `-a`).
 *
 * State lives next to the switches: `RUN/.attach/valeX/IF.{conf,state,sup}.json`
 * and `IF.log` (hidden from switch listings).
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { asValeError, check, Errno, ValeError } from "../errors.ts";
import { parseAttachName as parseName, PortNameError } from "../names.ts";
import { KernelIo, type VhostStatus } from "../backends/kernel_io.ts";
import { runDir as defaultRunDir } from "../rundir.ts";
import { type ControlOptions, type PortInfo, switchInfo } from "../switch/control.ts";
import { denoRun } from "../deno_run.ts";

/**
 * How the interface is reached: `auto` = AF_XDP, else AF_PACKET; `tap` = the fd side of a TAP;
 * `vhost` = a vhost-user socket we listen on, `vhost-client` = one we connect to.
 */
export type AttachMethod = "auto" | "xdp" | "packet" | "tap" | "vhost" | "vhost-client";

/** A vhost-user attachment (no kernel interface: `iface` is the socket path). */
export function isVhost(method: AttachMethod): boolean {
  return method === "vhost" || method === "vhost-client";
}

/** Options of {@link attachInterface}. */
export interface AttachOptions extends ControlOptions {
  /** `-h`: also attach the host stack, through a TAP (see {@link hostTapName}). */
  host?: boolean;
  /** Name of the host-stack TAP (and of its switch port); default `IF-h`. */
  hostName?: string;
  /** Access method; default from the name (`valeX:tap:NAME` → tap) or `auto`. */
  method?: AttachMethod;
  /** The interface is in this network namespace (`ip netns` name or /proc/PID/ns/net). */
  netns?: string;
  /** Bring the interface up if it is down (default true). */
  up?: boolean;
  /** Restart the forwarder when it dies (default true). */
  supervise?: boolean;
  /** Ring slots of the switch port(s) (default 2048). */
  slots?: number;
  /** How long to wait for the forwarder to be ready (default 20 s). */
  timeoutMs?: number;
  /**
   * virtio-net header of the attachment (default {@link DEFAULT_VNET_HDR}): offloads kept,
   * GSO super-frames cross the switch whole (veth/TAP: AF_PACKET or the TAP with the header;
   * a NIC: AF_XDP without one when it can). 0: no header, MTU-sized frames (veths on AF_XDP).
   */
  vnetHdr?: 0 | 10 | 12;
  /**
   * The kernel fast path (default true): frames between this interface and other
   * kernel-served ports of the switch (veths, VM TAPs on AF_PACKET with a header) are
   * handed over by the kernel where the switch has learned the destination
   * (lib/backends/kfast.ts). false: every frame goes through the forwarder.
   */
  kfast?: boolean;
}

/** An attachment's kernel fast path, as its worker reports it. */
export interface KfastState {
  /** Running (the program is attached; `active` says whether it redirects now). */
  on: boolean;
  /** Why it is not running, or why it does not redirect now (a monitor, a lookup module). */
  reason?: string;
  /** Redirecting now. */
  active?: boolean;
  /** Frames the kernel redirected from this port. */
  fastPkts?: number;
  /** MACs of other ports it may redirect to now. */
  dests?: number;
}

/** The virtio-net header length attachments use unless told otherwise (as virtio 1.0). */
export const DEFAULT_VNET_HDR = 12;

/** Configuration of an attachment, as the forwarder reads it (`IF.conf.json`). */
export interface AttachConfig {
  /** Layout of this file. */
  version: 1;
  /** Switch (`vale0`). */
  switch: string;
  /** Port on the switch (the interface name). */
  port: string;
  /** Kernel interface or TAP name. */
  iface: string;
  /** Namespace of the interface, if not ours. */
  netns?: string;
  /** Requested access method. */
  method: AttachMethod;
  /** Host-stack TAP, with `-h`. */
  host?: { port: string; tap: string };
  /** Run directory of the switch. */
  runDir: string;
  /** Bring the interface up. */
  up: boolean;
  /** Supervised (restarted when it dies). */
  supervise: boolean;
  /** Ring slots of the switch port(s), 0 = default. */
  slots: number;
  /** virtio-net header asked for (absent: {@link DEFAULT_VNET_HDR}; 0: none). */
  vnetHdr?: number;
  /** The kernel fast path (absent: on; false: off). */
  kfast?: boolean;
  /** When `-a` was run (ISO time). */
  created: string;
}

/** What the forwarder process reports (`IF.state.json`). */
export interface WorkerState {
  /** Forwarder process. */
  pid: number;
  /** starting, running, down, gone (interface removed: detached), failed, stopped. */
  state: "starting" | "running" | "down" | "gone" | "failed" | "stopped";
  /** What happened last. */
  message: string;
  /** errno of a failure (positive), 0. */
  errno: number;
  /** Backend in use: xdp, packet, tap. */
  kind?: string;
  /** e.g. "af_xdp drv copy sg queue 0". */
  mode?: string;
  /** Why this backend. */
  why?: string;
  /** MTU of the interface. */
  mtu?: number;
  /** virtio-net header bytes before each frame on the port (0: none). */
  vnetHdr?: number;
  /** The kernel fast path: on (and its counters), or why it is off. */
  kfast?: KfastState;
  /** We created the TAP (method tap) and delete it on detach. */
  tapCreated?: boolean;
  /** We created the host TAP and delete it on detach. */
  hostTapCreated?: boolean;
  /** Host-stack side: its backend mode. */
  hostMode?: string;
  /** Times this attachment's forwarder (re)started. */
  starts: number;
  /** ISO time of the last start. */
  started: string;
  /** ISO time of this report. */
  updated: string;
  /** Forwarder counters (kernel→switch, switch→kernel), frames. */
  counters?: Record<string, number>;
  /** Something the user should fix (e.g. super-frames from a sender with TSO on). */
  warning?: string;
  /** vhost-user attachments: the front-end's state (connected, features, queues, refusals). */
  vhost?: VhostStatus;
}

/** What the supervisor reports (`IF.sup.json`). */
export interface SupervisorState {
  /** Supervisor process. */
  pid: number;
  /** supervising, gave-up, exited. */
  state: "supervising" | "gave-up" | "exited";
  /** Restarts of the forwarder so far. */
  restarts: number;
  /** How the forwarder last ended. */
  lastExit?: { code: number; signal: string | null; at: string };
}

/** One attachment as {@link listAttachments} sees it. */
export interface Attachment {
  /** `vale0:veth1`. */
  name: string;
  /** Switch. */
  switch: string;
  /** Port on the switch. */
  port: string;
  /** Kernel interface. */
  iface: string;
  /** Its namespace, if not ours. */
  netns?: string;
  /** Requested method. */
  requested: AttachMethod;
  /** Backend in use: xdp, packet, tap (undefined before it started). */
  method?: string;
  /** Backend details. */
  mode?: string;
  /** Why this backend. */
  why?: string;
  /** virtio-net header bytes before each frame on its port (0: none, MTU-sized frames). */
  vnetHdr?: number;
  /** The kernel fast path: on (with its counters) or why not. */
  kfast?: KfastState;
  /** Host-stack port and TAP (`-h`). */
  host?: { port: string; tap: string };
  /**
   * running; down (interface down: frames to it dropped and counted);
   * starting; restarting (the forwarder died, the supervisor restarts it);
   * dead (forwarder and supervisor gone: `-a` again restarts it, `-d` cleans up);
   * gone (the interface was removed: detached); failed (could not start, or
   * died too often).
   */
  status: "running" | "down" | "starting" | "restarting" | "dead" | "gone" | "failed";
  /** Human-readable detail. */
  message: string;
  /** Forwarder pid (0 if none alive). */
  pid: number;
  /** Supervisor pid (0 if none alive). */
  supervisorPid: number;
  /** Restarts by the supervisor. */
  restarts: number;
  /** Log file of the forwarder and supervisor. */
  log: string;
  /** Forwarder counters at its last report. */
  counters?: Record<string, number>;
  /** Something the user should fix (e.g. super-frames from a sender with TSO on). */
  warning?: string;
  /** vhost-user attachments: the front-end's state as last reported. */
  vhost?: VhostStatus;
}

/** Directory of the attachment files of switch `sw`. */
export function attachDir(sw: string, runDir?: string): string {
  return `${defaultRunDir(runDir)}/.attach/${sw}`;
}

/**
 * Is `RUN/.attach[/sw]` safe to use by path: no symlink on the way, every
 * directory root's or ours and writable by nobody else (libvale checks it,
 * as for switches)? `create` makes what is missing (0700) and throws the
 * reason when refused; otherwise false means "do not read it".
 */
export function secureAttachDir(sw: string | undefined, runDir: string, create = false): boolean {
  const rc = vale().vale_secure_dir(cstr(runDir), cstr(sw ? `.attach/${sw}` : ".attach"), +create);
  if (create) check(rc);
  return rc === 0;
}

/** Default name of the host-stack TAP of interface `iface` (`IF-h`, at most 15 characters). */
export function hostTapName(iface: string): string {
  return `${iface.slice(0, 13)}-h`;
}

/** Paths of the files of one attachment. */
export interface AttachFiles {
  /** Directory (`RUN/.attach/valeX`). */
  dir: string;
  /** Configuration, written by attach. */
  conf: string;
  /** Forwarder's report. */
  state: string;
  /** Supervisor's report. */
  sup: string;
  /** Log of both. */
  log: string;
}

/** Files of one attachment. */
export function attachFiles(sw: string, port: string, runDir?: string): AttachFiles {
  const d = attachDir(sw, runDir);
  return {
    dir: d,
    conf: `${d}/${port}.conf.json`,
    state: `${d}/${port}.state.json`,
    sup: `${d}/${port}.sup.json`,
    log: `${d}/${port}.log`,
  };
}

/** A JSON file, or null if it is missing or damaged. */
export function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch {
    return null;
  }
}

/** Write a JSON file atomically (readers never see half of it). */
export function writeJson(path: string, v: unknown): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(v, null, 1) + "\n");
  Deno.renameSync(tmp, path);
}

/** Is `pid` a live forwarder process of this attachment (not a recycled pid)? */
export function isForwarderPid(pid: number | undefined, confPath: string): boolean {
  if (!pid || pid <= 0) return false;
  try {
    const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    if (!cmd.includes("vale-fwd") || !cmd.includes(confPath)) return false;
    const st = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * Split `valeX:IF` (or `valeX:tap:NAME`, `valeX:xdp:IF`, `valeX:packet:IF`,
 * `valeX:netmap:IF`) into switch, port and method (lib/names.ts parses it).
 */
export function parseAttachName(
  name: string,
): { sw: string; port: string; method?: AttachMethod; iface?: string } {
  let a;
  try {
    a = parseName(name);
  } catch (e) {
    if (!(e instanceof PortNameError)) throw e;
    throw new ValeError(
      Errno.EINVAL,
      `${name}: expected valeX:INTERFACE (or valeX:tap:NAME): ${e.reason}`,
    );
  }
  const k = a.kernel;
  if (k?.kind === "vhost") {
    // the "interface" is the socket path
    return {
      sw: a.switchName,
      port: a.port,
      method: k.vhost?.client ? "vhost-client" : "vhost",
      iface: k.port,
    };
  }
  const method: AttachMethod | undefined = !k ? undefined : k.kind === "tap" ? "tap" : k.method;
  return { sw: a.switchName, port: a.port, method };
}

/** Can `port` name a port of switch `sw` (a host TAP's name, say)? */
function validPortName(sw: string, port: string): boolean {
  try {
    return parseName(`${sw}:${port}`).port === port;
  } catch {
    return false;
  }
}

function capEff(): bigint {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/^CapEff:\s*([0-9a-f]+)/m);
    return m ? BigInt("0x" + m[1]) : 0n;
  } catch {
    return 0n;
  }
}

/** Capabilities an attachment with `method` needs that this process lacks. */
export function missingPrivileges(method: AttachMethod, netns?: string): string[] {
  const have = capEff();
  if (isVhost(method)) return []; // a Unix socket: the file permissions decide
  const need: [string, bigint][] = [["CAP_NET_ADMIN", 12n]];
  if (method !== "tap") need.push(["CAP_NET_RAW", 13n]);
  if (netns) need.push(["CAP_SYS_ADMIN", 21n]);
  return need.filter(([, b]) => ((have >> b) & 1n) === 0n).map(([n]) => n);
}

function portEntry(sw: string, port: string, runDir: string): PortInfo | undefined {
  try {
    return switchInfo(sw, { runDir }).ports.find((p) => p.name === port);
  } catch {
    return undefined;
  }
}

/** Status of one attachment from its files; null if there is none. */
export function attachmentStatus(
  sw: string,
  port: string,
  opts: ControlOptions = {},
): Attachment | null {
  const f = attachFiles(sw, port, opts.runDir);
  if (!secureAttachDir(sw, defaultRunDir(opts.runDir))) return null;
  const conf = readJson<AttachConfig>(f.conf);
  if (!conf) return null;
  const st = readJson<WorkerState>(f.state);
  const sup = readJson<SupervisorState>(f.sup);
  const wAlive = isForwarderPid(st?.pid, f.conf);
  const sAlive = isForwarderPid(sup?.pid, f.conf);
  let status: Attachment["status"];
  let message = st?.message ?? "";
  if (st?.state === "gone") status = "gone";
  else if (st?.state === "failed" || sup?.state === "gave-up") {
    status = "failed";
    if (sup?.state === "gave-up") {
      message = `the forwarder died ${sup.restarts} times; supervisor gave up` +
        (message ? ` (last: ${message})` : "");
    }
  } else if (wAlive && (st?.state === "running" || st?.state === "down")) status = st.state;
  else if (wAlive || (!st && sAlive)) status = "starting";
  else if (sAlive) {
    status = "restarting";
    const le = sup?.lastExit;
    message = `forwarder pid ${st?.pid ?? "?"} ended` +
      (le ? (le.signal ? ` by ${le.signal}` : ` with status ${le.code}`) : "") + "; restarting";
  } else {
    status = "dead";
    message = `forwarder pid ${st?.pid ?? "?"} is gone and nothing restarts it ` +
      `('vale-ctl -a ${sw}:${port}' restarts it, '-d' detaches)`;
  }
  return {
    name: `${sw}:${port}`,
    switch: sw,
    port,
    iface: conf.iface,
    netns: conf.netns,
    requested: conf.method,
    method: st?.kind,
    mode: st?.mode,
    why: st?.why,
    vnetHdr: st?.vnetHdr,
    kfast: st?.kfast,
    host: conf.host,
    status,
    message,
    pid: wAlive ? st!.pid : 0,
    supervisorPid: sAlive ? sup!.pid : 0,
    restarts: sup?.restarts ?? 0,
    log: f.log,
    counters: st?.counters,
    warning: st?.warning,
    vhost: st?.vhost,
  };
}

/** Every attachment in the run directory (of one switch if given). */
export function listAttachments(sw?: string, opts: ControlOptions = {}): Attachment[] {
  const root = `${defaultRunDir(opts.runDir)}/.attach`;
  const out: Attachment[] = [];
  let sws: string[];
  if (!secureAttachDir(sw, defaultRunDir(opts.runDir))) return out;
  try {
    sws = sw ? [sw] : [...Deno.readDirSync(root)].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return out;
  }
  for (const s of sws.sort()) {
    let files: string[];
    try {
      files = [...Deno.readDirSync(`${root}/${s}`)].map((e) => e.name);
    } catch {
      continue;
    }
    for (const fn of files.filter((x) => x.endsWith(".conf.json")).sort()) {
      const a = attachmentStatus(s, fn.slice(0, -".conf.json".length), opts);
      if (a) out.push(a);
    }
  }
  return out;
}

/**
 * The attachment a switch port belongs to (its interface port or its
 * host-stack port), or null: what `vale-ctl -d` asks before detaching.
 */
export function findAttachment(swPort: string, opts: ControlOptions = {}): Attachment | null {
  let sw: string, port: string;
  try {
    ({ sw, port } = parseAttachName(swPort));
  } catch {
    return null;
  }
  const a = attachmentStatus(sw, port, opts);
  if (a) return a;
  return listAttachments(sw, opts).find((x) => x.host?.port === port) ?? null;
}

/** A short note for a listing line of switch port `p` (empty if it is not an attachment). */
export function attachmentNote(sw: string, p: PortInfo, opts: ControlOptions = {}): string {
  const a = attachmentStatus(sw, p.name, opts) ??
    listAttachments(sw, opts).find((x) => x.host?.port === p.name);
  if (!a) return "";
  const what = a.port === p.name
    ? `${a.iface}${a.netns ? `@${a.netns}` : ""} ${a.method ?? a.requested}`
    : `host stack of ${a.iface} (tap ${a.host!.tap})`;
  return `fwd:${a.status} ${what}${a.pid ? ` fwd_pid:${a.pid}` : ""}` +
    (a.restarts ? ` restarts:${a.restarts}` : "") +
    (a.status === "running" ? "" : ` (${a.message})`) +
    (a.kfast?.on && a.port === p.name
      ? ` kfast${a.kfast.active ? "" : `:off(${a.kfast.reason})`}`
      : "") +
    (a.warning && a.port === p.name ? ` warning: ${a.warning}` : "") +
    (a.vhost && a.port === p.name ? vhostTxNote(a.vhost) : "");
}

/** How a vhost-user guest's frames entered the switch: read in place by the switch (one copy)
 * or copied into the port's TX ring first (two). */
function vhostTxNote(v: VhostStatus): string {
  const c = v.counters;
  return ` guest_tx_direct:${c.tx_direct ?? 0} guest_tx_copied:${c.tx_copied ?? 0}`;
}

function fwdScript(): URL {
  return new URL("./vale-fwd.ts", import.meta.url);
}

/** The command line that runs the forwarder script (`deno run -A .../vale-fwd.ts`). */
export function forwarderCommand(args: string[]): { cmd: string; args: string[] } {
  return denoRun(fwdScript(), args);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const napCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(napCell, 0, 0, ms);
}

function removeFiles(f: AttachFiles, keepLog = false): void {
  for (const p of [f.conf, f.state, f.sup, ...(keepLog ? [] : [f.log])]) {
    try {
      Deno.removeSync(p);
    } catch { /* gone */ }
  }
  try {
    Deno.removeSync(f.dir); // only when empty
  } catch { /* not empty */ }
}

interface AttachJob {
  sw: string;
  port: string;
  rd: string;
  f: AttachFiles;
  conf: AttachConfig;
  restart: boolean;
  pid: number;
  deadline: number;
  timeoutMs: number;
}

/** Validate, write the configuration and spawn the forwarder. */
function attachStart(swPort: string, opts: AttachOptions): AttachJob {
  const parsed = parseAttachName(swPort);
  const { sw, port } = parsed;
  const rd = defaultRunDir(opts.runDir);
  const method: AttachMethod = opts.method ?? parsed.method ?? "auto";
  const f = attachFiles(sw, port, rd);

  // an existing attachment of that name
  const prev = attachmentStatus(sw, port, { runDir: rd });
  if (prev) {
    if (prev.status !== "dead" && prev.status !== "gone" && prev.status !== "failed") {
      throw new ValeError(
        Errno.EBUSY,
        `${sw}:${port} is already attached (${prev.iface} ${prev.method ?? prev.requested}, ` +
          `${prev.status}${prev.pid ? `, forwarder pid ${prev.pid}` : ""})`,
      );
    }
    if (prev.status !== "dead") removeFiles(f, true); // gone/failed: start afresh
  }
  const restart = prev?.status === "dead";
  const conf: AttachConfig = restart ? readJson<AttachConfig>(f.conf)! : {
    version: 1,
    switch: sw,
    port,
    iface: parsed.iface ?? port,
    netns: opts.netns,
    method,
    host: undefined,
    runDir: rd,
    up: opts.up ?? true,
    supervise: opts.supervise ?? true,
    slots: opts.slots ?? 0,
    vnetHdr: opts.vnetHdr ?? DEFAULT_VNET_HDR,
    kfast: opts.kfast === false ? false : undefined,
    created: new Date().toISOString(),
  };

  if (isVhost(conf.method) && (opts.host || opts.netns)) {
    throw new ValeError(
      Errno.EINVAL,
      `${sw}:${port}: a vhost-user port has no host stack or namespace`,
    );
  }
  const miss = missingPrivileges(conf.method, conf.netns);
  if (miss.length) {
    throw new ValeError(
      Errno.EPERM,
      `attaching ${conf.method === "tap" ? "TAP " : "interface "}${port} needs ` +
        `${miss.join(" and ")} (run vale-ctl as root, or give it the ` +
        `capabilit${miss.length > 1 ? "ies" : "y"})`,
    );
  }
  if (!restart) {
    const hostName = opts.host ? (opts.hostName ?? hostTapName(port)) : undefined;
    if (hostName !== undefined && !validPortName(sw, hostName)) {
      throw new ValeError(Errno.EINVAL, `bad host TAP name '${hostName}'`);
    }
    if (hostName) conf.host = { port: hostName, tap: hostName };
    // the switch must not have ports of these names already
    for (const n of [port, ...(hostName ? [hostName] : [])]) {
      if (portEntry(sw, n, rd)) {
        throw new ValeError(Errno.EBUSY, `${sw} already has a port named ${n}`);
      }
    }
    // the interface must exist (a TAP is created)
    if (method !== "tap" && !isVhost(method)) {
      try {
        KernelIo.link(port, opts.netns);
      } catch (e) {
        const ie = asValeError(e);
        if (ie.errno === Errno.ENODEV) {
          throw new ValeError(
            Errno.ENXIO,
            `no persistent port or interface ${port}${
              opts.netns ? ` in namespace ${opts.netns}` : ""
            }`,
          );
        }
        throw ie;
      }
    }
  }

  secureAttachDir(sw, rd, true); // not Deno.mkdirSync: it would follow planted symlinks
  if (!restart) {
    // created exclusively: of two `-a` of the same name at once, one wins
    try {
      Deno.writeTextFileSync(f.conf, JSON.stringify(conf, null, 1) + "\n", { createNew: true });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new ValeError(Errno.EBUSY, `${sw}:${port} is being attached by another vale-ctl`);
      }
      throw e;
    }
  }
  // a fresh report for this start (a restart keeps what we created)
  const old = readJson<WorkerState>(f.state);
  try {
    Deno.removeSync(f.sup);
  } catch { /* none */ }
  writeJson(
    f.state,
    {
      ...(old ?? {}),
      pid: 0,
      state: "starting",
      message: "starting",
      errno: 0,
      starts: old?.starts ?? 0,
      started: new Date().toISOString(),
      updated: new Date().toISOString(),
    } satisfies WorkerState,
  );

  const c = forwarderCommand([conf.supervise ? "--supervise" : "--worker", f.conf]);
  const child = new Deno.Command(c.cmd, {
    args: c.args,
    cwd: "/",
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  child.status.catch(() => {});
  const timeoutMs = opts.timeoutMs ?? 20000;
  return {
    sw,
    port,
    rd,
    f,
    conf,
    restart,
    pid: child.pid,
    deadline: Date.now() + timeoutMs,
    timeoutMs,
  };
}

/** Ready: the attachment; failed: throws; still starting: null. */
function attachPoll(j: AttachJob): Attachment | null {
  const st = readJson<WorkerState>(j.f.state);
  if (st && (st.state === "running" || st.state === "down") && st.pid) {
    return attachmentStatus(j.sw, j.port, { runDir: j.rd })!;
  }
  const exited = !isForwarderPid(j.pid, j.f.conf);
  if (st?.state === "failed" || exited) {
    const again = readJson<WorkerState>(j.f.state);
    if (again && (again.state === "running" || again.state === "down") && again.pid) {
      return attachmentStatus(j.sw, j.port, { runDir: j.rd })!;
    }
    const msg = again?.state === "failed"
      ? again.message
      : `the forwarder exited before it was ready (see ${j.f.log})`;
    const errno = again?.errno || Errno.EINVAL;
    if (!j.restart) removeFiles(j.f, true);
    throw new ValeError(errno, msg);
  }
  if (Date.now() > j.deadline) {
    try {
      Deno.kill(j.pid, "SIGKILL");
    } catch { /* gone */ }
    const w = readJson<WorkerState>(j.f.state);
    if (w?.pid) {
      try {
        Deno.kill(w.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    cleanupLeftovers(j.conf, w);
    removeFiles(j.f, true);
    throw new ValeError(
      Errno.ETIMEDOUT,
      `the forwarder for ${j.sw}:${j.port} did not become ready in ${j.timeoutMs / 1000} s ` +
        `(see ${j.f.log})`,
    );
  }
  return null;
}

/**
 * `vale-ctl -a valeX:IF` (and `-h` with `host`): start a forwarder between
 * interface IF and a new persistent port IF of switch valeX; resolves once
 * it forwards (the method actually used is in the result). `valeX:tap:NAME`
 * creates (or opens) TAP NAME and attaches its fd side; `valeX:xdp:IF`,
 * `valeX:packet:IF` force the method. A dead attachment of the same name is
 * restarted. Throws {@link ValeError}: EBUSY (already attached, or the switch
 * has a port of that name), ENXIO (no such interface), EPERM (missing
 * privilege, named), ETIMEDOUT, or the errno of the forwarder's failure with
 * its message.
 */
export async function attachInterface(
  swPort: string,
  opts: AttachOptions = {},
): Promise<Attachment> {
  const j = attachStart(swPort, opts);
  for (;;) {
    await sleep(50);
    const a = attachPoll(j);
    if (a) return a;
  }
}

/** {@link attachInterface} for synchronous callers (vale-ctl): blocks until ready. */
export function attachInterfaceSync(swPort: string, opts: AttachOptions = {}): Attachment {
  const j = attachStart(swPort, opts);
  for (;;) {
    sleepSync(50);
    const a = attachPoll(j);
    if (a) return a;
  }
}

/** Remove what a killed forwarder left: its switch ports, TAPs it created. */
export function cleanupLeftovers(conf: AttachConfig, st: WorkerState | null): string[] {
  const done: string[] = [];
  const lib = vale();
  for (const p of [conf.port, ...(conf.host ? [conf.host.port] : [])]) {
    for (let i = 0; i < 20; i++) { // the killed process's lock goes with its last fd
      const r = lib.vale_remove_port(cstr(conf.runDir), cstr(conf.switch), cstr(p));
      if (r >= 0) {
        done.push(`removed port ${conf.switch}:${p}`);
        break;
      }
      if (r !== -Errno.EBUSY) break;
      sleepSync(50);
    }
  }
  const taps: [string, string | undefined][] = [];
  if (st?.tapCreated) taps.push([conf.iface, conf.netns]);
  if (st?.hostTapCreated && conf.host) taps.push([conf.host.tap, undefined]);
  for (const [tap, ns] of taps) {
    try {
      const io = KernelIo.open(tap, { kind: "tap", tapNoCreate: true, netns: ns });
      io.setPersist(false);
      io.close(); // the device goes with it
      done.push(`deleted TAP ${tap}`);
    } catch { /* already gone or busy */ }
  }
  return done;
}

interface DetachJob {
  a: Attachment;
  f: AttachFiles;
  conf: AttachConfig;
  pids: number[];
  killAt: number;
  giveUpAt: number;
  killed: boolean;
}

function detachStart(swPort: string, opts: ControlOptions): DetachJob {
  const rd = defaultRunDir(opts.runDir);
  const a = findAttachment(swPort, { runDir: rd });
  if (!a) throw new ValeError(Errno.ENXIO, `no kernel interface attached as ${swPort}`);
  const f = attachFiles(a.switch, a.port, rd);
  const conf = readJson<AttachConfig>(f.conf)!;
  const pids = [a.supervisorPid, a.pid].filter((p) => p > 0);
  // the supervisor passes SIGTERM on; a lone forwarder detaches itself on it
  for (const p of pids) {
    try {
      Deno.kill(p, "SIGTERM");
    } catch { /* gone */ }
  }
  const t = Date.now();
  return { a, f, conf, pids, killAt: t + 5000, giveUpAt: t + 7000, killed: false };
}

/** Done: the attachment as it was; still stopping: null. */
function detachPoll(j: DetachJob): Attachment | null {
  const alive = j.pids.filter((p) => isForwarderPid(p, j.f.conf));
  if (alive.length && Date.now() < j.giveUpAt) {
    if (!j.killed && Date.now() >= j.killAt) {
      j.killed = true;
      for (const p of alive) {
        try {
          Deno.kill(p, "SIGKILL");
        } catch { /* gone */ }
      }
    }
    return null;
  }
  // whatever the forwarder did not remove itself (it was killed, or long dead)
  cleanupLeftovers(j.conf, readJson<WorkerState>(j.f.state));
  removeFiles(j.f);
  return j.a;
}

/**
 * `vale-ctl -d valeX:IF` for an attached kernel interface (`valeX:IF-h`, its
 * host port, detaches the same attachment): stop the forwarder and its
 * supervisor (SIGTERM, then SIGKILL after 5 s), remove the switch port(s)
 * and the TAPs the attachment created. Resolves with what the attachment
 * was (its status tells if it had died or the interface was gone). ENXIO if
 * there is no such attachment.
 */
export async function detachInterface(
  swPort: string,
  opts: ControlOptions = {},
): Promise<Attachment> {
  const j = detachStart(swPort, opts);
  for (;;) {
    const a = detachPoll(j);
    if (a) return a;
    await sleep(25);
  }
}

/** {@link detachInterface} for synchronous callers (vale-ctl). */
export function detachInterfaceSync(swPort: string, opts: ControlOptions = {}): Attachment {
  const j = detachStart(swPort, opts);
  for (;;) {
    const a = detachPoll(j);
    if (a) return a;
    sleepSync(25);
  }
}

/** True if `valeX:PORT` is (part of) a kernel-interface attachment. */
export function isAttached(swPort: string, opts: ControlOptions = {}): boolean {
  return findAttachment(swPort, opts) !== null;
}
